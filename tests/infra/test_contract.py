"""infra/contract.py: names, the state table, handlers, environments and write-back shared with local mode; and
that the CDK-free modules stay CDK-free."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys

import pytest

from infra.contract import (
    ACK_HANDLERS,
    ACK_IDEMPOTENT_FUNCTION,
    LAMBDA_TASK_ROOT,
    ROUTER_WORKFLOW_STATUS,
    STATE_KEY_PATTERN,
    STORM_KEY_PATTERN,
    ack_function_environment,
    ack_handler,
    ack_idempotency_key_pattern,
    ack_workflow_status,
    function_environment,
    meta_alert_environment,
    packaged_policy_path,
    resource_names,
    securityhub_writeback_condition,
    stack_name,
    state_table_definition,
    state_table_ttl_specification,
)
from infra.event_patterns import ack_event_pattern
from tests.infra.conftest import REPO_ROOT
from tests.infra.conftest import dev_policy as _policy

DLQ_URL = "https://sqs.eu-central-1.amazonaws.com/111122223333/findings-router-dev-findings-dlq"

pytestmark = pytest.mark.infra

# What local mode, the CLI and the benches import from infra: none of it may need the CDK (or node).
CDK_FREE_MODULES = ("infra.contract", "infra.event_patterns", "infra.derived", "infra.packaging")


@pytest.mark.parametrize("module", CDK_FREE_MODULES)
def test_cdk_free_modules_import_no_cdk(module: str):
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aws_cdk', 'jsii', 'constructs', 'cdk_nag')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"


def test_the_functions_never_import_infra():
    """The function package ships functions/ only: an `infra` import there would fail on Lambda."""
    offenders = []
    for path in sorted((REPO_ROOT / "functions").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path}:{node.lineno}: {n}" for n in names if n.split(".")[0] == "infra"]
    assert offenders == []


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
    assert definition["AttributeDefinitions"][0] == {"AttributeName": key, "AttributeType": "S"}
    # The time index: the keys an owing episode (and a silence) carries, as the store writes them.
    [index] = definition["GlobalSecondaryIndexes"]
    partition, sort = (k["AttributeName"] for k in index["KeySchema"])
    assert {a["AttributeName"] for a in definition["AttributeDefinitions"][1:]} == {partition, sort}
    owing = dataclasses.replace(state, silenced=("k",), silenced_by="s1", silenced_until="2026-11-21T02:00:00Z")
    assert state_to_item(owing)[partition] == {"S": "owed"}
    assert state_to_item(owing)[sort] == {"S": "2026-11-21T02:00:00Z"}
    assert partition not in item  # sparse: an episode owing nothing is not in the index
    assert set(index["Projection"]["NonKeyAttributes"]) >= {"silenced_by"}
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


def test_meta_alert_environment():
    assert meta_alert_environment(_policy()) == {"POLICY_FILE": f"{LAMBDA_TASK_ROOT}/config/dev.json"}


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


def test_each_functions_environment_is_what_the_composition_root_reads():
    """infra sets the variables, bootstrap.RuntimeEnv reads them: a renamed variable on either side fails here."""
    from findings_router.bootstrap import RuntimeEnv
    from infra.contract import ack_function_environment, function_environment, meta_alert_environment

    policy = _policy()
    router = RuntimeEnv.from_environ(
        function_environment(policy, "state-table", dead_letter_queue_url="https://sqs.example/dlq")
    )
    assert (router.policy_file.endswith(".json"), router.state_table) == (True, "state-table")
    assert router.dead_letter_queue_url == "https://sqs.example/dlq"
    assert router.events_url is None  # only local runs point the notifier elsewhere
    ack = RuntimeEnv.from_environ(ack_function_environment(policy, "state-table"))
    assert (ack.state_table, ack.dead_letter_queue_url) == ("state-table", None)
    meta = RuntimeEnv.from_environ(meta_alert_environment(policy))
    assert meta.policy_file == router.policy_file and meta.state_table == ""
