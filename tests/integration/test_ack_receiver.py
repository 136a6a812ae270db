"""The ack receiver behind a (local) Function URL, and the EventBridge path, against moto's DynamoDB."""

from __future__ import annotations

import json

import pytest
import requests

from findings_router import ack_handler
from findings_router import handler as router_handler
from findings_router.ack import sign
from findings_router_local.function_url import FunctionUrlServer
from tests.builders import FakeLambdaContext, asff, event, load_fixture, sqs_event
from tests.integration.conftest import TABLE, WEBHOOK_SECRET


@pytest.fixture
def receiver_url(local):
    with FunctionUrlServer(ack_handler.function_url_handler) as server:
        yield server.url + ack_handler.WEBHOOK_PATH


def page(local, finding) -> str:
    assert router_handler.lambda_handler(sqs_event(event(finding)), FakeLambdaContext()) == {"batchItemFailures": []}
    return local.state_items()[0]["pk"]["S"]


def webhook_for(fixture: str, dedup_key: str | None, webhook_id: str = "01WEBHOOK") -> dict:
    body = load_fixture(f"pagerduty/{fixture}")
    body["event"]["id"] = webhook_id
    body["event"]["data"]["incident_key"] = dedup_key
    return body


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
    ev = load_fixture("pagerduty/eventbridge_incident_acknowledged.json")
    ev["detail"]["incident"]["incident_key"] = key
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
            "occurred_at": "2026-11-21T12:00:00Z",
            "data": {"message": "Hello from your friend Pagey!", "type": "ping"},
        }
    }
    response = post(receiver_url, ping)
    assert response.status_code == 200
    assert response.json() == {"outcome": "ignored"}
    assert post(receiver_url, ping, secret="wrong").status_code == 401  # still verified first
