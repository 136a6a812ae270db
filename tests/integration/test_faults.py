"""Nothing lost, nothing doubled: PagerDuty outages, a crash between 202 and the state write, dead letters, redrive."""

from __future__ import annotations

import io
import json

import pytest
import yaml

from findings_router.entrypoints import route_findings as router_handler
from findings_router.settings.load import load_policy
from findings_router_local.aws_local import SqsEventSource
from findings_router_local.fakes.pagerduty import Fault
from findings_router_local.redrive import RedriveError, redrive, sqs_client
from infra.contract import resource_names
from infra.derived import queue_settings
from tests.builders import FakeLambdaContext, asff, event, sqs_event
from tests.integration.conftest import age_pending
from tests.support.faults import InterruptibleStore


def _queues(local, max_receive_count: int):
    """The findings queue and its DLQ under the names the stack gives them (so `redrive` finds them)."""
    policy = load_policy(local.policy_file)
    names = resource_names(policy)
    settings = queue_settings(policy)
    dlq = local.sqs.create_queue(QueueName=names.dead_letter_queue)["QueueUrl"]
    dlq_arn = local.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = settings.queue_attributes(dlq_arn)
    attributes["VisibilityTimeout"] = "0"
    attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    queue = local.sqs.create_queue(QueueName=names.queue, Attributes=attributes)["QueueUrl"]
    return policy, queue, dlq


def _send(local, queue, findings):
    for f in findings:
        local.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(event(f)))


def test_outage_then_recovery_delivers_every_page_exactly_once(local):
    _, queue, dlq = _queues(local, max_receive_count=20)
    findings = [asff(severity="CRITICAL") for _ in range(10)]  # at the storm threshold: each pages on its own
    _send(local, queue, findings)
    # PagerDuty misbehaves in every way for a while: 500s, 429 with Retry-After, dropped connections, hangs.
    faults = [Fault(500), Fault(429, retry_after="0"), Fault(502, close=True), Fault(503), Fault(429, retry_after="0")]
    local.receiver.fail_next(*(faults * 8))
    report = SqsEventSource(local.sqs, queue, router_handler.lambda_handler, batch_size=5).drain()
    assert report.failed_receipts > 0  # some messages had to go back to the queue
    assert local.receiver.notifications == 10  # after recovery: each page once
    assert {i.dedup_key for i in local.receiver.all_incidents} == {i["pk"]["S"] for i in local.state_items()}
    assert local.sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []  # none lost


def test_timeouts_are_retried_and_bounded(local):
    data = yaml.safe_load(local.policy_file.read_text())
    data["notifier"]["retry"].update(timeout_seconds=0.2, max_attempts=3)
    local.policy_file.write_text(yaml.safe_dump(data))
    local.new_router_runtime()
    local.receiver.fail_next(Fault(500, hang=True), Fault(500, hang=True))
    response = router_handler.lambda_handler(sqs_event(event(asff(severity="CRITICAL"))), FakeLambdaContext())
    assert response == {"batchItemFailures": []}  # third attempt succeeded
    assert local.receiver.notifications == 1
    local.receiver.release_hangs()


def test_crash_between_pagerdutys_202_and_the_state_write_does_not_page_twice(local):
    store = InterruptibleStore(local.real_store())
    local.new_router_runtime(store=store)
    # Killed at the write that confirms the delivered trigger.
    store.arm(lambda state: not state.pending, RuntimeError("Lambda killed after PagerDuty answered 202"))
    batch = sqs_event(event(asff(severity="CRITICAL")))
    first = router_handler.lambda_handler(batch, FakeLambdaContext())
    assert len(first["batchItemFailures"]) == 1  # the message goes back to SQS
    [recorded] = local.state_items()
    assert [k["S"] for k in recorded["pending"]["L"]] == [recorded["pk"]["S"]]  # written ahead, not confirmed
    age_pending(local)  # SQS redelivers the same message after the visibility timeout
    second = router_handler.lambda_handler(batch, FakeLambdaContext())
    assert second == {"batchItemFailures": []}
    [incident] = local.receiver.all_incidents
    assert incident.trigger_count == 2  # the repeat reached PagerDuty...
    assert local.receiver.notifications == 1  # ...and PagerDuty's dedup_key folded it: one page
    [item] = local.state_items()
    assert item["pk"]["S"] == incident.dedup_key and item["status"]["S"] == "open"  # state converged
    assert item["pending"]["L"] == []


