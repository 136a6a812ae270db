"""PagerDuty webhooks v3: signatures, parsing, and what each incident event does to an episode.

Episodes, replays, sibling incidents, who resolved, merges, the outbox and the deadline: see the sections below."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence

import pytest

from findings_router.adapters.memory import InMemoryDedupStore, RecordingSecurityHub
from findings_router.adapters.securityhub import FindingRef, Workflow, WritebackResult
from findings_router.domain.acks import (
    CLOCK_SKEW,
    MAX_EVENT_AGE,
    IncidentEvent,
    OutboxEntry,
    WebhookError,
    apply_ack,
    earlier_episode,
    parse_eventbridge_v2,
    parse_webhook,
    sibling_keys,
    sign,
    stale_reason,
    verify_signature,
)
from findings_router.domain.episodes import DedupState
from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.notify import DeliveryError
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.acknowledge import AckProcessor, Deadline, RetryLater
from findings_router.service.route import FindingsRouter, route_findings
from findings_router.settings.load import load_policy
from tests.builders import CONFIG_DIR, NOW, asff, control, load_fixture, updated

SECRET = b"whsec-test-0123456789"


def webhook(
    event_type: str,
    incident_key: str | None,
    *,
    agent: str | None = "Ada Operator",
    number: int = 42,
    wid: str = "01ABC",
    incident_id: str = "Q1INCIDENT",
    occurred_at: str = "2026-11-21T12:05:00.000Z",
) -> dict:
    return {
        "event": {
            "id": wid,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": occurred_at,
            "agent": {"id": "PUSER1", "type": "user_reference", "summary": agent} if agent else None,
            "client": None,
            "data": {
                "id": incident_id,
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
    acks = AckProcessor(store, hub, notifier=RecordingNotifier())
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
    assert store.items[key].outbox == ()  # both notes written, and cleared from the item
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
    passed = updated(failed, Compliance={"Status": "PASSED", "SecurityControlId": "S3.8"})
    assert _page(router, passed).outcome == "duplicate"
    assert (store.items[key].resolved_by, store.items[key].securityhub_agrees) == ("operator", True)  # who, kept
    assert _page(router, updated(failed, minutes=2)).outcome == "page"
    assert store.items[key].episode == 2


def test_rising_severity_after_operator_resolve_pages(world):
    router, _, _, acks = world
    raw = asff(severity="HIGH")
    key = _page(router, raw).key
    acks.process(parse_webhook(webhook("incident.resolved", key)), NOW)
    assert _page(router, updated(raw, Severity={"Label": "CRITICAL"})).outcome == "page"


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
    from findings_router.domain.episodes import DedupState
    from findings_router.domain.model import Severity

    state = DedupState(
        "fr1-k", "open", 1, "page", Severity.HIGH, ("fr1-k",), ("f",), "f", "p", "t", "a", "a", "a", 1, 1, 3, 9
    )
    event = IncidentEvent("w", "incident.acknowledged", "", "Q", None, None, "fr1-k", "acknowledged", "", None)
    decision = apply_ack(state, event, "2026-11-21T00:00:00Z", False)
    assert decision.new_state is not None and decision.new_state.version == 4
    assert decision.new_state.acknowledged_by == "PagerDuty" and state.status == "open"
    assert decision.new_state.incident_ids == ("Q",) and decision.new_state.incident_id == "Q"
    assert [OutboxEntry.from_json(e) for e in decision.new_state.outbox] == [decision.outbox_entry]
    assert state.outbox == () and state.incident_ids == ()


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
    from findings_router.domain.acks import parse_eventbridge_v2

    ev = _pd("eventbridge_incident_acknowledged.json")
    event = parse_eventbridge_v2(ev["detail"], ev["id"])
    assert event.event_type == "incident.acknowledged"
    assert event.agent == "Dana Whitfield"
    assert event.dedup_key == "fr1-51b3ee29247fa504b3f1bcafcabfd3be8a540eca"
    assert event.incident_number == 4217


# =============================================================================== episodes, replays, who resolved

KEY = "fr1-" + "e" * 40
ESCALATED = f"{KEY}~4"
STORM = "fr1-storm-" + "5" * 40
OPENED = "2026-11-21T12:00:00Z"


def episode(**changes) -> DedupState:
    """Episode 2 of KEY, opened at 12:00, with incident Q2 known and Q1 from episode 1."""
    base = DedupState(
        key=KEY,
        status="open",
        episode=2,
        action="page",
        severity=Severity.HIGH,
        incident_keys=(KEY,),
        members=("finding-1",),
        finding_id="finding-1",
        product_arn="arn:aws:securityhub:eu-central-1::product/aws/guardduty",
        title="t",
        first_seen="2026-11-20T09:00:00Z",
        last_seen=OPENED,
        last_notified_at=OPENED,
        seen_count=3,
        notify_count=2,
        version=7,
        expires_at=int(NOW.timestamp()) + 86400,
        account="111122223333",
        opened_at=OPENED,
        incident_ids=("Q2",),
        past_incident_ids=("Q1",),
    )
    return dataclasses.replace(base, **changes)


def incident_event(
    event_type: str = "incident.resolved",
    incident_id: str = "Q2",
    *,
    occurred_at: str = "2026-11-21T12:05:00.000Z",
    incident_key: str | None = KEY,
    agent: str | None = "Ada Operator",
    agent_type: str | None = "user_reference",
    wid: str = "W1",
    **fields,
) -> IncidentEvent:
    return IncidentEvent(
        wid,
        event_type,
        occurred_at,
        incident_id,
        7,
        None,
        incident_key,
        None,
        "",
        agent,
        agent_type=agent_type,
        **fields,
    )


def decide(state: DedupState, event: IncidentEvent, resolve_workflow: bool = False):
    return apply_ack(state, event, "2026-11-21T12:06:00Z", resolve_workflow)


# ------------------------------------------------------------------------------------ A: bound to its episode


@pytest.mark.parametrize("event_type", ["incident.acknowledged", "incident.resolved", "incident.reopened"])
def test_an_event_of_an_earlier_episodes_incident_changes_nothing(event_type):
    decision = decide(episode(), incident_event(event_type, "Q1"))
    assert decision.outcome == "no-op" and decision.new_state is None and decision.note is None
    assert "Q1" in decision.reason and "before episode 2" in decision.reason


def test_a_late_resolve_of_episode_1_does_not_resolve_episode_2():
    """Episode 1's incident resolved by a person, or PagerDuty's echo of our own Events-API resolve, arriving late."""
    state = episode()
    by_person = incident_event("incident.resolved", "Q1")
    echo = incident_event("incident.resolved", "Q1", agent="Events API V2", agent_type="inbound_integration_reference")
    for event in (by_person, echo):
        assert decide(state, event).new_state is None
    # Its id never learned (no webhook of episode 1 arrived in time): it occurred before episode 2 opened.
    unknown = episode(past_incident_ids=())
    late_echo = dataclasses.replace(echo, occurred_at="2026-11-21T11:59:40.000Z")
    decision = decide(unknown, late_echo)
    assert decision.outcome == "no-op" and "before episode 2 opened" in decision.reason


def test_an_unknown_incident_is_placed_by_when_its_event_occurred():
    state = episode(incident_ids=())
    skew = int(CLOCK_SKEW.total_seconds())
    just_before = f"2026-11-21T11:59:{60 - skew + 1:02d}.000Z"  # inside the clock-skew margin
    too_early = f"2026-11-21T11:59:{60 - skew - 1:02d}.000Z"
    assert earlier_episode(state, incident_event(incident_id="Q3", occurred_at=just_before)) is None
    assert earlier_episode(state, incident_event(incident_id="Q3", occurred_at=too_early))
    assert earlier_episode(state, incident_event(incident_id="Q3", occurred_at="garbage"))
    # A known incident of this episode is accepted whatever the time says; old items without opened_at as well.
    assert earlier_episode(episode(), incident_event(incident_id="Q2", occurred_at=too_early)) is None
    assert earlier_episode(episode(opened_at=None, incident_ids=()), incident_event(incident_id="Q3")) is None


def test_an_accepted_event_records_its_incident_in_the_episode():
    state = episode(incident_ids=(), incident_id="Q-OLD")  # incident_id of an item written before incident_ids
    ack = decide(state, incident_event("incident.acknowledged", "Q2"))
    assert ack.outcome == "acknowledged"
    assert ack.new_state.incident_ids == ("Q2",) and ack.new_state.incident_id == "Q2"
    escalation = decide(ack.new_state, incident_event("incident.escalated", "Q3", incident_key=ESCALATED, wid="W2"))
    assert escalation.outcome == "noted" and escalation.new_state.incident_ids == ("Q2", "Q3")
    assert escalation.new_state.incident_id == "Q2"
    assert decide(escalation.new_state, incident_event("incident.escalated", "Q3", wid="W3")).outcome == "no-op"


# ------------------------------------------------------------------------------------ B: replays


def test_stale_events_are_recognised():
    fresh = incident_event(occurred_at=(NOW - MAX_EVENT_AGE + dt.timedelta(minutes=1)).isoformat())
    assert stale_reason(fresh, NOW) is None
    for occurred_at in ("", "yesterday", (NOW - MAX_EVENT_AGE - dt.timedelta(minutes=1)).isoformat()):
        assert stale_reason(incident_event(occurred_at=occurred_at), NOW)


def test_a_replayed_capture_changes_nothing(world):
    """A signed body captured once and sent again after its idempotency record expired (72 h)."""
    router, store, hub, acks = world
    key = _page(router, asff(severity="HIGH")).key
    before = (store.items[key], len(hub.updates))
    captured = webhook("incident.resolved", key, occurred_at="2026-11-18T09:00:00.000Z")  # 75 h before NOW
    result = acks.process(parse_webhook(captured), NOW)
    assert result.outcome == "stale" and "replay" in result.reason
    assert (store.items[key], len(hub.updates)) == before
    missing = webhook("incident.resolved", key, occurred_at="")
    assert acks.process(parse_webhook(missing), NOW).outcome == "stale"
    assert (store.items[key], len(hub.updates)) == before


# ------------------------------------------------------------------------------------ C: escalated episodes


def test_sibling_keys_are_the_other_own_incidents():
    state = episode(incident_keys=(KEY, ESCALATED, STORM))
    assert sibling_keys(state, incident_event(incident_key=KEY)) == (ESCALATED,)
    assert sibling_keys(state, incident_event(incident_key=ESCALATED)) == (KEY,)
    assert sibling_keys(state, incident_event(incident_key=None)) == (KEY, ESCALATED)  # grouped: which is unknown
    assert sibling_keys(episode(incident_keys=(KEY, STORM)), incident_event(incident_key=None)) == ()
    assert sibling_keys(episode(), incident_event(incident_key=KEY)) == ()


def _processor(state: DedupState, hub=None, notifier=None, resolve_workflow: bool = False):
    store = InMemoryDedupStore()
    store.items[state.key] = state
    hub = hub if hub is not None else RecordingSecurityHub()
    notifier = notifier if notifier is not None else RecordingNotifier()
    acks = AckProcessor(store, hub, notifier=notifier, resolve_workflow_on_operator_resolve=resolve_workflow)
    return store, hub, notifier, acks


def test_resolving_one_incident_of_an_escalated_episode_resolves_the_others():
    store, hub, resolver, acks = _processor(episode(incident_keys=(KEY, ESCALATED, STORM), incident_ids=("Q2",)))
    result = acks.process(incident_event("incident.resolved", "Q2", incident_key=KEY), NOW)
    assert (result.outcome, result.resolved_siblings) == ("resolved", 1)
    assert resolver.events == [{"routing_key": "R" * 32, "event_action": "resolve", "dedup_key": ESCALATED}]
    assert store.items[KEY].status == "resolved" and store.items[KEY].outbox == ()
    assert len(hub.updates) == 1 and "other incident" in hub.updates[0].note
    # PagerDuty's echo of that resolve (the escalation incident, never seen before): nothing more happens.
    before = store.items[KEY]
    echo = incident_event(
        "incident.resolved",
        "Q3",
        incident_key=ESCALATED,
        agent="Events API V2",
        agent_type="inbound_integration_reference",
    )
    assert acks.process(dataclasses.replace(echo, webhook_id="W2"), NOW).outcome == "no-op"
    assert store.items[KEY] == before and len(hub.updates) == 1 and len(resolver.events) == 1


# ------------------------------------------------------------------------------------ D: who resolved


@pytest.mark.parametrize(
    ("agent", "agent_type", "channel", "how"),
    [
        ("Events API V2", "inbound_integration_reference", None, "through the integration Events API V2"),
        ("Security Findings", "service_reference", None, "its service Security Findings"),
        ("Security Findings", "service_reference", "timeout", "auto-resolve timeout"),
        (None, None, None, "automation"),
    ],
)
def test_pagerduty_resolving_by_itself_is_not_an_operator(agent, agent_type, channel, how):
    event = incident_event(agent=agent, agent_type=agent_type, agent_channel=channel)
    decision = decide(episode(), event, resolve_workflow=True)
    assert decision.outcome == "resolved"
    assert decision.new_state.resolved_by == "pagerduty" and decision.new_state.status == "resolved"
    assert decision.note.startswith("Resolved automatically by PagerDuty") and how in decision.note
    assert decision.workflow_resolved is False and decision.outbox_entry.workflow is None


def test_a_person_resolving_is_an_operator():
    decision = decide(episode(), incident_event(agent="Li Wei"), resolve_workflow=True)
    assert decision.new_state.resolved_by == "operator"
    assert decision.note.startswith("Resolved by Li Wei") and decision.outbox_entry.workflow == "RESOLVED"


def test_real_shaped_resolves_say_who_resolved():
    person = parse_webhook(_pd("webhook_incident_resolved.json"))
    integration = parse_webhook(_pd("webhook_incident_resolved_by_integration.json"))
    timeout = parse_webhook(_pd("webhook_incident_resolved_auto_timeout.json"))
    assert (person.by_person, person.agent_type) == (True, "user_reference")
    assert (integration.by_person, integration.agent) == (False, "Events API V2")
    assert (timeout.by_person, timeout.agent_type) == (False, "service_reference")
    v2 = _pd("eventbridge_incident_resolved_timeout.json")
    event = parse_eventbridge_v2(v2["detail"], v2["id"])
    assert (event.event_type, event.by_person, event.agent_channel) == ("incident.resolved", False, "timeout")
    decision = decide(episode(incident_ids=(event.incident_id,)), dataclasses.replace(event, occurred_at=OPENED))
    assert decision.new_state.resolved_by == "pagerduty" and "auto-resolve timeout" in decision.note


def test_a_merge_keeps_the_episode_open_and_records_the_target():
    merged = parse_webhook(_pd("webhook_incident_resolved_merged.json"))
    assert (merged.merged, merged.merged_into, merged.by_person) == (True, "Q1Z8K3M5T7R2VX", True)
    state = episode(incident_keys=(KEY, ESCALATED), incident_ids=("Q2C6H9L3P7T1XB",), opened_at=None)
    decision = decide(state, merged)
    assert decision.outcome == "merged" and decision.resolve_keys == ()
    assert decision.new_state.status == "open" and decision.new_state.resolved_by is None
    assert decision.new_state.incident_ids == ("Q2C6H9L3P7T1XB", "Q1Z8K3M5T7R2VX")
    assert "merged into PagerDuty incident Q1Z8K3M5T7R2VX" in decision.note and decision.outbox_entry.workflow is None
    # The target incident's later events belong to the episode; its resolve ends it.
    target = incident_event("incident.resolved", "Q1Z8K3M5T7R2VX", occurred_at="2026-11-12T10:00:00Z")
    assert decide(decision.new_state, target).new_state.status == "resolved"


def test_a_v2_merge_without_a_target_still_keeps_the_episode_open():
    message = _pd("eventbridge_incident_resolved_timeout.json")
    message["detail"]["incident"]["resolve_reason"] = "merged"
    event = parse_eventbridge_v2(message["detail"], message["id"])
    assert (event.merged, event.merged_into) == (True, None)
    decision = decide(episode(incident_ids=(event.incident_id,)), dataclasses.replace(event, occurred_at=OPENED))
    assert decision.outcome == "merged" and decision.new_state.status == "open"


def test_a_merged_episode_is_still_resolved_by_security_hub(world):
    """The merge moved our alert into another incident: the router's resolve for our dedup key resolves it there."""
    router, store, _, acks = world
    raw = asff(severity="HIGH")
    key = _page(router, raw).key
    merge = webhook("incident.resolved", key, wid="M1")
    merge["event"]["data"]["resolve_reason"] = {"type": "merge_resolve_reason", "incident": {"id": "QTARGET"}}
    assert acks.process(parse_webhook(merge), NOW).outcome == "merged"
    assert store.items[key].is_open and "QTARGET" in store.items[key].incident_ids
    archived = _page(router, updated(raw, RecordState="ARCHIVED"), NOW + dt.timedelta(minutes=10))
    assert archived.outcome == "resolve" and [s.key for s in archived.notifications] == [key]


