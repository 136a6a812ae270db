"""Silences between the decision and the send: a silenced finding is tracked but not sent, resolves are never
silenced, and what a silence held back pages when it ends (the sweep, on a fake clock) if the finding is still
active and the policy still pages it, through the same write-ahead as any trigger.

Each test drives the real router and sweep over an in-memory table, an in-memory PagerDuty that counts incidents,
and the recording Security Hub; `now` is passed in: no test sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest

from findings_router.adapters.memory import (
    InMemoryDedupStore,
    InMemoryOwedIndex,
    InMemorySilenceStore,
    InMemoryStormCounter,
    RecordingSecurityHub,
)
from findings_router.adapters.silences import CachedSilences
from findings_router.adapters.state_table import item_to_state, state_to_item
from findings_router.domain.episodes import DedupState
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.domain.policy import CompiledPolicy
from findings_router.domain.silences import Silence, expire, match_from_pairs, new_silence
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.route import FindingsRouter, Routed
from findings_router.service.sweep import SweepResult, sweep
from findings_router.settings.load import load_policy
from findings_router.settings.schema import Policy
from tests.builders import CONFIG_DIR, NOW, asff, custom_action_event, updated

T = dt.timedelta


class Crash(Exception):
    """The Lambda container died here."""


class PagerDuty(RecordingNotifier):
    """Records events like the twin, and keeps PagerDuty's view: alerts open per dedup_key, incidents opened."""

    def __init__(self) -> None:
        super().__init__()
        self.open: set[str] = set()
        self.incidents: dict[str, int] = {}

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        result = super().send(notification, context)
        if notification.kind == "trigger" and notification.key not in self.open:
            self.open.add(notification.key)
            self.incidents[notification.key] = self.incidents.get(notification.key, 0) + 1
        elif notification.kind == "resolve":
            self.open.discard(notification.key)
        return result

    @property
    def triggers(self) -> list[str]:
        return [n.key for n, _ in self.sent if n.kind == "trigger"]


