"""The ack receiver in both front-door modes (function_url: dev, prod; eventbridge: stg) and without it (none)."""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any

import pytest

from infra.constructs.ack_receiver import ACK_IDEMPOTENCY_ACTIONS, ACK_STATE_ACTIONS
from infra.contract import (
    ACK_HANDLER_BOTH,
    ACK_HANDLERS,
    ACK_IDEMPOTENT_FUNCTION,
    ACK_WEBHOOK_PATH,
    FUNCTION_HANDLER,
    META_ALERT_HANDLER,
    ack_function_environment,
    ack_handler,
    ack_workflow_status,
    notifier_secrets,
    resource_names,
    securityhub_writeback_condition,
)
from infra.derived import ACK_MEMORY_MB, ACK_TIMEOUT_SECONDS, DEAD_LETTER_RETENTION_DAYS, SECONDS_PER_DAY
from infra.event_patterns import ack_event_pattern
from tests.builders import load_fixture
from tests.infra.conftest import Synthesis, SynthesizedStack
from tests.infra.eventbridge_matcher import matches, validate
from tests.infra.test_stack import granted, hub_arns, secret_arn

pytestmark = pytest.mark.infra

EVENTBRIDGE_FIXTURE = "pagerduty/eventbridge_incident_acknowledged.json"


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _ack_function(stack: SynthesizedStack) -> str:
    return stack.named("AWS::Lambda::Function", "FunctionName", resource_names(stack.policy).ack_function)


def _by_mode(synthesis: Synthesis, mode: str) -> list[SynthesizedStack]:
    stacks = [s for s in synthesis.stacks.values() if s.policy.acknowledgements.mode == mode]
    assert stacks, f"no shipped environment uses acknowledgements.mode {mode}"
    return stacks


def test_shipped_environments_cover_both_modes(synthesis: Synthesis):
    # The tests below rely on this split; a config change that drops a mode should be a conscious one.
    modes = {env: s.policy.acknowledgements.mode for env, s in synthesis.stacks.items()}
    assert modes == {"dev": "function_url", "prod": "function_url", "stg": "eventbridge"}


def test_every_handler_the_stack_names_exists():
    # The strings in the template must resolve in the package: a typo would only fail at the first invocation.
    for handler in (FUNCTION_HANDLER, META_ALERT_HANDLER, *ACK_HANDLERS.values()):
        module, _, name = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), handler


def test_webhook_path_is_the_handlers_route():
    from findings_router.entrypoints import receive_acks as ack_handler

    assert f"/{ACK_WEBHOOK_PATH}" == ack_handler.WEBHOOK_PATH


def test_ack_function(synthesized: SynthesizedStack):
    policy = synthesized.policy
    names = resource_names(policy)
    function_id = _ack_function(synthesized)
    function = synthesized.properties(function_id)
    table = next(iter(synthesized.resources("AWS::DynamoDB::Table")))
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert function["Handler"] == ack_handler(policy)
    # Both front doors on one function: the partner bus, and JSM's webhooks through a Function URL.
    both = policy.acknowledgements.mode == "eventbridge" and policy.acknowledgements.jsm_token_secret
    assert function["Handler"] == (ACK_HANDLER_BOTH if both else ACK_HANDLERS[policy.acknowledgements.mode])
    assert (function["MemorySize"], function["Timeout"]) == (ACK_MEMORY_MB, ACK_TIMEOUT_SECONDS)
    # PagerDuty wants a 2xx within 5 s; the function must not outlive a delivery by much.
    assert ACK_TIMEOUT_SECONDS <= 10
    assert function["ReservedConcurrentExecutions"] == policy.acknowledgements.reserved_concurrency
    assert function["Environment"]["Variables"] == ack_function_environment(policy, {"Ref": table})  # type: ignore[arg-type]
    log_group = synthesized.named("AWS::Logs::LogGroup", "LogGroupName", names.ack_log_group)
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": log_group}}
    assert synthesized.properties(log_group)["RetentionInDays"] == policy.function.log_retention_days


