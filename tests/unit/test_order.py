"""Events out of order, crashes between any two steps, and what belongs to this environment at all.

SQS has no order, and crashes, retries and redrives reorder further. Each test interleaves copies of one finding the
way SQS can, with an in-memory PagerDuty that counts incidents, and checks what the operator sees: one page per
episode, one resolve, nothing left open.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from findings_router.adapters.memory import InMemoryDedupStore, RecordingSecurityHub
from findings_router.domain.episodes import DedupState
from findings_router.domain.model import Finding
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.domain.policy import CompiledPolicy
from findings_router.notify import DeliveryResult
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.route import FindingsRouter, Routed, TriggerInFlightError
from findings_router.settings.load import load_policy
from tests.builders import CONFIG_DIR, NOW, asff, control, custom_action_event, updated


class Crash(Exception):
    """The Lambda container died here."""


class PagerDutyModel(RecordingNotifier):
    """Records events like the twin, and keeps PagerDuty's view: alerts open per dedup_key, incidents ever opened."""

    def __init__(self) -> None:
        super().__init__()
        self.open: set[str] = set()
        self.incidents: dict[str, int] = {}
        self.on_send: Callable[[Notification], None] | None = None

    def send(self, send: Notification, ctx: NotifyContext) -> DeliveryResult:
        result = super().send(send, ctx)
        if send.kind == "trigger" and send.key not in self.open:
            self.open.add(send.key)
            self.incidents[send.key] = self.incidents.get(send.key, 0) + 1
        elif send.kind == "resolve":
            self.open.discard(send.key)
        if self.on_send is not None:
            hook, self.on_send = self.on_send, None
            hook(send)
        return result

    @property
    def triggers(self) -> list[str]:
        return [e["dedup_key"] for e in self.events if e["event_action"] == "trigger"]


class CrashingStore(InMemoryDedupStore):
    """Dies on the first write for which `crash_when(state)` is true (before writing it)."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_when: Callable[[DedupState], bool] | None = None

    def put(self, state: DedupState, expected_version: int | None) -> bool:
        if self.crash_when is not None and self.crash_when(state):
            self.crash_when = None
            raise Crash
        return super().put(state, expected_version)


@pytest.fixture
def world() -> tuple[CrashingStore, PagerDutyModel, RecordingSecurityHub]:
    return CrashingStore(), PagerDutyModel(), RecordingSecurityHub()


def _router(world: tuple[CrashingStore, PagerDutyModel, RecordingSecurityHub], env: str = "prod") -> FindingsRouter:
    """A fresh invocation (its own cache) over the shared table, PagerDuty and Security Hub."""
    store, pagerduty, securityhub = world
    return FindingsRouter(CompiledPolicy(load_policy(CONFIG_DIR / f"{env}.yaml")), store, pagerduty, securityhub)


# SQS hands a message whose invocation died back after the visibility timeout (6 function timeouts).
REDELIVERED = NOW + dt.timedelta(minutes=12)


def _route(world: Any, raw: dict[str, Any] | Finding, now: dt.datetime = NOW) -> Routed:
    finding = raw if isinstance(raw, Finding) else normalize_asff(raw)
    return _router(world).route(finding, now)


def _resolved(raw: dict[str, Any], minutes: float = 0) -> dict[str, Any]:
    """Security Hub's copy after someone set Workflow RESOLVED (BatchUpdateFindings keeps UpdatedAt)."""
    return updated(raw, minutes, Workflow={"Status": "RESOLVED"})


# ------------------------------------------------------------------------------------------------ order


def test_an_older_or_equal_active_copy_changes_nothing():
    _store, pagerduty, _securityhub = world = (CrashingStore(), PagerDutyModel(), RecordingSecurityHub())
    first = asff(severity="HIGH")
    newer = updated(first, 10, Severity={"Label": "CRITICAL"})
    assert _route(world, newer).decision.outcome == "page"
    assert _route(world, first).decision.outcome == "duplicate"  # older copy, lower severity: not a change
    echo = dict(newer, Note={"Text": "Paged on-call", "UpdatedBy": "findings-router"}, Workflow={"Status": "NOTIFIED"})
    routed = _route(world, echo)  # our own write-back re-emitted: same UpdatedAt
    assert routed.decision.outcome == "duplicate"
    assert "not newer than the state" in routed.decision.reason
    assert len(pagerduty.triggers) == 1


def test_a_resolution_with_nothing_open_is_remembered_so_an_older_copy_does_not_page(world):
    store, pagerduty, securityhub = world
    active = asff(severity="HIGH")
    archived = updated(active, 5, RecordState="ARCHIVED")
    assert _route(world, archived).decision.outcome == "drop"
    [memory] = store.items.values()
    assert (memory.status, memory.episode, memory.observed_at) == ("resolved", 0, "2026-11-21T10:05:00.000Z")
    assert memory.expires_at - NOW.timestamp() == pytest.approx(14 * 86400)  # dedup.resolution_memory_days
    assert _route(world, active).decision.outcome == "duplicate"  # older active copy, arriving late
    assert pagerduty.events == [] and securityhub.updates == []
    # The provider reports it again later: a new problem, episode 1.
    again = _route(world, updated(active, 60))
    assert again.decision.outcome == "page"
    assert "reopened" not in again.decision.reason
    assert next(iter(store.items.values())).episode == 1