def test_exhausted_messages_are_dead_lettered_and_redrive_brings_them_back(local):
    policy, queue, dlq = _queues(local, max_receive_count=2)
    findings = [asff(severity="CRITICAL") for _ in range(3)]
    _send(local, queue, findings)
    local.receiver.fail_for(10_000, Fault(503))  # a long outage
    SqsEventSource(local.sqs, queue, router_handler.lambda_handler).drain()
    assert local.receiver.notifications == 0
    dead = local.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    assert len(dead) == 3
    out = io.StringIO()
    assert redrive(local.sqs, policy, dry_run=True, out=out).seen == 3
    assert "would move 3" in out.getvalue()
    local.receiver.reset()  # the cause is fixed
    assert redrive(local.sqs, policy, out=out).moved == 3
    assert local.sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
    SqsEventSource(local.sqs, queue, router_handler.lambda_handler).drain()
    assert local.receiver.notifications == 3
    # Redriving again (nothing left) and re-sending the same findings page nobody twice.
    assert redrive(local.sqs, policy, out=out).moved == 0
    _send(local, queue, findings)
    SqsEventSource(local.sqs, queue, router_handler.lambda_handler).drain()
    assert local.receiver.notifications == 3


def test_connection_refused_is_a_transient_error():
    from findings_router.domain.normalize import normalize_asff
    from findings_router.domain.notifications import NotifyContext, resolve
    from findings_router.notify import DeliveryError
    from findings_router.notify.pagerduty.client import PagerDutyNotifier
    from findings_router.notify.retry import Retrier, RetryPolicy
    from findings_router_local.aws_local import free_port

    url = f"http://127.0.0.1:{free_port()}/v2/enqueue"  # nothing listens there
    retrier = Retrier(RetryPolicy(max_attempts=3, base_delay=0.001), channel="PagerDuty", sleep=lambda s: None)
    notifier = PagerDutyNotifier(url, lambda: "R" * 32, retrier)
    finding = normalize_asff(asff())
    with pytest.raises(DeliveryError) as info:
        notifier.send(resolve("fr1-x"), NotifyContext("prod", finding))
    assert info.value.retryable and info.value.reason == "network" and "ConnectionError" in str(info.value)
    assert retrier.calls == 3


def test_redrive_cli(local, capsys):
    from findings_router_local.cli import main

    policy, queue, dlq = _queues(local, max_receive_count=2)
    local.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(event(asff(severity="CRITICAL"))))
    config_dir = str(local.policy_file.parent)
    assert (
        main(["redrive", "--env", policy.environment, "--config-dir", config_dir, "--endpoint-url", local.endpoint])
        == 0
    )
    assert (
        "findings-router-prod-findings-dlq → findings-router-prod-findings: moved 1 message(s)"
        in capsys.readouterr().out
    )
    assert len(local.sqs.receive_message(QueueUrl=queue).get("Messages", [])) == 1


def test_a_dry_run_counts_every_dead_letter_and_leaves_them_in_place(local):
    """It said 10 of 25: the first batch came back visible at once and ended the count."""
    policy, _, dlq = _queues(local, max_receive_count=2)
    for i in range(25):
        local.sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps(event(asff(severity="CRITICAL"))),
            MessageAttributes={"reason": {"DataType": "String", "StringValue": f"permanent delivery error {i}"}},
        )
    out = io.StringIO()
    assert redrive(local.sqs, policy, dry_run=True, out=out).seen == 25
    assert "would move 25 message(s)" in out.getvalue()
    assert "permanent delivery error" in out.getvalue()  # why each one is there
    assert redrive(local.sqs, policy, dry_run=True, out=io.StringIO()).seen == 25  # still all there
    assert redrive(local.sqs, policy, max_messages=7, out=io.StringIO()).moved == 7
    assert redrive(local.sqs, policy, dry_run=True, out=io.StringIO()).seen == 18


def test_redrive_explains_what_is_missing_in_one_line(local):
    policy, _, _ = _queues(local, max_receive_count=2)
    with pytest.raises(RedriveError, match=r"^--max must be a positive number, not 0$"):
        redrive(local.sqs, policy, max_messages=0, out=io.StringIO())
    other = policy.model_copy(update={"environment": "qa"})
    with pytest.raises(
        RedriveError, match=r"^no queue 'findings-router-qa-findings-dlq' in eu-central-1: is the stack"
    ):
        redrive(local.sqs, other, out=io.StringIO())
    with pytest.raises(RedriveError, match=r"^no AWS profile named 'nobody'"):
        sqs_client(region="eu-central-1", profile="nobody", endpoint_url=None)