# ------------------------------------------------------------------------------------------ function_url


def test_function_url_is_unauthenticated_buffered_and_has_no_cors(synthesis: Synthesis):
    for stack in _by_mode(synthesis, "function_url"):
        function = _ack_function(stack)
        (url_id,) = stack.resources("AWS::Lambda::Url")
        url = stack.properties(url_id)
        # NONE: PagerDuty cannot sign SigV4; the handler verifies X-PagerDuty-Signature before anything else.
        assert url == {"AuthType": "NONE", "InvokeMode": "BUFFERED", "TargetFunctionArn": _arn(function)}
        public = [
            p["Properties"]
            for p in stack.resources("AWS::Lambda::Permission").values()
            if p["Properties"]["Principal"] == "*"
        ]
        # Both halves of a public Function URL's resource policy, each only through the URL, only this function.
        assert sorted(public, key=lambda p: p["Action"]) == [
            {
                "Action": "lambda:InvokeFunction",
                "FunctionName": _arn(function),
                "InvokedViaFunctionUrl": True,
                "Principal": "*",
            },
            {
                "Action": "lambda:InvokeFunctionUrl",
                "FunctionName": _arn(function),
                "FunctionUrlAuthType": "NONE",
                "Principal": "*",
            },
        ]
        assert stack.template["Outputs"]["PagerDutyWebhookUrl"]["Value"] == {
            "Fn::Join": ["", [{"Fn::GetAtt": [url_id, "FunctionUrl"]}, "webhooks/pagerduty"]]
        }
        # Synchronous invocations only: no asynchronous retries, no DLQ, no partner-bus rule.
        assert "DeadLetterConfig" not in stack.properties(function)
        assert not [
            c
            for c in stack.resources("AWS::Lambda::EventInvokeConfig").values()
            if c["Properties"]["FunctionName"] == {"Ref": function}
        ]
        assert not [r for r in stack.resources("AWS::Events::Rule").values() if "EventBusName" in r["Properties"]]
        assert resource_names(stack.policy).ack_dead_letter_queue not in json.dumps(stack.template)


# ------------------------------------------------------------------------------------------ eventbridge


def test_partner_bus_rule_targets_the_function_with_retries_and_a_dlq(synthesis: Synthesis):
    for stack in _by_mode(synthesis, "eventbridge"):
        policy = stack.policy
        names = resource_names(policy)
        function = _ack_function(stack)
        rule_id = stack.named("AWS::Events::Rule", "Name", names.ack_rule)
        rule = stack.properties(rule_id)
        assert rule["EventBusName"] == policy.acknowledgements.partner_event_source
        assert rule["EventPattern"] == ack_event_pattern()
        assert rule["State"] == "ENABLED"
        dlq = stack.named("AWS::SQS::Queue", "QueueName", names.ack_dead_letter_queue)
        (target,) = rule["Targets"]
        assert target["Arn"] == _arn(function)
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 24 * 3600}
        assert target["DeadLetterConfig"] == {"Arn": _arn(dlq)}
        # Events accepted but failing in the function: Lambda retries twice, then the same DLQ.
        assert stack.properties(function)["DeadLetterConfig"] == {"TargetArn": _arn(dlq)}
        (invoke_config,) = [
            c["Properties"]
            for c in stack.resources("AWS::Lambda::EventInvokeConfig").values()
            if c["Properties"]["FunctionName"] == {"Ref": function}
        ]
        assert invoke_config["MaximumRetryAttempts"] == 2
        queue = stack.properties(dlq)
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["MessageRetentionPeriod"] == DEAD_LETTER_RETENTION_DAYS * SECONDS_PER_DAY
        (queue_policy,) = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in stack.resources("AWS::SQS::QueuePolicy").values()
            if p["Properties"]["Queues"] == [{"Ref": dlq}]
        ]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in queue_policy
        )
        (events_send,) = [s for s in queue_policy if s.get("Principal") == {"Service": "events.amazonaws.com"}]
        assert events_send["Condition"] == {"ArnEquals": {"aws:SourceArn": _arn(rule_id)}}
        # Only EventBridge, only from this rule, may invoke; a Function URL only for JSM's webhooks.
        invokes = [
            p["Properties"]
            for p in stack.resources("AWS::Lambda::Permission").values()
            if p["Properties"]["FunctionName"] == _arn(function)
        ]
        events_invoke = [i for i in invokes if i["Principal"] == "events.amazonaws.com"]
        assert [i["SourceArn"] for i in events_invoke] == [_arn(rule_id)]
        jsm = policy.acknowledgements.jsm_token_secret is not None
        assert len(stack.resources("AWS::Lambda::Url")) == (1 if jsm else 0)
        public = [i for i in invokes if i not in events_invoke]  # the Function URL's (JSM only)
        assert bool(public) == jsm and all(i["Principal"] == "*" for i in public)
        assert ("JsmWebhookUrl" in stack.template["Outputs"]) == jsm
        assert stack.template["Outputs"]["PagerDutyEventsRuleName"]["Value"] == names.ack_rule


