"""infra/definitions.py: plain data shared by the stack and local mode."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from findings_router.settings.load import PolicyError, load_policy
from findings_router.settings.schema import Policy
from infra.definitions import (
    ACK_HANDLERS,
    ACK_IDEMPOTENT_FUNCTION,
    LAMBDA_TASK_ROOT,
    QUEUE_RETENTION_DAYS,
    ROUTER_WORKFLOW_STATUS,
    SECONDS_PER_DAY,
    STATE_KEY_PATTERN,
    STORM_KEY_PATTERN,
    ack_event_pattern,
    ack_function_environment,
    ack_handler,
    ack_idempotency_key_pattern,
    ack_workflow_status,
    action_target_properties,
    deployment_checks,
    deployment_problems,
    function_environment,
    meta_alert_environment,
    meta_alert_timeout_seconds,
    packaged_policy_path,
    queue_settings,
    resource_names,
    securityhub_writeback_condition,
    stack_name,
    state_table_definition,
    state_table_ttl_specification,
    validate_deployment_config,
)
from tests.infra.conftest import REPO_ROOT

DLQ_URL = "https://sqs.eu-central-1.amazonaws.com/111122223333/findings-router-dev-findings-dlq"

pytestmark = pytest.mark.infra


def _policy(environment: str = "dev", **sections: dict) -> Policy:
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["environment"] = environment
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Policy.model_validate(data)


def test_definitions_import_no_cdk():
    code = "import sys, infra.definitions; print(sorted(m for m in sys.modules if m.startswith(('aws_cdk', 'jsii'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"


def test_names_fit_aws_limits_for_the_longest_environment_name():
    names = resource_names(_policy("a" * 16))
    assert len(names.function) <= 64
    assert len(names.ack_function) <= 64 and len(names.meta_alert_function) <= 64
    assert len(names.rule) <= 64 and len(names.ack_rule) <= 64
    for queue in (
        names.queue,
        names.dead_letter_queue,
        names.ack_dead_letter_queue,
        names.meta_alert_dead_letter_queue,
    ):
        assert len(queue) <= 80
    assert len(names.state_table) <= 255
    assert len(names.alarm_topic) <= 256 and len(names.meta_alarm_topic) <= 256
    for suffix in ("oldest-message-age", "meta-alerts-dead-letters", "ack-receiver-errors"):
        assert len(f"{names.alarm_prefix}-{suffix}") <= 255
    # Log group names are /aws/lambda/<function name>: Lambda's default, and what the console links to.
    for function, log_group in (
        (names.function, names.log_group),
        (names.ack_function, names.ack_log_group),
        (names.meta_alert_function, names.meta_alert_log_group),
    ):
        assert log_group == f"/aws/lambda/{function}"
    # Every name carries the environment: two environments may share an account and region.
    other = resource_names(_policy("b" * 16))
    assert not set(vars(names).values()) & set(vars(other).values()) - {names.routing_key_secret}
    assert len(stack_name("a" * 16)) <= 128


def test_function_environment_is_non_secret_and_points_into_the_package():
    policy = _policy()
    env = function_environment(policy, "findings-router-dev-state", dead_letter_queue_url=DLQ_URL)
    assert env == {
        "POLICY_FILE": f"{LAMBDA_TASK_ROOT}/config/dev.json",
        "STATE_TABLE_NAME": "findings-router-dev-state",
        "POWERTOOLS_SERVICE_NAME": "findings-router",
        "POWERTOOLS_METRICS_NAMESPACE": "FindingsRouter",
        # The router parks messages that can never be delivered in the ingestion DLQ itself.
        "DEAD_LETTER_QUEUE_URL": DLQ_URL,
    }
    assert env["POLICY_FILE"] == f"{LAMBDA_TASK_ROOT}/{packaged_policy_path(policy)}"


@pytest.mark.parametrize(
    ("timeout", "batch_size", "reserved", "visibility", "window", "max_concurrency"),
    [
        (120, 10, 2, 720, 0, 2),
        (900, 10, 1, 5400, 0, None),
        (60, 11, 5, 361, 1, 5),
    ],
)
def test_queue_settings(timeout, batch_size, reserved, visibility, window, max_concurrency):
    settings = queue_settings(
        _policy(
            function={"timeout_seconds": timeout, "reserved_concurrency": reserved},
            ingestion={"batch_size": batch_size, "max_receive_count": 4},
        )
    )
    assert settings.visibility_timeout_seconds == visibility
    assert settings.visibility_timeout_seconds <= 12 * 3600  # SQS maximum
    assert settings.batching_window_seconds == window
    assert settings.max_concurrency == max_concurrency
    assert settings.retention_seconds == QUEUE_RETENTION_DAYS * SECONDS_PER_DAY
    assert settings.dead_letter_retention_seconds > settings.retention_seconds
    attributes = settings.queue_attributes("arn:aws:sqs:eu-central-1:111122223333:dlq")
    assert attributes["VisibilityTimeout"] == str(visibility)
    assert '"maxReceiveCount": 4' in attributes["RedrivePolicy"]
    assert settings.dead_letter_queue_attributes()["MessageRetentionPeriod"] == str(14 * SECONDS_PER_DAY)


def test_state_table_definition_matches_the_store():
    from findings_router.adapters.state_table import state_to_item
    from findings_router.domain.episodes import DedupState
    from findings_router.domain.model import Severity

    state = DedupState(
        key="k",
        status="open",
        episode=1,
        action="page",
        severity=Severity.HIGH,
        incident_keys=("k#1",),
        members=(),
        finding_id="f",
        product_arn="p",
        title="t",
        first_seen="2026-11-21T00:00:00Z",
        last_seen="2026-11-21T00:00:00Z",
        last_notified_at="2026-11-21T00:00:00Z",
        seen_count=1,
        notify_count=1,
        version=1,
        expires_at=1_800_000_000,
    )
    item = state_to_item(state)
    definition = state_table_definition("t")
    key = definition["KeySchema"][0]["AttributeName"]
    assert item[key] == {"S": "k"}
    assert definition["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
    ttl = state_table_ttl_specification()["AttributeName"]
    assert item[ttl] == {"N": "1800000000"}  # TTL needs epoch seconds as a number


def test_ack_receiver_definitions():
    assert ack_handler(_policy(acknowledgements={"mode": "none"})) is None
    assert (
        ack_handler(_policy())
        == ACK_HANDLERS["function_url"]
        == "findings_router.entrypoints.receive_acks.function_url_handler"
    )
    eventbridge = _policy(
        acknowledgements={"mode": "eventbridge", "partner_event_source": "aws.partner/pagerduty.com/x"}
    )
    assert ack_handler(eventbridge) == "findings_router.entrypoints.receive_acks.eventbridge_handler"
    # The same environment as the router (same policy file and table), but no dead-letter queue: only the router
    # parks messages there.
    router = function_environment(_policy(), "t", dead_letter_queue_url=DLQ_URL)
    assert ack_function_environment(_policy(), "t") == {k: v for k, v in router.items() if k != "DEAD_LETTER_QUEUE_URL"}
    assert ack_event_pattern() == {
        "source": [{"prefix": "aws.partner/pagerduty.com/"}],
        "detail-type": ["PagerDuty Webhook"],
    }


def test_meta_alert_definitions():
    policy = _policy()
    assert meta_alert_environment(policy) == {"POLICY_FILE": f"{LAMBDA_TASK_ROOT}/config/dev.json"}
    # Defaults: a 30 s budget and 5 s per request, plus 15 s.
    assert meta_alert_timeout_seconds(policy) == 50
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["notifier"]["retry"] = {"budget_seconds": 12.5, "timeout_seconds": 2}
    assert meta_alert_timeout_seconds(Policy.model_validate(data)) == 15 + 15


@pytest.mark.parametrize("field", ["signing_secret", "rest_api_token_secret"])
def test_partial_ack_secret_arns_are_refused(field: str):
    partial = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:pd-webhook"
    problems = deployment_problems(_policy(acknowledgements={field: partial}))
    assert problems == [
        f"acknowledgements.{field}: an ARN must be the secret's complete ARN (ending in -XXXXXX); "
        "or give the secret's name"
    ]
    assert deployment_problems(_policy(acknowledgements={field: partial + "-AbCdEf"})) == []


def test_rest_api_key_is_only_sent_over_https():
    policy = _policy(acknowledgements={"rest_api_token_secret": "pd-rest", "rest_api_url": "http://api.pagerduty.com"})
    assert deployment_problems(policy) == [
        "acknowledgements.rest_api_url: http://api.pagerduty.com must be an https:// URL"
    ]
    assert deployment_problems(_policy(acknowledgements={"rest_api_token_secret": "pd-rest"})) == []


def _config_copy(tmp_path: Path, *envs: str) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    for env in envs:
        shutil.copy(REPO_ROOT / "config" / f"{env}.yaml", config)
    return config


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_deployment_checks_name_the_field_and_validation_adds_the_line(tmp_path: Path):
    config = _config_copy(tmp_path, "dev", "stg")
    _edit(config / "dev.yaml", "log_retention_days: 14", "log_retention_days: 15")
    _edit(
        config / "stg.yaml",
        "  mode: eventbridge\n",
        "  mode: eventbridge\n  rest_api_token_secret: pd-rest\n  rest_api_url: http://api.pagerduty.com\n",
    )
    [(check, *_)] = [(p.loc, p.message) for p in deployment_checks(load_policy(config / "dev.yaml"))]
    assert check == ("function", "log_retention_days")
    result = validate_deployment_config(config, today=dt.date(2026, 1, 1), expired_suppressions="error")
    assert [str(p) for p in result.errors] == [
        f"{config / 'dev.yaml'}:34: function.log_retention_days: 15 is not a CloudWatch Logs retention period "
        "(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)",
        f"{config / 'stg.yaml'}:46: acknowledgements.rest_api_url: http://api.pagerduty.com must be an https:// URL",
    ]
    assert set(result.policies) == set()


def test_synth_refuses_what_validate_config_refuses_with_the_same_lines(tmp_path: Path):
    from aws_cdk import App

    from infra.application import build

    config = _config_copy(tmp_path, "dev", "prod")
    _edit(config / "dev.yaml", "log_retention_days: 14", "log_retention_days: 15")
    with (config / "prod.yaml").open("a") as f:
        f.write("default_action: page\n")
    checked = validate_deployment_config(config, today=dt.date(2026, 1, 1), expired_suppressions="error")
    with pytest.raises(PolicyError) as info:
        build(App(outdir=str(tmp_path / "out")), config_dir=config, include_dependencies=False)
    assert info.value.problems == [str(p) for p in checked.errors]
    assert [p.split(": ", 2)[1] for p in info.value.problems] == ["function.log_retention_days", "default_action"]


def test_an_expired_suppression_only_warns_at_synth(tmp_path: Path):
    from aws_cdk import App

    from infra.application import build

    config = _config_copy(tmp_path, "prod")
    warnings: list[str] = []
    stacks = build(
        App(outdir=str(tmp_path / "out")),
        config_dir=config,
        include_dependencies=False,
        today=dt.date(2027, 4, 1),
        warn=warnings.append,
    )
    assert set(stacks) == {"prod"}
    assert warnings == [
        f"{config / 'prod.yaml'}:56: suppressions[0].expires: warning: suppression 'firmware-signing-account-root-mfa' "
        "expired on 2027-03-31 (1 day ago) and no longer applies: renew it after review, or remove it"
    ]
    # validate-config (CI) fails on it.
    [error] = validate_deployment_config(config, today=dt.date(2027, 4, 1), expired_suppressions="error").errors
    assert str(error) == warnings[0].replace("warning: ", "", 1)


def test_a_stack_built_from_a_files_policy_reports_the_line(tmp_path: Path):
    from aws_cdk import App

    from infra.stack import FindingsRouterStack, InvalidDeploymentSettingsError

    config = _config_copy(tmp_path, "dev")
    _edit(config / "dev.yaml", "log_retention_days: 14", "log_retention_days: 15")
    with pytest.raises(InvalidDeploymentSettingsError, match=r"dev\.yaml:34: function\.log_retention_days: 15 is"):
        FindingsRouterStack(
            App(outdir=str(tmp_path / "out")),
            "FindingsRouter-dev",
            policy=load_policy(config / "dev.yaml"),
            include_dependencies=False,
            config_dir=config,
        )


# ------------------------------------------------------------------------------------------ custom action


@pytest.mark.parametrize("mode", ["page", "notify", "policy"])
@pytest.mark.parametrize("environment", ["prod", "staging", "a" * 16])
def test_action_target_tells_operators_what_it_does(mode, environment):
    policy = _policy(environment, custom_action={"id": "PageOnCallX", "mode": mode})
    properties = action_target_properties(policy)
    assert properties is not None
    assert properties["Id"] == "PageOnCallX"
    # Security Hub: Name up to 20 characters; the console shows the Description next to it (up to 256).
    assert 0 < len(properties["Name"]) <= 20
    assert 0 < len(properties["Description"]) <= 256
    verb = {"page": "Page", "notify": "Notify", "policy": "Send to"}[mode]
    assert properties["Name"].startswith(verb)
    assert environment in properties["Description"]
    assert "on-call" in properties["Description"]
    if len(f"{verb} on-call {environment}") <= 20:
        assert properties["Name"] == f"{verb} on-call {environment}"
    if mode == "notify":
        assert "low urgency" in properties["Description"]


def test_shipped_action_targets():
    from findings_router.settings.load import load_policy

    names = {
        env: action_target_properties(load_policy(REPO_ROOT / "config" / f"{env}.yaml")) for env in ("dev", "prod")
    }
    assert names["prod"] is not None and names["prod"]["Name"] == "Page on-call prod"
    assert names["dev"] is not None and names["dev"]["Name"] == "Notify on-call dev"
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data.pop("custom_action")
    assert action_target_properties(Policy.model_validate(data)) is None


# ------------------------------------------------------------------------------------------ IAM conditions


def test_securityhub_writeback_condition_allows_a_note_and_one_status():
    asff, ocsf = "securityhub:ASFFSyntaxPath/", "securityhub:OCSFSyntaxPath/"
    router = securityhub_writeback_condition(ROUTER_WORKFLOW_STATUS)
    assert router["StringEqualsIfExists"] == {f"{asff}Workflow.Status": "NOTIFIED", f"{ocsf}StatusId": "2"}
    forbidden = set(router["Null"])
    assert all(value == "true" for value in router["Null"].values())
    assert {f"{asff}Severity.Label", f"{asff}Types", f"{asff}VerificationState", f"{ocsf}SeverityId"} <= forbidden
    # The note (ASFF Note.Text / Note.UpdatedBy, OCSF Comment) and the allowed status are never forbidden.
    for allowed in ("Note.Text", "Note.UpdatedBy", "Workflow.Status"):
        assert f"{asff}{allowed}" not in forbidden
    assert f"{ocsf}Comment" not in forbidden and f"{ocsf}StatusId" not in forbidden
    # A note only: both status fields must be absent.
    note_only = securityhub_writeback_condition(None)
    assert "StringEqualsIfExists" not in note_only
    assert set(note_only["Null"]) == forbidden | {f"{asff}Workflow.Status", f"{ocsf}StatusId"}
    resolve = securityhub_writeback_condition("RESOLVED")
    assert resolve["StringEqualsIfExists"] == {f"{asff}Workflow.Status": "RESOLVED", f"{ocsf}StatusId": "4"}


def test_statuses_match_what_the_functions_write():
    from findings_router.adapters.securityhub import OCSF_STATUS

    assert ROUTER_WORKFLOW_STATUS in OCSF_STATUS
    assert ack_workflow_status(_policy(securityhub={"resolve_workflow_on_operator_resolve": True})) == "RESOLVED"
    assert ack_workflow_status(_policy(securityhub={"resolve_workflow_on_operator_resolve": False})) is None


def _iam_like(pattern: str, value: str) -> bool:
    """IAM StringLike: `*` any run of characters, `?` one character, everything else literal."""
    import re

    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def test_state_key_patterns_select_dedup_state_but_not_storm_counters():
    from findings_router.domain.keys import dedup_key, storm_key
    from findings_router.domain.normalize import normalize_event
    from tests.builders import asff, event

    (finding,) = normalize_event(event(asff())).findings
    state = dedup_key(finding)
    storm = storm_key(["GuardDuty", "111122223333"], 1_800_000_000)
    assert _iam_like(STATE_KEY_PATTERN, state) and not _iam_like(STORM_KEY_PATTERN, state)
    assert _iam_like(STATE_KEY_PATTERN, storm) and _iam_like(STORM_KEY_PATTERN, storm)
    names = resource_names(_policy())
    idempotency = f"{names.ack_function}.{ACK_IDEMPOTENT_FUNCTION}#0123456789abcdef0123456789abcdef"
    assert _iam_like(ack_idempotency_key_pattern(names), idempotency)
    assert not _iam_like(STATE_KEY_PATTERN, idempotency)
    for key in (state, storm, f"{resource_names(_policy('other')).ack_function}.{ACK_IDEMPOTENT_FUNCTION}#00"):
        assert not _iam_like(ack_idempotency_key_pattern(names), key)
