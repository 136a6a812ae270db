"""`findings-router status`: the open episodes, dead letters and alarms of a deployed stack (moto in-process)."""

from __future__ import annotations

import dataclasses
import io
import json

import boto3
import pytest
from moto import mock_aws

from findings_router.adapters.state_table import DynamoDedupStore
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.route import FindingsRouter, route_findings
from findings_router.settings.load import load_policy
from findings_router_local.status import StatusError, read_status, render_status, status_command
from infra.contract import resource_names, state_table_definition
from tests.builders import CONFIG_DIR, NOW, asff, control

REGION = "eu-central-1"


@pytest.fixture
def deployed(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        policy = load_policy(CONFIG_DIR / "prod.yaml")
        names = resource_names(policy)
        session = boto3.Session(region_name=REGION)
        ddb = session.client("dynamodb")
        ddb.create_table(**state_table_definition(names.state_table))
        sqs = session.client("sqs")
        sqs.create_queue(QueueName=names.queue)
        dlq = sqs.create_queue(QueueName=names.dead_letter_queue)["QueueUrl"]
        router = FindingsRouter(CompiledPolicy(policy), DynamoDedupStore(names.state_table, ddb), RecordingNotifier())
        yield policy, session, router, sqs, dlq


def test_status_lists_open_and_acknowledged_episodes_most_urgent_first(deployed):
    policy, session, router, _, _ = deployed
    critical, high = asff(severity="CRITICAL"), control("S3.8", severity="HIGH")
    routed = route_findings(router, [normalize_asff(high), normalize_asff(critical)], NOW)
    route_findings(router, [normalize_asff(asff(severity="HIGH", RecordState="ARCHIVED"))], NOW)  # memory only
    store = router.store
    key = routed[0].decision.key
    [state] = store.get_many([key]).values()
    assert store.put(
        dataclasses.replace(state, status="acknowledged", acknowledged_by="Ada", version=state.version + 1),
        state.version,
    )

    status = read_status(session, policy, now=NOW)
    assert [(e.status, e.severity) for e in status.episodes] == [("open", "CRITICAL"), ("acknowledged", "HIGH")]
    assert status.episodes[1].acknowledged_by == "Ada"
    assert (status.dead_letters, status.queued, status.alarming) == (0, 0, [])
    assert status.last_page_at is not None
    text = render_status(status)
    assert text.startswith("prod: 1 open, 1 acknowledged · dead letters 0")


def test_status_exits_1_with_dead_letters_or_an_alarm_and_speaks_json(deployed):
    policy, session, _, sqs, dlq = deployed
    sqs.send_message(QueueUrl=dlq, MessageBody="{}")
    cloudwatch = session.client("cloudwatch")
    for env in ("prod", "prod-eu"):  # another environment whose name starts with this one's
        cloudwatch.put_metric_alarm(
            AlarmName=f"findings-router-{env}-dead-letters",
            MetricName="ApproximateNumberOfMessagesVisible",
            Namespace="AWS/SQS",
            Dimensions=[{"Name": "QueueName", "Value": f"findings-router-{env}-findings-dlq"}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=f"findings-router-{env}-dead-letters", StateValue="ALARM", StateReason="t")
    session.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{resource_names(policy).alarm_prefix}-dlq-not-empty",
        MetricName="ApproximateNumberOfMessagesVisible",
        Namespace="AWS/SQS",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    session.client("cloudwatch").set_alarm_state(
        AlarmName=f"{resource_names(policy).alarm_prefix}-dlq-not-empty", StateValue="ALARM", StateReason="test"
    )
    out = io.StringIO()
    assert status_command(session, policy, output="json", out=out) == 1
    data = json.loads(out.getvalue())
    assert data["dead_letters"] == 1
    assert data["alarming"] == ["findings-router-prod-dead-letters", "findings-router-prod-dlq-not-empty"]
    assert data["episodes"] == []


def test_a_stack_that_is_not_there_is_one_line(deployed):
    policy, session, _, _, _ = deployed
    other = policy.model_copy(update={"environment": "qa"})
    with pytest.raises(StatusError, match=r"^no state table 'findings-router-qa-state': is the stack deployed"):
        read_status(session, other)


def test_no_region_is_one_line(deployed, monkeypatch):
    policy, _, _, _, _ = deployed
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(StatusError, match=r"^no AWS region: pass --region"):
        read_status(boto3.Session(), policy.model_copy(update={"region": None}))


def test_alarms_on_the_environments_own_metrics_and_scheduled_functions_count(deployed):
    policy, session, *_ = deployed
    names = resource_names(policy)
    cloudwatch = session.client("cloudwatch")
    alarms = {
        # canary-missing and no-findings watch the functions' own metrics (Powertools' dimensions).
        f"{names.alarm_prefix}-canary-missing": [
            {"Name": "environment", "Value": policy.environment},
            {"Name": "service", "Value": "findings-router"},
        ],
        f"{names.alarm_prefix}-psirt-digest-errors": [{"Name": "FunctionName", "Value": names.psirt_digest_function}],
        f"{names.alarm_prefix}-silence-sweep-errors": [{"Name": "FunctionName", "Value": names.silence_sweep_function}],
        # prod-eu's canary, whose name starts with prod's: not prod's.
        f"{names.alarm_prefix}-eu-canary-missing": [
            {"Name": "environment", "Value": f"{policy.environment}-eu"},
            {"Name": "service", "Value": "findings-router"},
        ],
    }
    for name, dimensions in alarms.items():
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="Errors",
            Namespace="FindingsRouter",
            Dimensions=dimensions,
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    out = io.StringIO()
    assert status_command(session, policy, output="json", out=out) == 1
    assert json.loads(out.getvalue())["alarming"] == sorted(n for n in alarms if "-eu-" not in n)