def test_partner_pattern_matches_pagerduty_events_and_nothing_else():
    pattern = ack_event_pattern()
    validate(pattern)
    event = load_fixture(EVENTBRIDGE_FIXTURE)
    assert matches(pattern, event)
    for source in ("aws.partner/pagerduty.com/acme-other", "aws.partner/pagerduty.com/12345/test-event-source"):
        assert matches(pattern, {**event, "source": source})

    def changed(**fields: Any) -> dict[str, Any]:
        other = copy.deepcopy(event)
        other.update(fields)
        return other

    rejected = [
        changed(source="aws.partner/example.com/acme-sec-findings-router"),
        changed(source="pagerduty.com"),
        changed(source="aws.partner/pagerduty.co"),
        changed(**{"detail-type": "PagerDuty Webhook V3"}),
        changed(**{"detail-type": "pagerduty webhook"}),
        # A Security Hub finding event (on the default bus, but a pattern must not rely on the bus alone).
        load_fixture("asff_control_s3_failed.json"),
    ]
    for other in rejected:
        assert not matches(pattern, other), (other["source"], other["detail-type"])


def test_partner_pattern_fits_eventbridge_quota():
    assert len(json.dumps(ack_event_pattern())) <= 2048


# ------------------------------------------------------------------------------------------ IAM


def _expected_ack_grants(stack: SynthesizedStack) -> dict[str, list[Any]]:
    policy = stack.policy
    settings = policy.acknowledgements
    names = resource_names(policy)
    table = next(iter(stack.resources("AWS::DynamoDB::Table")))
    log_group = stack.named("AWS::Logs::LogGroup", "LogGroupName", names.ack_log_group)
    expected: dict[str, list[Any]] = {
        "logs:CreateLogStream": [_arn(log_group)],
        "logs:PutLogEvents": [_arn(log_group)],
    }
    # Two statements on the table (dedup state, idempotency records), each with its own key condition.
    for action in (*ACK_STATE_ACTIONS, *ACK_IDEMPOTENCY_ACTIONS):
        expected.setdefault(action, []).append(_arn(table))
    secrets = []
    if settings.mode == "function_url":
        secrets.append(secret_arn(stack, settings.signing_secret))
    if settings.rest_api_token_secret:
        secrets.append(secret_arn(stack, settings.rest_api_token_secret))
    # The notifier's routing key: Events API v2 resolves of an episode's sibling incidents.
    secrets.append(secret_arn(stack, policy.notifier.routing_key_secret))
    if settings.jsm_token_secret:
        secrets.insert(0, secret_arn(stack, settings.jsm_token_secret))  # JSM's webhooks: granted with the front door
    # The other notifiers' secrets: sibling resolves go where the episode went.
    secrets += [secret_arn(stack, secret) for _, _, secret in notifier_secrets(policy)]
    if policy.canary.routing_key_secret and policy.canary.heartbeat_url_secret:
        # The canary's runs complete here (its incident's webhook): the heartbeat URL is requested from here.
        secrets.append(secret_arn(stack, policy.canary.heartbeat_url_secret))
    expected["secretsmanager:GetSecretValue"] = secrets
    if policy.securityhub.writeback:
        expected["securityhub:BatchUpdateFindings"] = hub_arns(stack)
    if settings.mode == "eventbridge":
        dlq = stack.named("AWS::SQS::Queue", "QueueName", names.ack_dead_letter_queue)
        expected["sqs:SendMessage"] = [_arn(dlq)]
    return expected


