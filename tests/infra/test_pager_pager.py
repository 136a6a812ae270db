"""The pager's pager in the template: the canary (schedule, least privilege, its alarm), the silence alarm, the
webhook flood alarms, and each of them paging through the meta-alerts' own service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.contract import (
    ACKS_REJECTED_METRIC,
    CANARY_COMPLETED_METRIC,
    CANARY_HANDLER,
    FINDINGS_RECEIVED_METRIC,
    METRICS_NAMESPACE,
    POWERTOOLS_SERVICE_NAME,
    resource_names,
)
from tests.infra.conftest import VARIANT_ACCOUNT, SynthesizedStack
from tests.infra.test_stack import _arn, granted

pytestmark = pytest.mark.infra


def _alarm(stack: SynthesizedStack, suffix: str) -> dict[str, Any]:
    name = f"{resource_names(stack.policy).alarm_prefix}-{suffix}"
    return stack.properties(stack.named("AWS::CloudWatch::Alarm", "AlarmName", name))


def _alarm_names(stack: SynthesizedStack) -> set[str]:
    prefix = resource_names(stack.policy).alarm_prefix + "-"
    return {
        a["Properties"]["AlarmName"].removeprefix(prefix) for a in stack.resources("AWS::CloudWatch::Alarm").values()
    }


def _powertools_dimensions(stack: SynthesizedStack) -> list[dict[str, str]]:
    return [
        {"Name": "environment", "Value": stack.policy.environment},
        {"Name": "service", "Value": POWERTOOLS_SERVICE_NAME},
    ]


def test_the_canary_runs_on_its_schedule_with_only_its_import_permission(variant: SynthesizedStack):
    names = resource_names(variant.policy)
    function_id = variant.named("AWS::Lambda::Function", "FunctionName", names.canary_function)
    function = variant.properties(function_id)
    assert function["Handler"] == CANARY_HANDLER
    assert function["ReservedConcurrentExecutions"] == 1
    rule = variant.properties(variant.named("AWS::Events::Rule", "Name", names.canary_schedule))
    assert rule["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = rule["Targets"]
    assert target["Arn"] == _arn(function_id)
    role = function["Role"]["Fn::GetAtt"][0]
    log_group = variant.named("AWS::Logs::LogGroup", "LogGroupName", names.canary_log_group)
    assert granted(variant, role) == {
        "logs:CreateLogStream": [_arn(log_group)],
        "logs:PutLogEvents": [_arn(log_group)],
        # Its account's own private product, nothing else: no BatchUpdateFindings, no secrets, no table.
        "securityhub:BatchImportFindings": [
            f"arn:aws:securityhub:eu-central-1:{VARIANT_ACCOUNT}:product/{VARIANT_ACCOUNT}/default"
        ],
    }


def test_no_completed_canary_alarms_and_missing_data_counts_as_none(variant: SynthesizedStack):
    alarm = _alarm(variant, "canary-missing")
    assert (alarm["Namespace"], alarm["MetricName"]) == (METRICS_NAMESPACE, CANARY_COMPLETED_METRIC)
    assert alarm["Dimensions"] == _powertools_dimensions(variant)
    assert alarm["Period"] == 20 * 60  # canary.alarm_after_minutes
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    # A dead router, queue or Security Hub emits nothing at all: that must alarm, not stay OK.
    assert alarm["TreatMissingData"] == "breaching"


def test_silence_detection_alarms_when_no_real_finding_arrived(variant: SynthesizedStack):
    alarm = _alarm(variant, "no-findings")
    assert alarm["MetricName"] == FINDINGS_RECEIVED_METRIC
    assert alarm["Period"] == 720 * 60
    assert (alarm["ComparisonOperator"], alarm["TreatMissingData"]) == ("LessThanThreshold", "breaching")


def test_a_flood_at_the_public_webhook_url_alarms(variant: SynthesizedStack):
    rejected = _alarm(variant, "ack-receiver-rejected-signatures")
    assert rejected["MetricName"] == ACKS_REJECTED_METRIC
    assert rejected["Dimensions"] == _powertools_dimensions(variant)
    assert (rejected["ComparisonOperator"], rejected["Threshold"]) == ("GreaterThanOrEqualToThreshold", 5)
    throttles = _alarm(variant, "ack-receiver-throttles")
    assert throttles["MetricName"] == "Throttles"


def test_which_alarms_each_environment_has(synthesized: SynthesizedStack):
    policy = synthesized.policy
    alarms = _alarm_names(synthesized)
    assert ("canary-missing" in alarms) == ("canary-errors" in alarms) == policy.canary_enabled
    assert ("no-findings" in alarms) == (policy.monitoring.no_findings_alarm_minutes is not None)
    # Only a public URL can be flooded with unsigned requests; the partner bus authenticates its source. JSM's
    # webhooks bring a Function URL with the partner bus too.
    public = policy.acknowledgements.mode == "function_url" or policy.acknowledgements.jsm_token_secret is not None
    assert ("ack-receiver-rejected-signatures" in alarms) == public
    assert ("ack-receiver-throttles" in alarms) == (policy.acknowledgements.mode != "none")


def test_production_runs_the_canary_and_the_silence_alarm(synthesis):
    prod = synthesis.stacks["prod"]
    assert {"canary-missing", "canary-errors", "no-findings"} <= _alarm_names(prod)
    assert prod.policy.canary.schedule_minutes == 15


def test_metric_names_the_alarms_watch_are_the_ones_the_functions_emit():
    from findings_router.entrypoints import observability, route_findings

    assert observability.CANARY_COMPLETED_METRIC == CANARY_COMPLETED_METRIC
    assert route_findings.FINDINGS_RECEIVED_METRIC == FINDINGS_RECEIVED_METRIC
    source = Path(route_findings.__file__ or "").with_name("receive_acks.py")
    assert f'name="{ACKS_REJECTED_METRIC}"' in source.read_text()