def test_a_resolution_older_than_the_state_is_ignored(world):
    _, pagerduty, _ = world
    active = asff(severity="HIGH")
    archived_earlier = updated(active, -5, RecordState="ARCHIVED")
    _route(world, active)
    routed = _route(world, archived_earlier)
    assert routed.decision.outcome == "duplicate"
    assert "older than the state" in routed.decision.reason
    assert pagerduty.open == {routed.decision.key}


def test_a_second_stale_copy_after_a_resolution_does_not_open_a_new_episode(world):
    """Issue 11, 4(a): copy 1 pages, Security Hub archives it, copy 2 (as old as copy 1) arrives late."""
    store, pagerduty, _ = world
    copy = asff(severity="HIGH")
    assert _route(world, copy).decision.outcome == "page"
    assert _route(world, updated(copy, 3, RecordState="ARCHIVED")).decision.outcome == "resolve"
    assert _route(world, copy).decision.outcome == "duplicate"
    assert pagerduty.open == set()
    assert list(pagerduty.incidents.values()) == [1]
    assert next(iter(store.items.values())).episode == 1


def test_workflow_resolved_then_a_late_active_copy_never_sets_notified(world):
    """Issue 11, 4(b): a person sets RESOLVED (UpdatedAt unchanged); the late active copy must not page or
    write NOTIFIED over RESOLVED (Security Hub would re-emit the finding as active and the incident stay open)."""
    _store, pagerduty, securityhub = world
    copy = control("S3.8", severity="CRITICAL")
    assert _route(world, _resolved(copy)).decision.outcome == "drop"
    assert _route(world, copy).decision.outcome == "duplicate"
    assert pagerduty.events == []
    assert securityhub.updates == []


# ------------------------------------------------------------------------------------------------ crashes


def test_crash_after_pagerduty_accepted_then_a_resolution_resolves_the_page(world):
    """Issue 11, 4: the first attempt dies between PagerDuty's 202 and the state write; Security Hub then
    archives the finding within the visibility timeout; then the retry and a second copy arrive."""
    store, pagerduty, securityhub = world
    copy = asff(severity="HIGH")
    store.crash_when = lambda state: not state.pending and state.status == "open"  # the confirming write
    with pytest.raises(Crash):
        _route(world, copy)
    assert pagerduty.triggers and pagerduty.open  # PagerDuty paged; we did not record it as delivered
    assert _route(world, updated(copy, 2, RecordState="ARCHIVED")).decision.outcome == "resolve"
    assert _route(world, copy).decision.outcome == "duplicate"  # the crashed message's retry
    assert _route(world, copy).decision.outcome == "duplicate"  # the second copy
    assert pagerduty.open == set()
    assert list(pagerduty.incidents.values()) == [1]
    assert [u.workflow for u in securityhub.updates] == []  # never NOTIFIED on a finding Security Hub archived


def test_crash_after_pagerduty_accepted_then_the_retry_confirms_without_a_second_incident(world):
    store, pagerduty, securityhub = world
    copy = asff(severity="HIGH")
    store.crash_when = lambda state: not state.pending and state.status == "open"
    with pytest.raises(Crash):
        _route(world, copy)
    # A second copy while the first invocation may still be sending: tried again later, not dropped.
    with pytest.raises(TriggerInFlightError, match="page of episode 1 is being sent"):
        _route(world, copy)
    retry = _route(world, copy, REDELIVERED)
    assert retry.decision.outcome == "page"
    assert "delivering the recorded page" in retry.decision.reason
    [state] = store.items.values()
    assert state.pending == ()
    assert list(pagerduty.incidents.values()) == [1]  # the repeated trigger folded into the open alert
    assert len(pagerduty.triggers) == 2
    assert _route(world, copy, REDELIVERED).decision.outcome == "duplicate"
    assert [u.workflow for u in securityhub.updates] == ["NOTIFIED"]


def test_crash_before_the_write_ahead_sends_nothing_and_the_retry_pages_once(world):
    store, pagerduty, _ = world
    copy = asff(severity="HIGH")
    store.crash_when = lambda state: bool(state.pending)
    with pytest.raises(Crash):
        _route(world, copy)
    assert pagerduty.events == [] and store.items == {}
    assert _route(world, copy).decision.outcome == "page"
    assert list(pagerduty.incidents.values()) == [1]


def test_a_resolution_racing_the_page_resolves_it_again(world):
    """The resolve goes out between our write-ahead and our trigger: PagerDuty gets resolve, then trigger. The
    confirmation finds the episode ended and resolves our trigger again."""
    store, pagerduty, _ = world
    copy = asff(severity="HIGH")
    archived = updated(copy, 1, RecordState="ARCHIVED")
    first = _router(world)
    first.prefetch([normalize_asff(copy)])

    def resolution_arrives(send: Notification) -> None:
        # PagerDuty had the trigger; pretend the resolve overtook it: the alert the resolve closed re-opens after.
        pagerduty.open.discard(send.key)
        assert _route(world, archived).decision.outcome == "resolve"
        pagerduty.open.add(send.key)

    pagerduty.on_send = resolution_arrives
    routed = first.route(normalize_asff(copy), NOW)
    assert routed.decision.outcome == "resolve"
    assert "resolved again" in routed.decision.reason
    assert pagerduty.open == set()
    assert next(iter(store.items.values())).status == "resolved"