def _key_condition(like: str, not_like: str | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "Null": {"dynamodb:LeadingKeys": "false"},
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [like]},
    }
    if not_like:
        condition["ForAllValues:StringNotLike"] = {"dynamodb:LeadingKeys": [not_like]}
    return condition


def _expected_ack_conditions(stack: SynthesizedStack) -> dict[str, dict[str, Any]]:
    names = resource_names(stack.policy)
    conditions = {
        # Dedup state items only, never the router's storm counters.
        "DedupState": _key_condition("fr1-*", "fr1-storm-*"),
        # Powertools' records of this function only: "<function name>.<module>.<qualname>#<hash>".
        "IdempotencyRecords": _key_condition(f"{names.ack_function}.{ACK_IDEMPOTENT_FUNCTION}#*"),
    }
    if stack.policy.securityhub.writeback:
        conditions["UpdateFindingWorkflow"] = securityhub_writeback_condition(ack_workflow_status(stack.policy))
    return conditions


def test_ack_role_is_least_privilege(synthesized: SynthesizedStack):
    role = synthesized.properties(_ack_function(synthesized))["Role"]["Fn::GetAtt"][0]
    assert granted(synthesized, role, _expected_ack_conditions(synthesized)) == _expected_ack_grants(synthesized)
    assert set(ACK_STATE_ACTIONS) == {
        "dynamodb:BatchGetItem",  # DynamoDedupStore.get_many
        "dynamodb:GetItem",  # single state reads
        "dynamodb:PutItem",  # DynamoDedupStore.put (conditional)
    }
    assert set(ACK_IDEMPOTENCY_ACTIONS) == {
        "dynamodb:GetItem",  # Powertools: the record of a repeated delivery
        "dynamodb:PutItem",  # Powertools: the in-progress record (conditional)
        "dynamodb:UpdateItem",  # Powertools: the record's result once processed
        "dynamodb:DeleteItem",  # Powertools: the record of a failed run, so the retry runs again
    }


@pytest.mark.parametrize(("resolve", "status"), [(True, "RESOLVED"), (False, None)])
def test_ack_receiver_writes_back_notes_and_resolved_only_when_configured(synthesis: Synthesis, resolve, status):
    # dev and stg resolve the workflow when an operator resolves; prod only writes notes.
    asff, ocsf = "securityhub:ASFFSyntaxPath/", "securityhub:OCSFSyntaxPath/"
    stacks = [
        s
        for s in synthesis.stacks.values()
        if s.policy.securityhub.writeback and s.policy.securityhub.resolve_workflow_on_operator_resolve is resolve
    ]
    assert stacks
    for stack in stacks:
        role = stack.properties(_ack_function(stack))["Role"]["Fn::GetAtt"][0]
        (statement,) = [
            st
            for p in stack.resources("AWS::IAM::Policy").values()
            if {"Ref": role} in p["Properties"]["Roles"]
            for st in p["Properties"]["PolicyDocument"]["Statement"]
            if st.get("Sid") == "UpdateFindingWorkflow"
        ]
        condition = statement["Condition"]
        if status is None:
            assert condition["Null"][f"{asff}Workflow.Status"] == "true"
            assert condition["Null"][f"{ocsf}StatusId"] == "true"
            assert "StringEqualsIfExists" not in condition
        else:
            assert condition["StringEqualsIfExists"] == {f"{asff}Workflow.Status": status, f"{ocsf}StatusId": "4"}
        assert f"{asff}Note.Text" not in condition["Null"] and f"{ocsf}Comment" not in condition["Null"]


