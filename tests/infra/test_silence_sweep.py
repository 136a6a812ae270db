"""Silences in the template: the state table's one (sparse) time index, the router reading silences through it only,
and the sweep: on its schedule in every environment, its own least-privilege role, and its errors alarm."""

from __future__ import annotations

import pytest

from infra.constructs.silence_sweep import SWEEP_STATE_ACTIONS
from infra.contract import (
    ROUTER_WORKFLOW_STATUS,
    SILENCE_KEY_PATTERN,
    SILENCE_SWEEP_HANDLER,
    STATE_KEY_PATTERN,
    STATE_TABLE_INDEX_PROJECTED,
    resource_names,
    securityhub_writeback_condition,
)
from tests.infra.conftest import SynthesizedStack
from tests.infra.test_pager_pager import _alarm
from tests.infra.test_stack import _arn, _logical_id, granted, hub_arns, secret_arn

pytestmark = pytest.mark.infra


def _index_arn(table: str) -> dict:
    return {"Fn::Join": ["", [_arn(table), "/index/time-index"]]}


def test_the_state_table_has_one_sparse_time_index(synthesized: SynthesizedStack):
    table = synthesized.only("AWS::DynamoDB::Table")["Properties"]
    # One GSI: CloudFormation adds at most one per table update, and a deployed table gets it in place.
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "time-index"
    assert index["KeySchema"] == [
        {"AttributeName": "index_pk", "KeyType": "HASH"},
        {"AttributeName": "index_sk", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": list(STATE_TABLE_INDEX_PROJECTED),
    }
    assert "ProvisionedThroughput" not in index  # on demand, like the table


def test_the_sweep_runs_in_every_environment_on_its_schedule(synthesized: SynthesizedStack):
    names = resource_names(synthesized.policy)
    function_id = synthesized.named("AWS::Lambda::Function", "FunctionName", names.silence_sweep_function)
    function = synthesized.properties(function_id)
    assert function["Handler"] == SILENCE_SWEEP_HANDLER
    assert function["ReservedConcurrentExecutions"] == 1
    assert function["Timeout"] == synthesized.policy.function.timeout_seconds
    variables = function["Environment"]["Variables"]
    assert variables["STATE_TABLE_NAME"] == {"Ref": _logical_id(synthesized, "AWS::DynamoDB::Table")}
    rule = synthesized.properties(synthesized.named("AWS::Events::Rule", "Name", names.silence_sweep_schedule))
    assert rule["ScheduleExpression"] == f"rate({synthesized.policy.silences.sweep_minutes} minutes)"
    (target,) = rule["Targets"]
    assert target["Arn"] == _arn(function_id)
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0  # the next run sees the same work
    alarm = _alarm(synthesized, "silence-sweep-errors")
    assert alarm["MetricName"] == "Errors"


def test_the_sweep_role_is_least_privilege(synthesized: SynthesizedStack):
    names = resource_names(synthesized.policy)
    table = _logical_id(synthesized, "AWS::DynamoDB::Table")
    function_id = synthesized.named("AWS::Lambda::Function", "FunctionName", names.silence_sweep_function)
    role = synthesized.properties(function_id)["Role"]["Fn::GetAtt"][0]
    log_group = synthesized.named("AWS::Logs::LogGroup", "LogGroupName", names.silence_sweep_log_group)
    conditions = {
        # Episodes and storm counters: `fr1-…` keys, never a silence's item (only the CLI writes those).
        "OwedEpisodes": {
            "Null": {"dynamodb:LeadingKeys": "false"},
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [STATE_KEY_PATTERN]},
            "ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": [SILENCE_KEY_PATTERN]},
        }
    }
    if synthesized.policy.securityhub.writeback:
        conditions["UpdateFindingWorkflow"] = securityhub_writeback_condition(ROUTER_WORKFLOW_STATUS)
    grants = granted(synthesized, role, conditions)
    assert grants.pop("logs:CreateLogStream") == [_arn(log_group)]
    assert grants.pop("logs:PutLogEvents") == [_arn(log_group)]
    # The time index only: no Scan, no Query of the table itself.
    assert grants.pop("dynamodb:Query") == [_index_arn(table)]
    for action in SWEEP_STATE_ACTIONS:
        assert grants.pop(action) == [_arn(table)]
    if synthesized.policy.securityhub.writeback:
        assert grants.pop("securityhub:BatchUpdateFindings") == hub_arns(synthesized)
    # It sends where the router sends: the routing key and every notifier's secret, read only.
    from infra.contract import notifier_secrets

    secrets = [secret_arn(synthesized, synthesized.policy.notifier.routing_key_secret)]
    secrets += [secret_arn(synthesized, secret) for _, _, secret in notifier_secrets(synthesized.policy)]
    assert sorted(map(str, grants.pop("secretsmanager:GetSecretValue"))) == sorted(map(str, secrets))
    assert grants == {}