def test_an_acknowledgement_between_send_and_confirm_is_kept(world):
    store, pagerduty, _ = world
    copy = asff(severity="HIGH")

    def operator_acknowledges(send: Notification) -> None:
        [state] = store.items.values()
        acked = dataclasses.replace(state, status="acknowledged", acknowledged_by="Ada", version=state.version + 1)
        assert store.put(acked, state.version)

    pagerduty.on_send = operator_acknowledges
    assert _route(world, copy).decision.outcome == "page"
    [state] = store.items.values()
    assert (state.status, state.acknowledged_by, state.pending) == ("acknowledged", "Ada", ())


def test_two_copies_racing_page_one_incident(world):
    store, pagerduty, _ = world
    copy = asff(severity="HIGH")
    a, b = _router(world), _router(world)
    for router in (a, b):
        router.prefetch([normalize_asff(copy)])  # both read "nothing stored"
    seen: list[str] = []

    def b_routes_meanwhile(send: Notification) -> None:
        with pytest.raises(TriggerInFlightError) as deferred:  # b found a's trigger recorded and in flight
            b.route(normalize_asff(copy), NOW)
        seen.append(str(deferred.value))

    pagerduty.on_send = b_routes_meanwhile
    assert a.route(normalize_asff(copy), NOW).decision.outcome == "page"
    assert seen and seen[0].endswith("page of episode 1 is being sent")
    assert _route(world, copy, REDELIVERED).decision.outcome == "duplicate"  # b's message, in a later invocation
    [state] = store.items.values()
    assert state.pending == () and state.episode == 1
    assert pagerduty.triggers == [state.key]


# ------------------------------------------------------------------------------------------------ scope


def test_a_finding_of_an_account_outside_the_scope_changes_nothing(world):
    store, pagerduty, securityhub = world
    routed = _route(world, asff(severity="CRITICAL", account="999988887777"))
    assert routed.decision.outcome == "drop"
    assert routed.decision.reason.startswith("account 999988887777 is outside prod's account scope")
    assert store.items == {} and store.read_calls == 0
    assert pagerduty.events == [] and securityhub.updates == []
    # Its resolution too: no resolution memory, nothing sent.
    assert _route(world, asff(account="999988887777", RecordState="ARCHIVED")).decision.outcome == "drop"
    assert store.items == {}


def test_another_tools_custom_action_changes_nothing(world):
    store, pagerduty, securityhub = world
    remediate = custom_action_event(asff(severity="CRITICAL"), action_id="Remediate")
    [finding] = normalize_event(remediate).findings
    routed = _route(world, finding)
    assert routed.decision.outcome == "drop"
    assert (
        "custom action arn:aws:securityhub:eu-central-1:111122223333:action/custom/Remediate" in routed.decision.reason
    )
    assert "not prod's (action/custom/PageOnCallProd)" in routed.decision.reason
    assert store.items == {} and pagerduty.events == [] and securityhub.updates == []


def test_our_custom_action_pages_a_finding_already_seen(world):
    """The operator's explicit request is not an "older copy", nor silenced by an earlier resolve in PagerDuty: it
    pages again even with the UpdatedAt already seen."""
    store, pagerduty, _ = world
    raw = asff(severity="HIGH")
    assert _route(world, raw).decision.outcome == "page"
    [state] = store.items.values()
    resolved = dataclasses.replace(state, status="resolved", resolved_by="operator", version=state.version + 1)
    assert store.put(resolved, state.version)
    assert _route(world, raw).decision.outcome == "duplicate"  # Security Hub re-sends it: not a new problem
    [finding] = normalize_event(custom_action_event(raw)).findings
    routed = _route(world, finding)
    assert (routed.decision.outcome, routed.decision.reason) == (
        "page",
        "custom action PageOnCallProd; episode 2 (reopened)",
    )
    assert len(pagerduty.triggers) == 2


def test_passing_controls_write_at_most_once_per_touch_interval(world):
    """Security Hub re-sends a PASSED control every 12-24 h with a newer UpdatedAt: the resolution memory is written
    once, then touched once per touch interval (72 h in prod), not on every re-send."""
    store, pagerduty, _ = world
    passed = control("S3.8", "PASSED")
    for hours in range(0, 96, 12):
        _route(world, updated(passed, 60 * hours), NOW + dt.timedelta(hours=hours))
    assert store.write_calls == 2  # the memory, and one touch after 72 h
    [memory] = store.items.values()
    assert memory.observed_at == "2026-11-24T10:00:00.000Z"
    assert memory.expires_at == int((NOW + dt.timedelta(hours=72, days=14)).timestamp())
    assert pagerduty.events == []