def test_ack_receiver_reads_the_routing_key(synthesized: SynthesizedStack):
    from aws_cdk.assertions import Match

    role = synthesized.properties(_ack_function(synthesized))["Role"]["Fn::GetAtt"][0]
    synthesized.assertions.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": role}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "ReadRoutingKey",
                            "Action": "secretsmanager:GetSecretValue",
                            "Effect": "Allow",
                            "Resource": secret_arn(synthesized, synthesized.policy.notifier.routing_key_secret),
                        }
                    ]
                )
            },
        },
    )


def test_ack_receiver_table_access_is_limited_to_its_keys(synthesized: SynthesizedStack):
    from aws_cdk.assertions import Match

    role = synthesized.properties(_ack_function(synthesized))["Role"]["Fn::GetAtt"][0]
    conditions = _expected_ack_conditions(synthesized)
    synthesized.assertions.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": role}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like({"Sid": "DedupState", "Condition": conditions["DedupState"]}),
                        Match.object_like({"Sid": "IdempotencyRecords", "Condition": conditions["IdempotencyRecords"]}),
                    ]
                )
            },
        },
    )


def test_ack_role_with_rest_api_key_and_without_writeback(variant: SynthesizedStack):
    role = variant.properties(_ack_function(variant))["Role"]["Fn::GetAtt"][0]
    grants = granted(variant, role, _expected_ack_conditions(variant))
    assert grants == _expected_ack_grants(variant)
    # signing secret, REST API key, routing key, the canary's heartbeat URL
    assert len(grants["secretsmanager:GetSecretValue"]) == 4
    assert "securityhub:BatchUpdateFindings" not in grants


# ------------------------------------------------------------------------------------------ mode none


def test_mode_none_builds_no_ack_receiver(no_acks: SynthesizedStack):
    names = resource_names(no_acks.policy)
    assert no_acks.policy.acknowledgements.mode == "none"
    functions = sorted(f["Properties"]["FunctionName"] for f in no_acks.resources("AWS::Lambda::Function").values())
    assert functions == sorted([names.function, names.meta_alert_function, names.silence_sweep_function])
    assert not no_acks.resources("AWS::Lambda::Url")
    rules = no_acks.resources("AWS::Events::Rule").values()
    assert sorted(r["Properties"]["Name"] for r in rules) == sorted([names.rule, names.silence_sweep_schedule])
    assert "ack-receiver" not in json.dumps(no_acks.template)
    assert "AckReceiverFunctionName" not in no_acks.template["Outputs"]


def test_idempotency_key_pattern_matches_the_keys_powertools_writes(monkeypatch: pytest.MonkeyPatch):
    """The IAM pattern is only right while Powertools keeps its key layout for the prefix the ack receiver passes."""
    import re

    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    from findings_router.domain.keys import ack_idempotency_prefix
    from infra.contract import ack_idempotency_key_pattern

    names = resource_names(_shipped_policy("prod"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    # What Powertools' persistence layer makes of the prefix the ack receiver passes (idempotent_function
    # configures it the same way).
    layer = DynamoDBPersistenceLayer(table_name=names.state_table, key_attr="pk")
    layer.configure(
        IdempotencyConfig(event_key_jmespath="webhook_id"), key_prefix=ack_idempotency_prefix(names.ack_function)
    )
    key = layer._get_hashed_idempotency_key({"webhook_id": "01WEBHOOK"})
    assert key is not None
    pattern = ack_idempotency_key_pattern(names)
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)  # IAM StringLike
    assert re.fullmatch(regex, key), (pattern, key)
    assert not key.startswith("fr1-")


def _shipped_policy(environment: str):
    from findings_router.settings.load import load_policy
    from tests.infra.conftest import REPO_ROOT

    return load_policy(REPO_ROOT / "config" / f"{environment}.yaml")
