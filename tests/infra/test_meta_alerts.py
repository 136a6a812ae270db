"""Meta-alerts: findings-router's own alarms page through the meta-alert function, and it never pages about itself.

The loop hazard: an alarm on the meta-alert function's errors that notified the topic the function is subscribed
to would invoke the failing function about its own failure; with PagerDuty unreachable it fails again and its
alarm flaps for as long as the outage lasts. The tests build the template's "what can trigger what" graph
(function → its error metric / dead-letter queues → alarms → topics → subscribed functions) and require it to be
acyclic, and check the check on a template where the loop is put back.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest

from infra.contract import META_ALERT_HANDLER, meta_alert_environment, resource_names
from infra.derived import DEAD_LETTER_RETENTION_DAYS, SECONDS_PER_DAY, meta_alert_timeout_seconds
from tests.infra.conftest import SynthesizedStack
from tests.infra.test_stack import granted, secret_arn

pytestmark = pytest.mark.infra


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _ids(stack: SynthesizedStack) -> dict[str, str]:
    names = resource_names(stack.policy)
    return {
        "function": stack.named("AWS::Lambda::Function", "FunctionName", names.meta_alert_function),
        "dlq": stack.named("AWS::SQS::Queue", "QueueName", names.meta_alert_dead_letter_queue),
        "topic": stack.named("AWS::SNS::Topic", "TopicName", names.alarm_topic),
        "meta_topic": stack.named("AWS::SNS::Topic", "TopicName", names.meta_alarm_topic),
        "log_group": stack.named("AWS::Logs::LogGroup", "LogGroupName", names.meta_alert_log_group),
    }


def test_meta_alert_function(synthesized: SynthesizedStack):
    policy = synthesized.policy
    ids = _ids(synthesized)
    function = synthesized.properties(ids["function"])
    assert function["Handler"] == META_ALERT_HANDLER
    assert (function["Runtime"], function["Architectures"]) == ("python3.12", ["arm64"])
    assert function["Environment"]["Variables"] == meta_alert_environment(policy)
    assert function["Timeout"] == meta_alert_timeout_seconds(policy)
    retry = policy.notifier.retry
    assert function["Timeout"] >= math.ceil(retry.budget_seconds + retry.timeout_seconds)
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": ids["log_group"]}}
    # Asynchronous (SNS): two retries, then its DLQ; a change older than an hour is not paged late.
    assert function["DeadLetterConfig"] == {"TargetArn": _arn(ids["dlq"])}
    (invoke_config,) = [
        c["Properties"]
        for c in synthesized.resources("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": ids["function"]}
    ]
    assert (invoke_config["MaximumRetryAttempts"], invoke_config["MaximumEventAgeInSeconds"]) == (2, 3600)
    queue = synthesized.properties(ids["dlq"])
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == DEAD_LETTER_RETENTION_DAYS * SECONDS_PER_DAY


def test_meta_alert_timeout_covers_the_largest_retry_budget(no_acks: SynthesizedStack):
    # budget_seconds and timeout_seconds at the config model's maxima (600 s, 30 s): still within Lambda's 900 s.
    function = no_acks.properties(_ids(no_acks)["function"])
    assert function["Timeout"] == 600 + 30 + 15 <= 900


def test_meta_alert_function_is_subscribed_to_the_alarm_topic(synthesized: SynthesizedStack):
    ids = _ids(synthesized)
    (subscription,) = [
        s["Properties"]
        for s in synthesized.resources("AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "lambda"
    ]
    assert subscription == {
        "Endpoint": _arn(ids["function"]),
        "Protocol": "lambda",
        "TopicArn": {"Ref": ids["topic"]},
        # Deliveries SNS could not make (e.g. the function throttled beyond SNS's retries).
        "RedrivePolicy": {"deadLetterTargetArn": _arn(ids["dlq"])},
    }
    (invoke,) = [
        p["Properties"]
        for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == _arn(ids["function"])
    ]
    assert (invoke["Principal"], invoke["SourceArn"]) == ("sns.amazonaws.com", {"Ref": ids["topic"]})
    (queue_policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synthesized.resources("AWS::SQS::QueuePolicy").values()
        if p["Properties"]["Queues"] == [{"Ref": ids["dlq"]}]
    ]
    (sns_send,) = [s for s in queue_policy if s.get("Principal") == {"Service": "sns.amazonaws.com"}]
    assert sns_send["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": ids["topic"]}}}


def test_meta_alert_role_is_least_privilege(synthesized: SynthesizedStack):
    ids = _ids(synthesized)
    role = synthesized.properties(ids["function"])["Role"]["Fn::GetAtt"][0]
    assert granted(synthesized, role) == {
        "logs:CreateLogStream": [_arn(ids["log_group"])],
        "logs:PutLogEvents": [_arn(ids["log_group"])],
        # The meta-alerts' own service's key (production requires one), else the router's.
        "secretsmanager:GetSecretValue": [secret_arn(synthesized, synthesized.policy.meta_alert_routing_key_secret)],
        "sqs:SendMessage": [_arn(ids["dlq"])],
    }


def test_production_meta_alerts_never_read_the_findings_routing_key(synthesized: SynthesizedStack):
    """A revoked or disabled findings integration must not also silence the alarm about it."""
    if not synthesized.policy.production:
        pytest.skip("only production requires the meta-alerts' own service")
    ids = _ids(synthesized)
    role = synthesized.properties(ids["function"])["Role"]["Fn::GetAtt"][0]
    readable = granted(synthesized, role)["secretsmanager:GetSecretValue"]
    assert secret_arn(synthesized, synthesized.policy.notifier.routing_key_secret) not in readable


# ------------------------------------------------------------------------------------------ no loop


def trigger_graph(template: dict[str, Any]) -> dict[str, set[str]]:
    """Edges "X can cause Y" between functions, queues, alarms and topics of a template (by logical id)."""
    resources = template["Resources"]

    def of_type(resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v["Properties"] for k, v in resources.items() if v["Type"] == resource_type}

    def target(value: Any) -> str | None:
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
        if isinstance(value, dict) and "Ref" in value:
            return str(value["Ref"])
        return None

    edges: dict[str, set[str]] = {}

    def edge(source: str | None, destination: str | None) -> None:
        if source and destination:
            edges.setdefault(source, set()).add(destination)

    functions = of_type("AWS::Lambda::Function")
    queues = of_type("AWS::SQS::Queue")
    for function_id, function in functions.items():
        # A failing function's events go to its dead-letter queue.
        edge(function_id, target(function.get("DeadLetterConfig", {}).get("TargetArn")))
    for mapping in of_type("AWS::Lambda::EventSourceMapping").values():
        # A failing consumer's messages go to its source queue's dead-letter queue.
        source = queues.get(target(mapping["EventSourceArn"]) or "", {})
        edge(target(mapping["FunctionName"]), target(source.get("RedrivePolicy", {}).get("deadLetterTargetArn")))
    for subscription in of_type("AWS::SNS::Subscription").values():
        if subscription["Protocol"] == "lambda":
            function_id = target(subscription["Endpoint"])
            edge(target(subscription["TopicArn"]), function_id)
            edge(function_id, target(subscription.get("RedrivePolicy", {}).get("deadLetterTargetArn")))
    for rule in of_type("AWS::Events::Rule").values():
        for rule_target in rule.get("Targets", []):
            edge(target(rule_target["Arn"]), target(rule_target.get("DeadLetterConfig", {}).get("Arn")))
    for alarm_id, alarm in of_type("AWS::CloudWatch::Alarm").items():
        for dimension in alarm.get("Dimensions", []):
            edge(target(dimension["Value"]), alarm_id)  # the function or queue the alarm watches
        for action in alarm.get("AlarmActions", []) + alarm.get("OKActions", []):
            edge(alarm_id, target(action))
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [*path, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_alarm_can_invoke_the_function_it_is_about(synthesized: SynthesizedStack):
    assert find_cycle(trigger_graph(synthesized.template)) is None


def test_the_meta_alert_function_cannot_page_about_itself(synthesized: SynthesizedStack):
    ids = _ids(synthesized)
    edges = trigger_graph(synthesized.template)
    # Its failures reach only the email-only topic, which nothing but email addresses subscribes to.
    assert ids["function"] not in _reachable(edges, ids["function"])
    assert ids["meta_topic"] in _reachable(edges, ids["function"])
    assert ids["topic"] not in _reachable(edges, ids["function"])
    subscribers = {
        s["Properties"]["Protocol"]
        for s in synthesized.resources("AWS::SNS::Subscription").values()
        if s["Properties"]["TopicArn"] == {"Ref": ids["meta_topic"]}
    }
    assert subscribers <= {"email"}
    for suffix in ("meta-alerts-errors", "meta-alerts-dead-letters"):
        name = f"{resource_names(synthesized.policy).alarm_prefix}-{suffix}"
        alarm = synthesized.properties(synthesized.named("AWS::CloudWatch::Alarm", "AlarmName", name))
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": ids["meta_topic"]}]


def test_every_other_alarm_pages(synthesized: SynthesizedStack):
    ids = _ids(synthesized)
    edges = trigger_graph(synthesized.template)
    about_meta = _reachable(edges, ids["function"])
    alarms = synthesized.resources("AWS::CloudWatch::Alarm")
    paging = [a for a in alarms if a not in about_meta]
    # The router's four; the ack receiver's errors and throttles (rejected signatures with a public URL, dead
    # letters with the partner bus); the canary's two (missing, errors); the silence alarm; the PSIRT digest's errors.
    policy = synthesized.policy
    mode = policy.acknowledgements.mode
    # function_url: errors, throttles, rejected signatures; eventbridge: errors, throttles, dead letters, and
    # rejected tokens when JSM's webhooks bring a Function URL.
    expected = 4 + {"none": 0, "function_url": 3, "eventbridge": 3}[mode]
    expected += mode == "eventbridge" and policy.acknowledgements.jsm_token_secret is not None
    expected += 2 if policy.canary_enabled else 0
    expected += 1 if policy.monitoring.no_findings_alarm_minutes else 0
    expected += 1 if policy.psirt_digest.enabled else 0  # the digest's errors
    expected += 1  # the silence sweep's errors
    assert len(paging) == expected
    assert len(alarms) == len(paging) + 2
    for alarm in paging:
        assert ids["function"] in _reachable(edges, alarm), alarm


def test_the_loop_check_finds_a_loop_when_the_meta_alarms_page(synthesized: SynthesizedStack):
    # The check above is only worth something if it fails on the loop it guards against.
    ids = _ids(synthesized)
    template = copy.deepcopy(synthesized.template)
    name = f"{resource_names(synthesized.policy).alarm_prefix}-meta-alerts-errors"
    alarm = template["Resources"][synthesized.named("AWS::CloudWatch::Alarm", "AlarmName", name)]["Properties"]
    alarm["AlarmActions"] = [{"Ref": ids["topic"]}]
    cycle = find_cycle(trigger_graph(template))
    assert cycle is not None and ids["function"] in cycle and ids["topic"] in cycle
