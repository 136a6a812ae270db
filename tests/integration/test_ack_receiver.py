"""The ack receiver behind a (local) Function URL, and the EventBridge path, against moto's DynamoDB."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence

import pytest
import requests

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.adapters.securityhub import FindingRef, Workflow, WritebackResult
from findings_router.domain.acks import sign
from findings_router.entrypoints import receive_acks as ack_handler
from findings_router.entrypoints import route_findings as router_handler
from findings_router_local.function_url import FunctionUrlServer, function_url_event
from tests.builders import FakeLambdaContext, asff, event, load_fixture, sqs_event, updated
from tests.integration.conftest import TABLE, WEBHOOK_SECRET


def just_now(offset_seconds: float = 0.0) -> str:
    """PagerDuty's `occurred_at` form; the receiver runs on the real clock and rejects stale events."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_seconds)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def receiver_url(local):
    with FunctionUrlServer(ack_handler.function_url_handler) as server:
        yield server.url + ack_handler.WEBHOOK_PATH


def page(local, finding) -> str:
    assert router_handler.lambda_handler(sqs_event(event(finding)), FakeLambdaContext()) == {"batchItemFailures": []}
    return local.state_items()[0]["pk"]["S"]


def webhook_for(
    fixture: str, dedup_key: str | None, webhook_id: str = "01WEBHOOK", *, incident_id: str | None = None
) -> dict:
    """A fixture delivery about `dedup_key`, happening now (after the page)."""
    body = load_fixture(f"pagerduty/{fixture}")
    body["event"]["id"] = webhook_id
    body["event"]["occurred_at"] = just_now()
    body["event"]["data"]["incident_key"] = dedup_key
    if incident_id:
        body["event"]["data"]["id"] = incident_id
    return body


def eventbridge_for(fixture: str, dedup_key: str) -> dict:
    ev = load_fixture(f"pagerduty/{fixture}")
    ev["detail"]["incident"]["incident_key"] = dedup_key
    ev["detail"]["incident"]["alerts"] = [{"alert_key": dedup_key}]
    ev["detail"]["log_entries"][0]["created_at"] = just_now()
    return ev


def post(
    url: str,
    body: dict | bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    webhook_id: str = "01WEBHOOK",
    signature: str | None = None,
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": webhook_id,
        "X-PagerDuty-Signature": signature if signature is not None else sign(raw, secret.encode()),
        "User-Agent": "PagerDuty-Webhook/V3.0",
    }
    return requests.post(url, data=raw, headers=headers, timeout=10)


def state(local, key):
    return local.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": key}})["Item"]


def test_signed_acknowledgement_lands_in_state_and_security_hub(local, receiver_url):
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    response = post(receiver_url, webhook_for("webhook_incident_acknowledged.json", key))
    assert response.status_code == 200
    assert response.json() == {"outcome": "acknowledged"}
    item = state(local, key)
    assert item["status"]["S"] == "acknowledged"
    assert item["acknowledged_by"]["S"]
    notes = local.securityhub.notes_for(finding["Id"])
    assert notes[0].startswith("Paged on-call via PagerDuty (prod)")
    assert notes[1].startswith("Acknowledged by ")
    assert local.securityhub.updates[0].workflow == "NOTIFIED"


def test_forged_or_unsigned_webhooks_get_401_and_change_nothing(local, receiver_url):
    key = page(local, asff(severity="CRITICAL"))
    body = webhook_for("webhook_incident_resolved.json", key)
    before = state(local, key)
    assert post(receiver_url, body, secret="not-the-secret").status_code == 401
    assert post(receiver_url, body, signature="").status_code == 401
    tampered = json.dumps(body).encode()
    assert (
        post(
            receiver_url,
            tampered.replace(b"resolved", b"acknowledged"),
            signature=sign(tampered, WEBHOOK_SECRET.encode()),
        ).status_code
        == 401
    )
    assert state(local, key) == before
    assert len(local.securityhub.updates) == 1  # only the page's write-back


def test_malformed_body_gets_400(local, receiver_url):
    assert post(receiver_url, b"{not json").status_code == 400
    assert post(receiver_url, {"event": {"event_type": "incident.acknowledged"}}).status_code == 400


def test_oversized_body_gets_413(local, receiver_url):
    assert post(receiver_url, b"{" + b" " * (300 * 1024) + b"}").status_code == 413


def test_incident_that_is_not_ours_gets_200_and_a_log_line(local, receiver_url, json_logs):
    response = post(receiver_url, webhook_for("webhook_incident_acknowledged.json", "datadog-monitor-123"))
    assert response.status_code == 200
    assert response.json() == {"outcome": "not-ours"}
    [line] = [r for r in json_logs() if r.get("message") == "incident event processed"]
    assert line["outcome"] == "not-ours"
    assert line["incident_key"] == "datadog-monitor-123"