class Table(InMemoryDedupStore):
    """Stores items through the DynamoDB codec (what is written is what is read back), and dies on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_when: Callable[[DedupState], bool] | None = None

    def put(self, state: DedupState, expected_version: int | None) -> bool:
        if self.crash_when is not None and self.crash_when(state):
            self.crash_when = None
            raise Crash
        return super().put(item_to_state(state_to_item(state)), expected_version)


class World:
    def __init__(self, policy: Policy | None = None, **policy_changes: Any) -> None:
        policy = policy or load_policy(CONFIG_DIR / "prod.yaml")
        self.policy = policy.model_copy(update=policy_changes) if policy_changes else policy
        self.table = Table()
        self.pagerduty = PagerDuty()
        self.securityhub = RecordingSecurityHub()
        self.silences = InMemorySilenceStore()
        self.storms: InMemoryStormCounter | None = None

    def router(self) -> FindingsRouter:
        """A fresh invocation; silences read at every use (the cache delay has its own test)."""
        return FindingsRouter(
            CompiledPolicy(self.policy),
            self.table,
            self.pagerduty,
            self.securityhub,
            self.storms,
            silences=CachedSilences(self.silences, ttl_seconds=0),
        )

    def route(self, raw: dict[str, Any], now: dt.datetime) -> Routed:
        return self.router().route(normalize_asff(raw), now)

    def sweep(self, now: dt.datetime) -> SweepResult:
        return sweep(self.router(), InMemoryOwedIndex(self.table), now)

    def silence(self, silence_id: str = "s1", *, hours: float = 2, start: dt.datetime = NOW, **match: Any) -> Silence:
        pairs = [f"{k}={v}" for k, values in match.items() for v in (values if isinstance(values, list) else [values])]
        s = new_silence(
            silence_id=silence_id,
            environment=self.policy.environment,
            match=match_from_pairs(pairs) if pairs else None,
            all_findings=not pairs,
            now=start,
            created_by="alice",
            comment="INC-1: stop paging now",
            max_duration=T(days=7),
            duration=T(hours=hours),
            starts_at=start,
        )
        assert self.silences.add(s)
        return s

    def expire(self, silence_id: str, now: dt.datetime) -> None:
        current = self.silences.silences[silence_id]
        assert self.silences.replace(expire(current, now, "bob"), current.version)

    @property
    def state(self) -> DedupState:
        [state] = self.table.items.values()
        return state

    @property
    def owed(self) -> list[str]:
        return [e.key for e in InMemoryOwedIndex(self.table).owed()]


@pytest.fixture
def world() -> World:
    return World()


# ------------------------------------------------------------------------------------------ tracked, not sent


def test_a_silenced_finding_is_tracked_but_not_sent(world: World, caplog: pytest.LogCaptureFixture):
    world.silence()
    with caplog.at_level(logging.INFO, logger="findings_router"):
        routed = world.route(asff(severity="HIGH"), NOW + T(minutes=1))
    assert routed.decision.outcome == "drop" and routed.deliveries == 0
    assert routed.silenced is not None and routed.silenced.id == "s1"
    assert "silenced by s1 until 2026-11-21T14:00:00Z" in routed.decision.reason
    state = world.state
    assert state.is_open and state.episode == 1 and state.action == "page"
    assert state.incident_keys == () and state.silenced == (state.key,)  # owed, not sent
    assert (state.silenced_by, state.silenced_until) == ("s1", "2026-11-21T14:00:00Z")
    assert state.notify_count == 0 and state.pending == ()
    assert world.pagerduty.sent == [] and world.securityhub.updates == []  # no page, no NOTIFIED
    assert world.owed == [state.key]  # in the time index: the sweep finds it without a scan
    [applied] = [r for r in caplog.records if r.getMessage() == "silence applied"]
    assert applied.silence_id == "s1" and applied.owed == [state.key]  # type: ignore[attr-defined]
    # Its re-sends are duplicates that change nothing while the silence holds.
    routed = world.route(asff(id=state.finding_id, severity="HIGH"), NOW + T(minutes=5))
    assert routed.decision.outcome == "duplicate" and world.pagerduty.sent == []


def test_silences_never_block_resolves(world: World):
    raw = asff(severity="HIGH")
    assert world.route(raw, NOW).decision.outcome == "page"  # paged before the silence
    world.silence(start=NOW + T(minutes=1))
    routed = world.route(updated(raw, 10, RecordState="ARCHIVED"), NOW + T(minutes=10))
    assert routed.decision.outcome == "resolve" and routed.deliveries == 1
    assert world.pagerduty.open == set()  # the incident closed during the silence
    assert not world.state.is_open


def test_an_episode_that_never_paged_resolves_without_sending_anything(world: World):
    world.silence()
    raw = asff(severity="CRITICAL")
    world.route(raw, NOW + T(minutes=1))
    routed = world.route(updated(raw, 10, Compliance={"Status": "PASSED"}), NOW + T(minutes=10))
    assert routed.decision.outcome == "resolve" and routed.deliveries == 0
    assert "it never paged (held back by silence s1): nothing to resolve" in routed.decision.reason
    state = world.state
    assert not state.is_open and state.silenced == () and state.silenced_by is None and state.silenced_finding is None
    assert world.owed == [] and world.pagerduty.sent == []
    assert world.sweep(NOW + T(hours=3)).paged == []  # nothing pages after the silence either


# ------------------------------------------------------------------------------------------ after the silence


def test_what_a_silence_held_back_pages_when_it_ends(world: World, caplog: pytest.LogCaptureFixture):
    world.silence(hours=2)
    world.route(asff(severity="HIGH"), NOW + T(minutes=1))
    assert world.sweep(NOW + T(hours=1)).summary() == {
        "owed": 1, "due": 0, "paged": 0, "let_go": 0, "held": 0, "deferred": 0, "failed": 0,
    }  # fmt: skip
    with caplog.at_level(logging.INFO, logger="findings_router"):
        result = world.sweep(NOW + T(hours=2, minutes=5))  # the first sweep after its end
    assert result.paged == [world.state.key]
    assert world.pagerduty.triggers == [world.state.key] and world.pagerduty.incidents == {world.state.key: 1}
    state = world.state
    assert state.incident_keys == (state.key,) and state.silenced == () and state.silenced_by is None
    assert state.notify_count == 1 and state.pending == () and world.owed == []
    # Written back like any page (NOTIFIED, a note naming the incident).
    [update] = world.securityhub.updates
    assert update.workflow == "NOTIFIED" and state.key in update.note
    [sent] = [r for r in caplog.records if r.getMessage() == "page sent after a silence"]
    assert sent.silence_id == "s1"  # type: ignore[attr-defined]
    # Idempotent: the next sweeps, and the next copy, change nothing.
    assert world.sweep(NOW + T(hours=2, minutes=10)).owed == 0
    assert world.route(asff(id=state.finding_id, severity="HIGH"), NOW + T(hours=3)).decision.outcome == "duplicate"
    assert world.pagerduty.incidents == {state.key: 1}


def test_an_expired_silence_pages_at_the_next_sweep(world: World):
    world.silence(hours=4)
    world.route(asff(severity="HIGH"), NOW + T(minutes=1))
    world.expire("s1", NOW + T(minutes=30))
    result = world.sweep(NOW + T(minutes=31))  # long before its planned end
    assert result.due == 1 and result.paged == [world.state.key]


def test_the_findings_next_copy_after_the_silence_also_delivers_it(world: World):
    world.silence(hours=1)
    raw = asff(severity="HIGH")
    world.route(raw, NOW + T(minutes=1))
    routed = world.route(raw, NOW + T(hours=2))  # a re-send (not newer) after the end, before any sweep
    assert routed.decision.outcome == "page" and routed.deliveries == 1
    assert "silence s1 no longer holds it" in routed.decision.reason
    assert world.sweep(NOW + T(hours=2, minutes=5)).owed == 0


def test_a_page_the_current_policy_no_longer_wants_is_let_go(world: World):
    world.silence(hours=1)
    world.route(asff(severity="HIGH"), NOW + T(minutes=1))
    strict = world.policy.model_copy(update={"rules": world.policy.rules[:1]})  # HIGH no longer pages
    world.policy = strict
    result = world.sweep(NOW + T(hours=2))
    assert result.let_go == [world.state.key] and world.pagerduty.sent == []
    assert world.state.is_open and world.state.silenced == () and world.owed == []


def test_another_silence_holding_it_moves_the_wait(world: World):
    world.silence("short", hours=1)
    world.silence("long", hours=6, severity="HIGH")
    world.route(asff(severity="HIGH"), NOW + T(minutes=1))
    assert world.state.silenced_by == "long"  # the one ending last holds it
    world.expire("long", NOW + T(minutes=10))
    world.silence("maintenance", start=NOW + T(minutes=10), hours=3, severity="HIGH")
    result = world.sweep(NOW + T(minutes=15))
    assert result.held == [world.state.key] and world.pagerduty.sent == []
    assert (world.state.silenced_by, world.state.silenced_until) == ("maintenance", "2026-11-21T15:10:00Z")
    assert world.sweep(NOW + T(minutes=20)).due == 0  # waits for that one now
    assert world.sweep(NOW + T(hours=3, minutes=15)).paged == [world.state.key]


# ------------------------------------------------------------------------------------------ escalations


def test_an_escalation_during_the_silence_is_owed_and_sent_after(world: World):
    raw = asff(severity="HIGH")
    world.route(raw, NOW)
    key = world.state.key
    world.silence(start=NOW + T(minutes=1), hours=1)
    routed = world.route(updated(raw, 10, Severity={"Label": "CRITICAL"}), NOW + T(minutes=10))
    assert routed.decision.outcome == "drop" and routed.silenced is not None
    assert world.state.incident_keys == (key,) and world.state.silenced == (f"{key}~4",)
    assert world.pagerduty.triggers == [key]
    assert world.sweep(NOW + T(hours=2)).paged == [key]
    assert world.pagerduty.triggers == [key, f"{key}~4"]
    world.route(updated(raw, 200, RecordState="ARCHIVED"), NOW + T(hours=3))
    assert world.pagerduty.open == set()  # both incidents resolved


def test_a_rise_while_nothing_was_sent_pages_once_at_the_higher_severity(world: World):
    world.silence(hours=1)
    raw = asff(severity="HIGH")
    world.route(raw, NOW + T(minutes=1))
    world.route(updated(raw, 10, Severity={"Label": "CRITICAL"}), NOW + T(minutes=10))
    key = world.state.key
    assert world.state.silenced == (key,) and world.state.severity.value == "CRITICAL"
    world.sweep(NOW + T(hours=2))
    [(page, _)] = world.pagerduty.sent
    assert page.key == key and page.severity.value == "CRITICAL"


# ------------------------------------------------------------------------------------------ what a silence matches


def test_matchers_silence_only_what_they_match(world: World):
    world.silence(account="111122224444", hours=1)
    silenced = world.route(asff(severity="HIGH", account="111122224444"), NOW + T(minutes=1))
    paged = world.route(asff(severity="HIGH", account="111122223333"), NOW + T(minutes=1))
    assert silenced.decision.outcome == "drop" and silenced.silenced is not None
    assert paged.decision.outcome == "page" and paged.silenced is None and paged.deliveries == 1


def test_a_pending_silence_holds_nothing_yet_and_a_custom_action_is_never_silenced(world: World):
    world.silence(start=NOW + T(hours=1))
    assert world.route(asff(severity="HIGH"), NOW).decision.outcome == "page"
    world.silence("now", start=NOW, hours=3)
    event = custom_action_event(asff(severity="LOW"))
    [finding] = normalize_event(event).findings
    routed = world.router().route(finding, NOW + T(minutes=1))
    assert routed.decision.outcome == "page" and routed.deliveries == 1


def test_a_policy_drop_is_not_a_silence(world: World):
    world.silence()
    routed = world.route(asff(severity="LOW", Types=["Software and Configuration Checks"]), NOW + T(minutes=1))
    assert routed.decision.outcome == "drop" and routed.silenced is None and world.table.items == {}


# ------------------------------------------------------------------------------------------ write-ahead and faults


def test_a_page_recorded_before_the_silence_is_still_delivered(world: World):
    raw = asff(severity="HIGH")
    world.table.crash_when = lambda s: s.pending == ()  # dies after PagerDuty's 202, before the confirmation
    with pytest.raises(Crash):
        world.route(raw, NOW)
    world.silence(start=NOW + T(minutes=1))
    routed = world.route(raw, NOW + T(minutes=12))  # the message's retry: the trigger may have reached PagerDuty
    assert routed.decision.outcome == "page" and "delivering the recorded page" in routed.decision.reason
    assert world.pagerduty.incidents == {world.state.key: 1} and world.state.pending == ()


def test_a_crash_between_the_sweeps_send_and_confirm_pages_once(world: World):
    world.silence(hours=1)
    world.route(asff(severity="HIGH"), NOW + T(minutes=1))
    key = world.state.key
    world.table.crash_when = lambda s: s.pending == () and s.incident_keys == (key,)
    with pytest.raises(Crash):
        world.sweep(NOW + T(hours=1, minutes=1))
    assert world.state.pending == (key,) and world.owed == [key]  # recorded ahead, still the sweep's
    assert world.sweep(NOW + T(hours=1, minutes=2)).deferred == [key]  # within the in-flight window: left alone
    assert world.sweep(NOW + T(hours=1, minutes=6)).paged == [key]  # after it: sent again, PagerDuty folds it
    assert world.pagerduty.incidents == {key: 1} and world.owed == [] and world.state.silenced == ()


def test_a_failed_delivery_is_retried_by_the_next_sweep(world: World):
    world.silence(hours=1)
    world.route(asff(severity="HIGH"), NOW + T(minutes=1))
    key = world.state.key
    world.pagerduty.fail_with = DeliveryError("503", retryable=True, reason="unavailable", status=503)
    result = world.sweep(NOW + T(hours=1, minutes=1))
    assert result.failed == [key] and world.state.pending == (key,) and world.state.pending_since is None
    world.pagerduty.fail_with = None
    assert world.sweep(NOW + T(hours=1, minutes=6)).paged == [key]
    assert world.pagerduty.incidents == {key: 1}


def test_a_resolve_while_the_sweep_had_it_recorded_resolves_it(world: World):
    world.silence(hours=1)
    raw = asff(severity="HIGH")
    world.route(raw, NOW + T(minutes=1))
    key = world.state.key
    world.table.crash_when = lambda s: s.pending == () and s.incident_keys == (key,)
    with pytest.raises(Crash):
        world.sweep(NOW + T(hours=1, minutes=1))
    world.route(updated(raw, 90, RecordState="ARCHIVED"), NOW + T(hours=1, minutes=3))
    assert world.pagerduty.open == set() and not world.state.is_open and world.owed == []


# ------------------------------------------------------------------------------------------ storms


def test_silenced_findings_count_for_no_storm_but_the_sweep_groups_a_flood():
    world = World()
    world.policy = world.policy.model_copy(
        update={"storm": world.policy.storm.model_copy(update={"threshold": 2, "group_by": ["product"]})}
    )
    world.storms = InMemoryStormCounter()
    world.silence(hours=1)
    for i in range(6):
        world.route(asff(id=f"arn:aws:guardduty:eu-central-1:111122223333:detector/d/finding/{i}"), NOW + T(minutes=1))
    assert world.storms.writes == 0 and world.pagerduty.sent == []  # held back: nothing counted, nothing sent
    result = world.sweep(NOW + T(hours=1, minutes=1))
    assert len(result.paged) == 6  # every one delivered: two pages, then one storm incident for the rest
    incidents = list(world.pagerduty.incidents)
    storms = [k for k in incidents if k.startswith("fr1-storm-")]
    meta = [k for k in incidents if k.startswith("fr1-meta-storm-")]  # the router's own "in a storm" meta-alert
    assert len(storms) == 1 and len(meta) == 1 and len(incidents) - 2 == 2  # two pages, then the storm incident
    assert world.owed == []


def test_the_sweep_ignores_what_the_index_still_lists_but_the_table_no_longer_owes(world: World):
    world.silence(hours=1)
    raw = asff(severity="HIGH")
    world.route(raw, NOW + T(minutes=1))
    stale = InMemoryOwedIndex(world.table).owed()
    world.route(updated(raw, 5, RecordState="ARCHIVED"), NOW + T(minutes=5))

    class Lagging:
        def owed(self) -> list[Any]:
            return stale

    result = sweep(world.router(), Lagging(), NOW + T(hours=2))
    assert result.due == 1 and result.paged == [] and world.pagerduty.sent == []


def test_an_owing_item_round_trips_through_the_codec_and_its_index_keys():
    world = World()
    world.silence(hours=1)
    world.route(asff(severity="HIGH"), NOW + T(minutes=1))
    state = world.state
    item = state_to_item(state)
    assert item["index_pk"] == {"S": "owed"} and item["index_sk"] == {"S": state.silenced_until}
    assert item_to_state(item) == state
    delivered = dataclasses.replace(state, silenced=(), silenced_by=None, silenced_until=None, silenced_finding=None)
    assert "index_pk" not in state_to_item(delivered) and "silenced" not in state_to_item(delivered)


def test_a_page_let_go_is_owed_again_when_the_policy_pages_the_finding_again(world: World):
    world.silence(hours=1)
    raw = asff(severity="HIGH")
    world.route(raw, NOW + T(minutes=1))
    lowered = world.route(updated(raw, 70, Severity={"Label": "LOW"}), NOW + T(minutes=70))  # after the silence
    assert lowered.decision.outcome == "drop" and world.state.is_open and world.state.silenced == ()
    world.silence("again", start=NOW + T(minutes=75), hours=1)
    held = world.route(updated(raw, 80, Severity={"Label": "HIGH"}), NOW + T(minutes=80))
    assert held.silenced is not None and held.silenced.id == "again" and world.owed == [world.state.key]
    assert world.pagerduty.sent == []
    assert world.sweep(NOW + T(hours=3)).paged == [world.state.key]  # not lost
    routed = world.route(updated(raw, 300, Severity={"Label": "HIGH"}), NOW + T(hours=5))
    assert routed.decision.outcome == "duplicate" and world.pagerduty.incidents == {world.state.key: 1}
