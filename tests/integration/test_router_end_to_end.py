"""The real router handler against moto's server (DynamoDB, SQS, Secrets Manager) and a local PagerDuty."""

from __future__ import annotations

import json
import threading

from findings_router.adapters.state_table import DynamoDedupStore
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.entrypoints import route_findings as router_handler
from findings_router.notify.pagerduty.client import PagerDutyNotifier
from findings_router.notify.retry import Retrier, RetryPolicy
from findings_router.service.route import FindingsRouter, TriggerInFlightError, route_findings
from findings_router.settings.load import load_policy
from findings_router_local.aws_local import SqsEventSource
from findings_router_local.fakes.pagerduty import Fault
from tests.builders import NOW, FakeLambdaContext, asff, control, event, sqs_event, updated
from tests.integration.conftest import ROUTING_KEY, TABLE


def invoke(*bodies, **kw):
    return router_handler.lambda_handler(sqs_event(*bodies, **kw), FakeLambdaContext())


def test_one_finding_resent_50_times_pages_once(local):
    finding = asff(severity="CRITICAL")
    for _ in range(5):  # 5 invocations of 10 re-sends each
        response = invoke(*[event(finding) for _ in range(10)])
        assert response == {"batchItemFailures": []}
    assert local.receiver.notifications == 1
    assert [e["event_action"] for e in local.receiver.accepted] == ["trigger"]
    [item] = local.state_items()
    assert item["status"]["S"] == "open"
    assert item["notify_count"]["N"] == "1"
    sent = local.receiver.accepted[0]
    assert sent["routing_key"] == ROUTING_KEY
    assert sent["dedup_key"] == item["pk"]["S"]


def test_raised_severity_pages_again(local):
    finding = asff(severity="HIGH")
    invoke(event(finding))
    invoke(event(updated(finding, Severity={"Label": "CRITICAL"})))
    assert local.receiver.notifications == 2
    severities = [i.severity for i in local.receiver.all_incidents]
    assert severities == ["error", "critical"]


def test_archived_finding_sends_one_resolve(local):
    finding = asff(severity="HIGH")
    invoke(event(finding))
    archived = updated(finding, RecordState="ARCHIVED")
    invoke(event(archived), event(archived))
    invoke(event(archived))
    actions = [e["event_action"] for e in local.receiver.accepted]
    assert actions == ["trigger", "resolve"]
    [incident] = local.receiver.all_incidents
    assert incident.status == "resolved"


def test_poison_message_is_dead_lettered_while_batch_mates_are_delivered(local, json_logs):
    good_a, good_b = asff(severity="CRITICAL"), asff(severity="HIGH")
    missing_account = asff(severity="CRITICAL")
    del missing_account["AwsAccountId"]
    bodies = [event(good_a), "{not json", event(missing_account), event(good_b)]
    for body in bodies:
        local.sqs.send_message(
            QueueUrl=local.queue_url, MessageBody=body if isinstance(body, str) else json.dumps(body)
        )
    source = SqsEventSource(local.sqs, local.queue_url, router_handler.lambda_handler, batch_size=10)
    report = source.drain()
    assert local.receiver.notifications == 2  # both good findings paged, once each
    dead = local.dlq_messages()
    assert sorted(m["Body"][:9] for m in dead) == sorted(["{not json", json.dumps(event(missing_account))[:9]])
    assert report.failed_receipts == 2 * 3  # two poison messages, maxReceiveCount 3
    failures = [r for r in json_logs() if r["level"] == "ERROR"]
    assert any("message body is not JSON" in r["error"] and r["reason"] == "malformed event" for r in failures)
    bad = [r for r in failures if r.get("finding_id") == missing_account["Id"]]
    assert bad and bad[0]["field"] == "AwsAccountId" and bad[0]["reason"] == "malformed finding"
    assert {r["receive_count"] for r in failures} == {"1", "2", "3"}