def test_the_same_webhook_delivered_twice_has_the_effect_of_one(local, receiver_url):
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    body = webhook_for("webhook_incident_acknowledged.json", key, webhook_id="01SAME")
    assert post(receiver_url, body, webhook_id="01SAME").status_code == 200
    version = state(local, key)["version"]["N"]
    assert post(receiver_url, body, webhook_id="01SAME").status_code == 200
    assert state(local, key)["version"]["N"] == version
    assert len(local.securityhub.notes_for(finding["Id"])) == 2  # page + one acknowledgement


def test_write_back_echo_does_not_page_or_loop(local, receiver_url):
    """Every write-back makes Security Hub re-emit the finding; feed those echoes back in."""
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    post(receiver_url, webhook_for("webhook_incident_acknowledged.json", key))
    post(receiver_url, webhook_for("webhook_incident_resolved.json", key, "02"), webhook_id="02")
    for update in list(local.securityhub.updates):
        echo = dict(
            finding,
            Workflow={"Status": update.workflow or "NOTIFIED"},
            Note={"Text": update.note, "UpdatedBy": "findings-router"},
        )
        assert router_handler.lambda_handler(sqs_event(event(echo)), FakeLambdaContext()) == {"batchItemFailures": []}
    assert local.receiver.notifications == 1
    assert len(local.securityhub.updates) == 3  # page, ack, resolve: echoes wrote nothing back


def test_resolved_in_security_hub_first_then_operator_resolve_is_a_noop(local, receiver_url):
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    router_handler.lambda_handler(sqs_event(event(dict(finding, RecordState="ARCHIVED"))), FakeLambdaContext())
    before = state(local, key)
    response = post(receiver_url, webhook_for("webhook_incident_resolved.json", key))
    assert response.json() == {"outcome": "no-op"}
    assert state(local, key) == before


def test_eventbridge_partner_bus_path(local):
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    ev = eventbridge_for("eventbridge_incident_acknowledged.json", key)
    result = ack_handler.eventbridge_handler(ev, FakeLambdaContext())
    assert result["outcome"] == "acknowledged"
    assert state(local, key)["status"]["S"] == "acknowledged"
    # Delivered again (at least once): no second effect.
    assert ack_handler.eventbridge_handler(ev, FakeLambdaContext())["duplicate_delivery"] is True
    assert len(local.securityhub.notes_for(finding["Id"])) == 2


def test_a_replayed_body_with_a_fresh_webhook_id_header_is_still_one_delivery(local, receiver_url):
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    body = webhook_for("webhook_incident_acknowledged.json", key, webhook_id="01ORIGINAL")
    assert post(receiver_url, body, webhook_id="01ORIGINAL").status_code == 200
    assert post(receiver_url, body, webhook_id="99REPLAYED").status_code == 200
    assert len(local.securityhub.notes_for(finding["Id"])) == 2  # page + one acknowledgement


def test_signed_non_incident_events_such_as_the_test_ping_are_acknowledged(local, receiver_url):
    ping = {
        "event": {
            "id": "01PING",
            "event_type": "pagey.ping",
            "resource_type": "pagey",
            "occurred_at": just_now(),
            "data": {"message": "Hello from your friend Pagey!", "type": "ping"},
        }
    }
    response = post(receiver_url, ping)
    assert response.status_code == 200
    assert response.json() == {"outcome": "ignored"}
    assert post(receiver_url, ping, secret="wrong").status_code == 401  # still verified first


# ----------------------------------------------------------------- episodes, replays, siblings, the outbox, time


