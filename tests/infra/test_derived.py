"""infra/derived.py: settings computed from the policy, the log retention table, and the checks synth and
validate-config make."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from findings_router.settings.load import PolicyError, load_policy
from findings_router.settings.schema import Policy
from infra.derived import (
    LOG_RETENTION_DAYS,
    QUEUE_RETENTION_DAYS,
    SECONDS_PER_DAY,
    deployment_checks,
    deployment_problems,
    meta_alert_timeout_seconds,
    queue_settings,
    validate_deployment_config,
)
from tests.infra.conftest import REPO_ROOT
from tests.infra.conftest import dev_policy as _policy

pytestmark = pytest.mark.infra


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


def test_meta_alert_timeout_covers_the_notifiers_retry_budget():
    # Defaults: a 30 s budget and 5 s per request, plus 15 s.
    assert meta_alert_timeout_seconds(_policy()) == 50
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["notifier"]["retry"] = {"budget_seconds": 12.5, "timeout_seconds": 2}
    assert meta_alert_timeout_seconds(Policy.model_validate(data)) == 15 + 15


def test_each_log_retention_period_is_the_cdk_retention_of_as_many_days():
    """Each entry names a `logs.RetentionDays` member, and that member synthesizes to the entry's days."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_logs as logs
    from aws_cdk.assertions import Template

    from infra.constructs.function import log_retention

    assert all(name in logs.RetentionDays.__members__ for name in LOG_RETENTION_DAYS.values())
    # Every finite period CDK knows is in the table (INFINITE is not a CloudWatch Logs retention period).
    assert set(LOG_RETENTION_DAYS.values()) == {m.name for m in logs.RetentionDays} - {"INFINITE"}
    assert list(LOG_RETENTION_DAYS) == sorted(LOG_RETENTION_DAYS)
    stack = Stack(App(), "Retention")
    for days in LOG_RETENTION_DAYS:
        logs.LogGroup(stack, f"Days{days}", log_group_name=str(days), retention=log_retention(days))
    synthesized = Template.from_stack(stack).find_resources("AWS::Logs::LogGroup").values()
    retention = {group["Properties"]["LogGroupName"]: group["Properties"]["RetentionInDays"] for group in synthesized}
    assert retention == {str(days): days for days in LOG_RETENTION_DAYS}


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


def _line(path: Path, start: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(start))


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
        f"{config / 'stg.yaml'}:{_line(config / 'stg.yaml', '  rest_api_url:')}: acknowledgements.rest_api_url: http://api.pagerduty.com must be an https:// URL",
    ]
    assert set(result.policies) == set()


def test_synth_refuses_what_validate_config_refuses_with_the_same_lines(tmp_path: Path):
    from aws_cdk import App

    from infra.app import build

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

    from infra.app import build

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
        f"{config / 'prod.yaml'}:64: suppressions[0].expires: warning: suppression 'firmware-signing-account-root-mfa' "
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


# ------------------------------------------------------------------------------------------ the pager's pager


def test_production_must_email_and_page_its_own_alarms_through_a_service_of_their_own(tmp_path: Path):
    """validate-config (and synth) refuse a production policy whose meta-alerts share the findings' key or whose
    meta-alert function's failures reach nobody; each error names the file, the line and the field."""
    config = _config_copy(tmp_path, "prod")
    prod = config / "prod.yaml"
    _edit(prod, "  alarm_emails: [security-platform-oncall@example.com]", "  alarm_emails: []")
    _edit(prod, "  meta_alert_routing_key_secret: findings-router/prod/pagerduty-meta-routing-key\n", "")
    result = validate_deployment_config(config, today=dt.date(2026, 1, 1), expired_suppressions="error")
    errors = [str(p) for p in result.errors]
    assert len(errors) == 2
    assert errors[0].startswith(f"{prod}:86: monitoring.alarm_emails: production needs an address")
    assert errors[1].startswith(f"{prod}:84: monitoring.meta_alert_routing_key_secret: production needs one")


def test_dev_may_share_the_findings_key_for_meta_alerts_and_go_without_emails():
    assert deployment_problems(_policy()) == []


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            {"production": True, "monitoring": {"alarm_emails": ["a@example.com"], "meta_alerts": "off"}},
            "canary: the canary is on (the default in production) and needs routing_key_secret",
        ),
        ({"canary": {"enabled": True}}, "canary: the canary is on (canary.enabled) and needs routing_key_secret"),
        (
            {"canary": {"enabled": True, "routing_key_secret": "findings-router/dev/pagerduty-routing-key"}},
            "canary.routing_key_secret: must not be notifier.routing_key_secret",
        ),
        (
            {"monitoring": {"meta_alert_routing_key_secret": "findings-router/dev/pagerduty-routing-key"}},
            "monitoring.meta_alert_routing_key_secret: must be a service of its own",
        ),
        (
            {"canary": {"routing_key_secret": "arn:aws:secretsmanager:eu-central-1:111122223333:secret:canary"}},
            "canary.routing_key_secret: an ARN must be the secret's complete ARN",
        ),
    ],
)
def test_the_canary_and_the_meta_alerts_never_share_the_channel_they_watch(settings: dict, problem: str):
    problems = deployment_problems(_policy(**settings))
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_the_canary_alarm_may_not_fire_on_one_late_run():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="at least twice schedule_minutes"):
        _policy(canary={"schedule_minutes": 15, "alarm_after_minutes": 20, "routing_key_secret": "c"})
