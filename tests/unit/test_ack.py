"""PagerDuty webhooks v3: signatures, parsing, and what each incident event does to an episode."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from findings_router.ack import IncidentEvent, WebhookError, apply_ack, parse_webhook, sign, verify_signature
from findings_router.ack_processor import AckProcessor
from findings_router.config import load_policy
from findings_router.normalize import normalize_asff
from findings_router.pagerduty import RecordingNotifier
from findings_router.policy import CompiledPolicy
from findings_router.router import FindingsRouter, route_findings
from findings_router.securityhub import RecordingSecurityHub
from findings_router.store import InMemoryDedupStore
from tests.builders import CONFIG_DIR, NOW, asff, control, load_fixture

SECRET = b"whsec-test-0123456789"


def webhook(
    event_type: str,
    incident_key: str | None,
    *,
    agent: str | None = "Ada Operator",
    number: int = 42,
    wid: str = "01ABC",
) -> dict:
    return {
        "event": {
            "id": wid,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-11-21T12:05:00.000Z",
            "agent": {"id": "PUSER1", "type": "user_reference", "summary": agent} if agent else None,
            "client": None,
            "data": {
                "id": "Q1INCIDENT",
                "type": "incident",
                "number": number,
                "status": event_type.removeprefix("incident."),
                "incident_key": incident_key,
                "html_url": "https://example.pagerduty.com/incidents/Q1INCIDENT",
                "title": "[prod] HIGH GuardDuty: …",
            },
        }
    }


# ------------------------------------------------------------------------------------------ signature


def test_signature_accepts_any_matching_v1_and_ignores_other_versions():
    body = b'{"event": {}}'
    good = sign(body, SECRET)
    assert verify_signature(body, good, [SECRET])
    assert verify_signature(body, f"v1=00ff, {good}", [SECRET])  # rotation: several signatures
    assert verify_signature(body, f"v2=abc,{good}", [SECRET])
    assert verify_signature(body, good, [b"old-secret", SECRET])  # several secrets on our side


@pytest.mark.parametrize("header", [None, "", "v1=", "v1=deadbeef", "v2=" + "0" * 64, "sha256=abc"])
def test_bad_or_missing_signatures_are_rejected(header):
    assert not verify_signature(b"{}", header, [SECRET])


def test_signature_is_over_the_raw_body():
    body = json.dumps({"event": {"id": "x"}}).encode()
    reencoded = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert not verify_signature(reencoded, sign(body, SECRET), [SECRET])


def test_no_configured_secret_rejects_everything():
    assert not verify_signature(b"{}", sign(b"{}", SECRET), [])


# ------------------------------------------------------------------------------------------ parsing


def test_parse_acknowledged():
    event = parse_webhook(webhook("incident.acknowledged", "fr1-" + "a" * 40 + "~4"), "HDR-ID")
    assert event.webhook_id == "01ABC"  # the signed body's event id, not the unsigned header
    assert event.dedup_key == "fr1-" + "a" * 40  # escalation suffix stripped
    assert event.agent == "Ada Operator"
    assert event.incident_number == 42


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"event": "x"},
        {"event": {"event_type": "incident.acknowledged"}},
        {"event": {"data": {}}},
        {"event": {"event_type": "service.updated", "resource_type": "service", "data": {"id": "S"}}},
    ],
)
def test_malformed_bodies(body):
    with pytest.raises(WebhookError):
        parse_webhook(body)


def test_foreign_incident_has_no_dedup_key():
    assert parse_webhook(webhook("incident.acknowledged", "some-other-tool-key")).dedup_key is None
    assert parse_webhook(webhook("incident.acknowledged", None)).dedup_key is None


# ------------------------------------------------------------------------------------------ processing


@pytest.fixture
def world():
    store = InMemoryDedupStore()
    hub = RecordingSecurityHub()
    router = FindingsRouter(CompiledPolicy(load_policy(CONFIG_DIR / "prod.yaml")), store, RecordingNotifier(), hub)
    acks = AckProcessor(store, hub)
    return router, store, hub, acks


def _page(router, raw, now=NOW):
    [routed] = route_findings(router, [normalize_asff(raw)], now)
    return routed.decision


def test_page_writes_back_notified_with_a_note(world):
    router, _, hub, _ = world
    raw = asff(severity="HIGH")
    decision = _page(router, raw)
    [update] = hub.updates
    assert update.workflow == "NOTIFIED"
    assert update.refs[0].id == raw["Id"]
    assert decision.key in update.note and "Paged on-call via PagerDuty (prod)" in update.note


def test_acknowledge_then_resolve_by_operator(world):
    router, store, hub, acks = world
    raw = asff(severity="HIGH")
    key = _page(router, raw).key
    result = acks.process(parse_webhook(webhook("incident.acknowledged", key)), NOW)
    assert result.outcome == "acknowledged"
    state = store.items[key]
    assert (state.status, state.acknowledged_by, state.incident_id) == ("acknowledged", "Ada Operator", "Q1INCIDENT")
    assert (
        "Acknowledged by Ada Operator at 2026-11-21T12:05:00.000Z in PagerDuty incident #42"
        in hub.notes_for(raw["Id"])[-1]
    )
    result = acks.process(parse_webhook(webhook("incident.resolved", key, wid="02")), NOW)
    assert result.outcome == "resolved"
    assert store.items[key].resolved_by == "operator"
    assert hub.updates[-1].workflow is None  # prod does not set RESOLVED on an operator's resolve


def test_write_back_echo_never_pages_again(world):
    """Every BatchUpdateFindings makes Security Hub re-emit the finding: those echoes must not page or loop."""
    router, _, hub, acks = world
    raw = asff(severity="HIGH")
    key = _page(router, raw).key
    echo_notified = dict(
        raw, Workflow={"Status": "NOTIFIED"}, Note={"Text": hub.updates[-1].note, "UpdatedBy": "findings-router"}
    )
    assert _page(router, echo_notified).outcome == "duplicate"
    acks.process(parse_webhook(webhook("incident.acknowledged", key)), NOW)
    assert (
        _page(router, dict(echo_notified, Note={"Text": hub.updates[-1].note, "UpdatedBy": "findings-router"})).outcome
        == "duplicate"
    )
    acks.process(parse_webhook(webhook("incident.resolved", key, wid="r")), NOW)
    # The operator resolved it, Security Hub still reports it active (and echoes our note): no new page.
    assert _page(router, echo_notified, NOW + dt.timedelta(hours=1)).outcome == "duplicate"
    assert len(hub.updates) == 3  # page, ack note, resolve note: no write-back triggered by an echo


def test_operator_resolved_then_securityhub_resolves_then_fails_again_pages(world):
    router, store, _, acks = world
    failed = control("S3.8", "FAILED")
    key = _page(router, failed).key
    acks.process(parse_webhook(webhook("incident.resolved", key)), NOW)
    passed = dict(failed, Compliance={"Status": "PASSED", "SecurityControlId": "S3.8"})
    assert _page(router, passed).outcome == "duplicate"
    assert store.items[key].resolved_by == "securityhub"
    assert _page(router, failed).outcome == "page"
    assert store.items[key].episode == 2


def test_rising_severity_after_operator_resolve_pages(world):
    router, _, _, acks = world
    raw = asff(severity="HIGH")
    key = _page(router, raw).key
    acks.process(parse_webhook(webhook("incident.resolved", key)), NOW)
    assert _page(router, dict(raw, Severity={"Label": "CRITICAL"})).outcome == "page"


def test_resolved_in_securityhub_first_makes_the_later_webhook_a_noop(world):
    router, store, hub, acks = world
    raw = asff(severity="HIGH")
    key = _page(router, raw).key
    assert _page(router, dict(raw, RecordState="ARCHIVED")).outcome == "resolve"
    before = (store.items[key], len(hub.updates))
    result = acks.process(parse_webhook(webhook("incident.resolved", key, agent=None)), NOW)
    assert result.outcome == "no-op"
    assert (store.items[key], len(hub.updates)) == before


def test_not_ours(world):
    _, _, hub, acks = world
    assert acks.process(parse_webhook(webhook("incident.acknowledged", "nagios-123")), NOW).outcome == "not-ours"
    assert acks.process(parse_webhook(webhook("incident.acknowledged", "fr1-" + "0" * 40)), NOW).outcome == "not-ours"
    assert hub.updates == []


def test_grouped_incident_without_incident_key_uses_alert_keys(world):
    router, store, _, _ = world
    key = _page(router, asff(severity="HIGH")).key
    hub = RecordingSecurityHub()
    acks = AckProcessor(store, hub, alert_keys=lambda incident_id: ["other", key])
    assert acks.process(parse_webhook(webhook("incident.acknowledged", None)), NOW).outcome == "acknowledged"


def test_unacknowledge_and_reopen(world):
    router, store, _, acks = world
    key = _page(router, asff(severity="HIGH")).key
    acks.process(parse_webhook(webhook("incident.acknowledged", key)), NOW)
    assert acks.process(parse_webhook(webhook("incident.unacknowledged", key)), NOW).outcome == "unacknowledged"
    assert store.items[key].status == "open"
    acks.process(parse_webhook(webhook("incident.resolved", key)), NOW)
    assert acks.process(parse_webhook(webhook("incident.reopened", key)), NOW).outcome == "reopened"
    assert store.items[key].status == "open"


def test_events_we_do_not_act_on(world):
    _, _, _, acks = world
    assert acks.process(parse_webhook(webhook("incident.priority_updated", "fr1-x")), NOW).outcome == "no-op"


def test_apply_ack_is_pure():
    from findings_router.dedup import DedupState
    from findings_router.model import Severity

    state = DedupState(
        "fr1-k", "open", 1, "page", Severity.HIGH, ("fr1-k",), ("f",), "f", "p", "t", "a", "a", "a", 1, 1, 3, 9
    )
    event = IncidentEvent("w", "incident.acknowledged", "", "Q", None, None, "fr1-k", "acknowledged", "", None)
    decision = apply_ack(state, event, "2026-11-21T00:00:00Z", False)
    assert decision.new_state is not None and decision.new_state.version == 4
    assert decision.new_state.acknowledged_by == "PagerDuty" and state.status == "open"


# ------------------------------------------------------------------------------- real-shaped deliveries


def _pd(name):
    return load_fixture(f"pagerduty/{name}")


def test_published_signature_test_vector():
    vector = _pd("signature_vector.json")
    assert verify_signature(vector["body"].encode(), vector["signature_header"], [vector["secret"].encode()])
    assert not verify_signature(vector["body"].encode() + b" ", vector["signature_header"], [vector["secret"].encode()])


@pytest.mark.parametrize(
    ("name", "event_type", "acted_on"),
    [
        ("webhook_incident_triggered.json", "incident.triggered", True),
        ("webhook_incident_acknowledged.json", "incident.acknowledged", True),
        ("webhook_incident_unacknowledged.json", "incident.unacknowledged", True),
        ("webhook_incident_reassigned.json", "incident.reassigned", True),
        ("webhook_incident_escalated.json", "incident.escalated", True),
        ("webhook_incident_resolved.json", "incident.resolved", True),
        ("webhook_incident_reopened.json", "incident.reopened", True),
        ("webhook_incident_priority_updated.json", "incident.priority_updated", False),
    ],
)
def test_real_shaped_v3_webhooks_parse(name, event_type, acted_on):
    event = parse_webhook(_pd(name))
    assert event.event_type == event_type
    assert event.acted_on is acted_on
    assert event.incident_id and event.webhook_id


def test_grouped_incident_fixture_has_no_dedup_key_in_the_body():
    assert parse_webhook(_pd("webhook_incident_grouped_no_incident_key.json")).dedup_key is None


def test_eventbridge_partner_delivery_parses_as_the_same_event():
    from findings_router.ack import parse_eventbridge_v2

    ev = _pd("eventbridge_incident_acknowledged.json")
    event = parse_eventbridge_v2(ev["detail"], ev["id"])
    assert event.event_type == "incident.acknowledged"
    assert event.agent == "Dana Whitfield"
    assert event.dedup_key == "fr1-51b3ee29247fa504b3f1bcafcabfd3be8a540eca"
    assert event.incident_number == 4217