class FlakySecurityHub(RecordingSecurityHub):
    """Security Hub refusing the first `failures` write-backs (AccessDenied until IAM is fixed, throttling …)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def update(self, refs: Sequence[FindingRef], note: str, workflow: Workflow | None = None) -> WritebackResult:
        if self.failures:
            self.failures -= 1
            raise RuntimeError(
                "An error occurred (AccessDeniedException) when calling the BatchUpdateFindings operation"
            )
        return super().update(refs, note, workflow)


def test_a_replayed_old_capture_gets_200_stale_and_changes_nothing(local, receiver_url):
    """A correctly signed body captured days ago (its idempotency record long expired) is not acted on."""
    key = page(local, asff(severity="CRITICAL"))
    captured = webhook_for("webhook_incident_resolved.json", key, "01CAPTURED")
    captured["event"]["occurred_at"] = just_now(-3 * 24 * 3600)
    before = state(local, key)
    response = post(receiver_url, captured, webhook_id="01CAPTURED")
    assert (response.status_code, response.json()) == (200, {"outcome": "stale"})
    assert state(local, key) == before and len(local.securityhub.updates) == 1


def test_a_failed_write_back_answers_503_and_the_redelivery_lands_the_note_once(local, receiver_url):
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    flaky = FlakySecurityHub(failures=1)
    local.new_ack_runtime(securityhub=flaky)
    body = webhook_for("webhook_incident_acknowledged.json", key, "01ACK")
    first = post(receiver_url, body, webhook_id="01ACK")
    assert (first.status_code, first.json()) == (503, {"outcome": "retry"})  # PagerDuty retries a 5xx
    item = state(local, key)
    assert item["status"]["S"] == "acknowledged" and len(item["outbox"]["L"]) == 1  # recorded with the change
    assert flaky.updates == []
    # PagerDuty's retry of the same webhook is not answered from the idempotency record: it carries the note out.
    second = post(receiver_url, body, webhook_id="01ACK")
    assert (second.status_code, second.json()) == (200, {"outcome": "no-op"})
    assert state(local, key)["outbox"]["L"] == []
    assert [n.split(" by ")[0] for n in flaky.notes_for(finding["Id"])] == ["Acknowledged"]
    # Delivered once more: the stored result, nothing written again.
    assert post(receiver_url, body, webhook_id="01ACK").status_code == 200
    assert len(flaky.updates) == 1


def test_resolving_one_incident_of_an_escalated_episode_resolves_its_sibling_in_pagerduty(local, receiver_url):
    finding = asff(severity="HIGH")
    key = page(local, finding)
    escalated = updated(finding, Severity={"Label": "CRITICAL"})
    assert router_handler.lambda_handler(sqs_event(event(escalated)), FakeLambdaContext()) == {"batchItemFailures": []}
    keys = [k["S"] for k in state(local, key)["incident_keys"]["L"]]
    assert len(keys) == 2, keys
    sibling = keys[1]
    before = len(local.receiver.accepted)
    response = post(receiver_url, webhook_for("webhook_incident_resolved.json", key, "01RES"), webhook_id="01RES")
    assert response.json() == {"outcome": "resolved"}
    sent = local.receiver.accepted[before:]
    assert [(e["event_action"], e["dedup_key"]) for e in sent] == [("resolve", sibling)]
    assert not local.receiver.incidents[sibling].is_open
    # PagerDuty's echo: the sibling incident resolved through the Events API. Nothing more happens.
    echo = webhook_for("webhook_incident_resolved_by_integration.json", sibling, "01ECHO", incident_id="QSIBLING")
    item = state(local, key)
    assert post(receiver_url, echo, webhook_id="01ECHO").json() == {"outcome": "no-op"}
    assert state(local, key) == item and len(local.receiver.accepted) == before + 1


def test_pagerduty_resolving_by_itself_leaves_the_workflow_alone(local, receiver_url):
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    body = webhook_for("webhook_incident_resolved_auto_timeout.json", key, "01AUTO")
    assert post(receiver_url, body, webhook_id="01AUTO").json() == {"outcome": "resolved"}
    assert state(local, key)["resolved_by"]["S"] == "pagerduty"
    update = local.securityhub.updates[-1]
    assert update.note.startswith("Resolved automatically by PagerDuty") and update.workflow is None


def test_a_merge_keeps_the_episode_open(local, receiver_url):
    key = page(local, asff(severity="CRITICAL"))
    body = webhook_for("webhook_incident_resolved_merged.json", key, "01MERGE")
    assert post(receiver_url, body, webhook_id="01MERGE").json() == {"outcome": "merged"}
    item = state(local, key)
    assert item["status"]["S"] == "open"
    assert "Q1Z8K3M5T7R2VX" in [i["S"] for i in item["incident_ids"]["L"]]
    assert "was merged into PagerDuty incident Q1Z8K3M5T7R2VX" in local.securityhub.updates[-1].note


def test_an_event_of_an_earlier_episode_changes_nothing(local, receiver_url):
    key = page(local, asff(severity="CRITICAL"))
    # What the router records when it opens episode 2 (moving episode 1's incidents to past_incident_ids).
    local.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": key}},
        UpdateExpression="SET past_incident_ids = :p, opened_at = :o",
        ExpressionAttributeValues={":p": {"L": [{"S": "QEPISODE1"}]}, ":o": {"S": just_now(-60)}},
    )
    before = state(local, key)
    late = webhook_for("webhook_incident_resolved.json", key, "01LATE", incident_id="QEPISODE1")
    assert post(receiver_url, late, webhook_id="01LATE").json() == {"outcome": "no-op"}
    # An unknown incident whose event happened before this episode opened: episode 1's too.
    older = webhook_for("webhook_incident_resolved_by_integration.json", key, "01OLDER", incident_id="QUNKNOWN")
    older["event"]["occurred_at"] = just_now(-120)
    assert post(receiver_url, older, webhook_id="01OLDER").json() == {"outcome": "no-op"}
    assert state(local, key) == before and len(local.securityhub.updates) == 1


def test_a_request_already_past_its_deadline_is_answered_503_without_a_change(local):
    key = page(local, asff(severity="CRITICAL"))
    body = json.dumps(webhook_for("webhook_incident_acknowledged.json", key, "01SLOW")).encode()
    headers = {"X-PagerDuty-Signature": sign(body, WEBHOOK_SECRET.encode()), "Content-Type": "application/json"}
    request = function_url_event("POST", ack_handler.WEBHOOK_PATH, headers, body, "203.0.113.7")
    request["requestContext"]["timeEpoch"] -= 3_500  # received 3.5 s ago (a slow cold start): 0.5 s are left
    before = state(local, key)
    response = ack_handler.function_url_handler(request, FakeLambdaContext())
    assert response["statusCode"] == 503
    assert state(local, key) == before
    # Retried in time, it goes through.
    request["requestContext"]["timeEpoch"] = int(time.time() * 1000)
    assert ack_handler.function_url_handler(request, FakeLambdaContext())["statusCode"] == 200
    assert state(local, key)["status"]["S"] == "acknowledged"


def test_the_deadline_counts_from_the_request_and_respects_the_lambda_timeout():
    request = {"requestContext": {"timeEpoch": 1_000_000}}
    deadline = ack_handler.function_url_deadline(request, FakeLambdaContext(), clock=lambda: 1_001.0)
    assert 2.9 < deadline.left() <= 3.0  # 4 s from receipt, 1 s already gone
    short = ack_handler.function_url_deadline(request, FakeLambdaContext(remaining_ms=2_500), clock=lambda: 1_000.0)
    assert 1.4 < short.left() <= 1.5  # the Lambda's own end, less a margin
    skewed = ack_handler.function_url_deadline(request, FakeLambdaContext(), clock=lambda: 990.0)
    assert 3.9 < skewed.left() <= 4.0  # a receipt "in the future" (clock skew) counts as now


def test_eventbridge_auto_resolve_and_retry(local):
    finding = asff(severity="CRITICAL")
    key = page(local, finding)
    local.new_ack_runtime(securityhub=(flaky := FlakySecurityHub(failures=1)))
    ev = eventbridge_for("eventbridge_incident_resolved_timeout.json", key)
    with pytest.raises(Exception, match="outbox entry left"):  # the invocation fails: Lambda retries it
        ack_handler.eventbridge_handler(ev, FakeLambdaContext())
    result = ack_handler.eventbridge_handler(ev, FakeLambdaContext())
    assert (result["outcome"], result["duplicate_delivery"]) == ("no-op", False)
    assert state(local, key)["resolved_by"]["S"] == "pagerduty"
    [note] = flaky.notes_for(finding["Id"])
    assert note.startswith("Resolved automatically by PagerDuty") and "auto-resolve timeout" in note


def test_a_flood_of_unsigned_requests_costs_no_state_access_and_genuine_webhooks_still_land(
    local, receiver_url, monkeypatch
):
    """Flood protection at the public URL: each forged request is answered from the signature check alone (the
    signing secret is read once and cached), so forged traffic cannot slow down or use up what genuine webhooks
    need; the alarms on rejected signatures and throttles tell on-call (tests/infra/test_pager_pager.py)."""
    import botocore.client

    key = page(local, asff(severity="CRITICAL"))
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        calls.append(f"{self.meta.service_model.service_name}:{operation_name}")
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    forged = webhook_for("webhook_incident_resolved.json", key)
    with requests.Session() as session:
        for i in range(100):
            raw = json.dumps(forged).encode()
            headers = {"X-PagerDuty-Signature": "v1=" + "0" * 64 if i % 2 else "", "X-Webhook-Id": f"F{i}"}
            assert session.post(receiver_url, data=raw, headers=headers, timeout=10).status_code == 401
    assert [c for c in calls if not c.startswith("secretsmanager:")] == []  # no DynamoDB, no Security Hub
    assert len(calls) <= 1  # the signing secret, at most once (cached)
    assert post(receiver_url, webhook_for("webhook_incident_acknowledged.json", key, "02GENUINE")).json() == {
        "outcome": "acknowledged"
    }