def test_partial_failure_response_names_only_the_bad_record(local):
    batch = sqs_event(event(asff(severity="CRITICAL")), "[]", event(asff(severity="LOW")))
    response = router_handler.lambda_handler(batch, FakeLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": batch["Records"][1]["messageId"]}]}


def test_pagerduty_outage_fails_message_back_then_delivers_once(local):
    local.receiver.fail_for(50, Fault(status=500))
    finding = asff(severity="CRITICAL")
    local.sqs.send_message(QueueUrl=local.queue_url, MessageBody=json.dumps(event(finding)))
    source = SqsEventSource(local.sqs, local.queue_url, router_handler.lambda_handler)
    # First receive: PagerDuty is down, every retry is used up, the message goes back to the queue.
    messages = local.sqs.receive_message(QueueUrl=local.queue_url, AttributeNames=["All"])["Messages"]
    ev = {
        "Records": [
            SqsEventSource._record(messages[0], "arn:aws:sqs:eu-central-1:123456789012:findings", "eu-central-1")
        ]
    }
    response = router_handler.lambda_handler(ev, FakeLambdaContext())
    assert len(response["batchItemFailures"]) == 1
    [recorded] = local.state_items()  # the trigger is recorded ahead, as not yet delivered
    assert [k["S"] for k in recorded["pending"]["L"]] == [recorded["pk"]["S"]]
    assert "pending_since" not in recorded  # released: the delivery failed, nothing is in flight
    local.receiver.reset()  # PagerDuty recovers
    local.sqs.change_message_visibility(
        QueueUrl=local.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    source.drain()
    assert local.receiver.notifications == 1
    [item] = local.state_items()
    assert item["pending"]["L"] == []


def test_pagerduty_400_parks_the_message_in_the_dead_letter_queue_at_once(local, json_logs):
    local.receiver.fail_next(Fault(status=400))
    body = event(asff(severity="CRITICAL"))
    response = invoke(body)
    assert response == {"batchItemFailures": []}  # not retried through SQS: retrying cannot help
    logs = json_logs()
    [failure] = [r for r in logs if r["level"] == "ERROR"]
    assert "PagerDuty rejected the event (400)" in failure["error"]
    assert failure["reason"] == "permanent delivery error"
    assert "dead-lettered at once" in failure["message"]
    assert len(local.receiver.requests) == 1  # not retried
    assert ROUTING_KEY not in json.dumps(logs)
    [dead] = local.sqs.receive_message(QueueUrl=local.dlq_url, MessageAttributeNames=["All"], MaxNumberOfMessages=10)[
        "Messages"
    ]
    assert json.loads(dead["Body"]) == body  # unchanged, so a redrive works once the cause is fixed
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "permanent delivery error"
    assert "400" in dead["MessageAttributes"]["error"]["StringValue"]
    # The trigger stays recorded: the finding's next copy (or the redrive) delivers it once PagerDuty accepts it.
    assert invoke(body) == {"batchItemFailures": []}
    assert local.receiver.notifications == 1


def test_two_invocations_racing_on_one_key_page_once(local):
    """Both read "no state" before either writes; conditional writes let one win, the other turns duplicate."""
    policy = load_policy(local.policy_file)
    barrier = threading.Barrier(2, timeout=10)
    # DynamoDB applies conditional writes to one item one at a time; moto's threaded server does not (two
    # simultaneous PutItems can both pass their condition), so the writes are serialised here as DynamoDB does.
    one_item_at_a_time = threading.Lock()

    class RacingStore(DynamoDedupStore):
        first_read = True

        def get_many(self, keys):
            found = super().get_many(keys)
            if self.first_read:  # only the initial batched read is synchronised
                self.first_read = False
                barrier.wait()
            return found

        def put(self, state, expected_version):
            with one_item_at_a_time:
                return super().put(state, expected_version)

    finding = normalize_asff(asff(severity="CRITICAL"))
    results = []
    deferred: list[TriggerInFlightError] = []

    def run():
        import boto3

        store = RacingStore(TABLE, boto3.client("dynamodb"))
        retrier = Retrier(RetryPolicy(), channel="PagerDuty", sleep=lambda s: None)
        notifier = PagerDutyNotifier(local.receiver.url, lambda: ROUTING_KEY, retrier)
        router = FindingsRouter(CompiledPolicy(policy), store, notifier)
        try:
            results.extend(route_findings(router, [finding], NOW))
        except TriggerInFlightError as exc:  # the loser saw the winner's trigger recorded and still in flight
            deferred.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    outcomes = sorted(r.decision.outcome for r in results)
    # The loser turns duplicate (the winner had confirmed) or is deferred to its message's retry (still in flight).
    assert outcomes == ["duplicate", "page"] or (outcomes == ["page"] and len(deferred) == 1)
    assert local.receiver.notifications == 1
    assert len(local.receiver.accepted) == 1  # the loser found the trigger recorded and in flight: not re-sent
    [item] = local.state_items()
    assert item["notify_count"]["N"] == "1"
    assert item["version"]["N"] == "2"  # recorded ahead, then confirmed
    assert item["pending"]["L"] == []


def test_legacy_control_findings_of_two_standards_page_once(local):
    fsbp = control("EC2.19", standard="aws-foundational-security-best-practices/v/1.0.0", severity="CRITICAL")
    cis = control("EC2.19", standard="cis-aws-foundations-benchmark/v/1.4.0", severity="CRITICAL")
    assert invoke(event(fsbp, cis)) == {"batchItemFailures": []}
    assert local.receiver.notifications == 1


def test_metrics_count_every_decision(local, capsys):
    finding = asff(severity="CRITICAL")
    invoke(event(finding), event(finding), event(asff(severity="LOW")), "garbage")
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    [blob] = emf
    assert blob["environment"] == "prod"
    assert sum(blob["Pages"]) == 1
    assert sum(blob["Duplicates"]) == 1
    assert sum(blob["Drops"]) == 1
    assert sum(blob["Errors"]) == 1


def test_routing_key_is_cached_between_invocations(local):
    invoke(event(asff(severity="CRITICAL")))
    # Secrets Manager becomes unreachable for the secret: the cached key keeps pages flowing.
    local.secrets.delete_secret(SecretId="findings-router/test/routing-key", ForceDeleteWithoutRecovery=True)
    for _ in range(2):
        assert invoke(event(asff(severity="CRITICAL"))) == {"batchItemFailures": []}
    assert local.receiver.notifications == 3
    assert {e["routing_key"] for e in local.receiver.accepted} == {ROUTING_KEY}


def test_a_flood_shared_by_two_lambda_containers_opens_one_storm_and_writes_counters_sparingly(local):
    """Two execution environments (each with its own storm buffer) take turns on a flood of 60 new findings of
    one group, against the real table: at most 2x the threshold page individually, one storm incident and one
    meta-alert open, every finding keeps its state, and the shared counter is written far less than once per
    finding. Then a trickle in the next window: held, no counter write."""
    policy = router_handler.get_runtime().policy
    threshold = policy.storm.threshold
    containers = [router_handler.get_runtime(), local.new_router_runtime()]
    counter_writes = []
    for runtime in containers:
        runtime.store.client.meta.events.register(
            "before-parameter-build.dynamodb.UpdateItem",
            lambda params, **_: counter_writes.append(params["Key"]["pk"]["S"]),
        )
    findings = [asff(severity="CRITICAL") for _ in range(60)]
    for i in range(0, len(findings), 5):
        router_handler.install(containers[(i // 5) % 2])
        assert invoke(*[event(f) for f in findings[i : i + 5]]) == {"batchItemFailures": []}

    incidents = local.receiver.all_incidents
    storms = [i for i in incidents if i.dedup_key.startswith("fr1-storm-")]
    metas = [i for i in incidents if i.dedup_key.startswith("fr1-meta-storm-")]
    individual = [i for i in incidents if i not in storms and i not in metas]
    assert len(storms) == 1 and len(metas) == 1
    assert threshold <= len(individual) <= 2 * threshold
    assert storms[0].custom_details["new_problems_in_window"] > threshold
    assert len(local.state_items()) == 60  # nothing lost: every finding deduplicates and resolves on its own
    assert 0 < len(counter_writes) <= len(findings) // 4  # 12 here; it was 2 per problem past the threshold

    counter_writes.clear()
    router_handler.install(containers[0])
    later = [asff(severity="CRITICAL", product="inspector") for _ in range(3)]
    assert invoke(*[event(f) for f in later]) == {"batchItemFailures": []}
    assert counter_writes == []  # a trickle of new findings: held in the container, no shared write
    assert len(local.receiver.all_incidents) == len(incidents) + 3