def test_an_automatic_resolve_can_be_reopened_by_a_person():
    resolved = decide(episode(), incident_event(agent=None, agent_type=None)).new_state
    reopened = decide(resolved, incident_event("incident.reopened", wid="W2"))
    assert reopened.outcome == "reopened" and reopened.new_state.status == "open"
    assert reopened.new_state.resolved_by is None and reopened.new_state.resolved_at is None


# ------------------------------------------------------------------------------------ E: the outbox


class FlakySecurityHub(RecordingSecurityHub):
    """Fails the first `failures` updates: raising `error`, or answering `unprocessed` for every finding."""

    def __init__(self, failures: int = 1, error: Exception | None = None, unprocessed: str | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.error = error or RuntimeError("AccessDeniedException: not authorized to BatchUpdateFindings")
        self.unprocessed = unprocessed
        self.calls = 0

    def update(self, refs: Sequence[FindingRef], note: str, workflow: Workflow | None = None) -> WritebackResult:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            if self.unprocessed is None:
                raise self.error
            return WritebackResult(0, [(r, self.unprocessed) for r in refs])
        return super().update(refs, note, workflow)


def test_the_note_is_recorded_with_the_state_change():
    decision = decide(episode(outbox=('{"id":"EARLIER","note":"n","workflow":null,"resolve":[]}',)), incident_event())
    entries = [OutboxEntry.from_json(e) for e in decision.new_state.outbox]
    assert [e.id for e in entries] == ["EARLIER", "W1"]
    assert entries[1] == OutboxEntry("W1", decision.note, None, ())


def test_an_event_whose_entry_is_pending_was_applied_already():
    """Even an event that changes no status (a merge), delivered again while its note waits, adds no second entry."""
    merge = incident_event(merged=True, merged_into="Q9")
    first = decide(episode(), merge)
    assert first.outcome == "merged" and len(first.new_state.outbox) == 1
    again = decide(first.new_state, merge)
    assert again.outcome == "no-op" and again.new_state is None and "pending" in again.reason


def test_a_failed_write_back_is_retried_by_the_redelivery_and_lands_once():
    store, hub, _, acks = _processor(episode(), hub=FlakySecurityHub(failures=1))
    ack = incident_event("incident.acknowledged")
    with pytest.raises(RetryLater) as raised:
        acks.process(ack, NOW)
    assert raised.value.result.outcome == "acknowledged" and raised.value.result.outbox_pending == 1
    state = store.items[KEY]
    assert state.status == "acknowledged" and [OutboxEntry.from_json(e).id for e in state.outbox] == ["W1"]
    assert hub.updates == []
    # PagerDuty delivers the same webhook again (the 5xx): the state is as it was, the note is written now.
    result = acks.process(ack, NOW)
    assert (result.outcome, result.outbox_written) == ("no-op", 1)
    assert store.items[KEY].outbox == () and [u.note for u in hub.updates] == [state_note(state)]
    # A third delivery writes nothing more.
    assert acks.process(ack, NOW).outbox_written == 0 and len(hub.updates) == 1


def state_note(state: DedupState) -> str:
    [raw] = state.outbox
    entry = OutboxEntry.from_json(raw)
    assert entry is not None and entry.note
    return entry.note


def test_a_later_event_for_the_key_drains_what_an_earlier_one_left():
    store, hub, _, acks = _processor(episode(), hub=FlakySecurityHub(failures=1))
    with pytest.raises(RetryLater):
        acks.process(incident_event("incident.acknowledged", wid="W1"), NOW)
    result = acks.process(incident_event("incident.resolved", wid="W2"), NOW)
    assert (result.outcome, result.outbox_written) == ("resolved", 2)
    assert [u.note.split(" by ")[0] for u in hub.updates] == ["Acknowledged", "Resolved"]
    assert store.items[KEY].outbox == ()
    # An event we do not act on, or one of an earlier episode, still drains.
    for later in (
        incident_event("incident.priority_updated", wid="W3"),
        incident_event("incident.acknowledged", "Q1", wid="W4"),  # of episode 1
    ):
        store, hub, _, acks = _processor(episode(), hub=FlakySecurityHub(failures=1))
        with pytest.raises(RetryLater):
            acks.process(incident_event("incident.acknowledged"), NOW)
        result = acks.process(later, NOW)
        assert (result.outcome, result.outbox_written) == ("no-op", 1)
        assert len(hub.updates) == 1 and hub.updates[0].note.startswith("Acknowledged")


def test_transient_unprocessed_findings_are_retried_and_permanent_ones_are_not():
    _, hub, _, acks = _processor(episode(), hub=FlakySecurityHub(failures=1, unprocessed="ThrottlingException"))
    with pytest.raises(RetryLater):
        acks.process(incident_event("incident.acknowledged"), NOW)
    store, hub, _, acks = _processor(episode(), hub=FlakySecurityHub(failures=1, unprocessed="FindingNotFound"))
    result = acks.process(incident_event("incident.acknowledged"), NOW)
    assert result.writeback_failed == 1 and store.items[KEY].outbox == () and hub.calls == 1


def test_a_failed_sibling_resolve_is_retried_before_the_note_is_written():
    resolver = RecordingNotifier()
    resolver.fail_with = DeliveryError("PagerDuty unavailable", retryable=True, reason="unavailable")
    store, hub, _, acks = _processor(episode(incident_keys=(KEY, ESCALATED)), notifier=resolver)
    with pytest.raises(RetryLater):
        acks.process(incident_event(), NOW)
    assert store.items[KEY].status == "resolved" and hub.updates == []  # the note waits for the resolves
    resolver.fail_with = None
    acks.process(incident_event(), NOW)
    assert resolver.resolved == [ESCALATED] and len(hub.updates) == 1 and store.items[KEY].outbox == ()


def test_an_unreadable_routing_key_keeps_the_resolve_for_later():
    class NoSecret(RecordingNotifier):
        def send(self, notification, context):
            raise RuntimeError("AccessDeniedException: secretsmanager:GetSecretValue")

    store, hub, _, acks = _processor(episode(incident_keys=(KEY, ESCALATED)), notifier=NoSecret())
    with pytest.raises(RetryLater):
        acks.process(incident_event(), NOW)
    assert len(store.items[KEY].outbox) == 1 and hub.updates == []


def test_a_rejected_sibling_resolve_is_not_retried():
    resolver = RecordingNotifier()
    resolver.fail_with = DeliveryError("400 invalid routing key", retryable=False, reason="rejected")
    store, hub, _, acks = _processor(episode(incident_keys=(KEY, ESCALATED)), notifier=resolver)
    assert acks.process(incident_event(), NOW).outcome == "resolved"
    assert len(hub.updates) == 1 and store.items[KEY].outbox == ()


# ------------------------------------------------------------------------------------ F: the deadline


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SlowStore(InMemoryDedupStore):
    """Every write takes `seconds` of the fake clock."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def put(self, state: DedupState, expected_version: int | None) -> bool:
        self.clock.now += self.seconds
        return super().put(state, expected_version)


def test_nothing_is_committed_without_time_to_commit():
    store, hub, _, acks = _processor(episode())
    with pytest.raises(RetryLater):
        acks.process(incident_event("incident.acknowledged"), NOW, Deadline(0.2))
    assert store.items[KEY] == episode() and hub.updates == []


def test_work_past_the_deadline_stays_in_the_outbox_for_the_redelivery():
    clock = Clock()
    store = SlowStore(clock, seconds=1.0)
    store.items[KEY] = episode()
    hub = RecordingSecurityHub()
    acks = AckProcessor(store, hub, notifier=RecordingNotifier())
    ack = incident_event("incident.acknowledged")
    with pytest.raises(RetryLater) as raised:
        acks.process(ack, NOW, Deadline(1.5, clock=clock))  # the write leaves 0.5 s: too little for Security Hub
    assert raised.value.result.outbox_pending == 1 and hub.updates == []
    assert store.items[KEY].status == "acknowledged" and len(store.items[KEY].outbox) == 1
    assert acks.process(ack, NOW, Deadline(4.0, clock=clock)).outbox_written == 1
    assert len(hub.updates) == 1 and store.items[KEY].outbox == ()


def test_a_storm_incident_is_not_mapped_to_a_finding_state():
    """Storm incidents are shared by many findings: an acknowledgement of one touches no finding's episode (and the
    ack receiver's IAM does not allow reading storm counters)."""
    event = parse_webhook(webhook("incident.acknowledged", "fr1-storm-" + "a" * 40))
    assert event.dedup_key is None
    assert parse_webhook(webhook("incident.acknowledged", "fr1-" + "b" * 40)).dedup_key == "fr1-" + "b" * 40


def test_an_episode_of_an_account_outside_the_scope_is_not_ours():
    """An item written before `accounts` was narrowed: the ack receiver leaves it (and Security Hub) alone."""
    store = InMemoryDedupStore()
    hub = RecordingSecurityHub()
    router = FindingsRouter(CompiledPolicy(load_policy(CONFIG_DIR / "prod.yaml")), store, RecordingNotifier(), hub)
    [routed] = route_findings(router, [normalize_asff(asff(severity="HIGH"))], NOW)
    hub.updates.clear()
    narrowed = AckProcessor(store, hub, in_scope=lambda account: account == "999988887777")
    event = parse_webhook(webhook("incident.acknowledged", routed.decision.key))
    result = narrowed.process(event, NOW)
    assert result.outcome == "not-ours"
    assert store.items[routed.decision.key].status == "open" and hub.updates == []


def test_rejected_signatures_are_logged_at_most_ten_a_minute_and_the_next_line_counts_the_rest():
    from findings_router.entrypoints.receive_acks import RejectionLog

    log = RejectionLog(per_minute=10)
    admitted = [log.admit(0.5 * i) for i in range(30)]  # 30 forged requests in 15 s
    assert admitted[:10] == [0] * 10 and admitted[10:] == [None] * 20
    assert log.admit(60.0) == 20  # a minute later: logged again, with the 20 it did not log
    assert log.admit(61.0) == 0


def test_notes_reach_each_folded_finding_with_its_own_regions_product_arn():
    from findings_router.service.acknowledge import member_product_arn

    product = "arn:aws:securityhub:eu-central-1::product/aws/inspector"
    other = "arn:aws:inspector2:us-east-1:111122223333:finding/0f1e2d3c"
    same = "arn:aws:inspector2:eu-central-1:111122223333:finding/1a2b3c4d"
    assert member_product_arn(product, other) == "arn:aws:securityhub:us-east-1::product/aws/inspector"
    assert member_product_arn(product, same) == product
    # Ids that are no ARN (third-party products) keep the episode's product ARN.
    assert member_product_arn(product, "prowler-s3-bucket-1") == product
