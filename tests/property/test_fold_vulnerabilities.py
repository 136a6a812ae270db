"""Properties of folded vulnerability episodes (dedup.fold_vulnerabilities: cve_account), over any interleaving.

Findings of one CVE in one account share one key. Hypothesis delivers their copies in any order, redelivers copies
already delivered (SQS at-least-once, retries, redrives) and delivers older active copies after newer resolutions;
a model of what Security Hub reports says which findings are active. What the on-call engineer sees must follow:
the episode is open exactly while some finding is active, PagerDuty holds an open alert exactly then, every episode
paged once and resolved once.

Not generated: a resolution delivered after a *newer active* copy of the same finding (the finding archived and
re-activated, its copies crossing). The state keeps no per-finding time for active findings (docs/dedup.md, "Folding
vulnerabilities"): such a resolution is applied, and the finding's next copy reopens the episode.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from findings_router.adapters.memory import InMemoryDedupStore
from findings_router.domain.keys import base_key
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.service.route import FindingsRouter
from findings_router.settings.load import load_policy
from tests.builders import CONFIG_DIR, NOW, inspector
from tests.unit.test_order import PagerDutyModel

START = dt.datetime(2026, 11, 21, 8, 0, tzinfo=dt.UTC)


@functools.cache
def _prod() -> CompiledPolicy:
    policy = load_policy(CONFIG_DIR / "prod.yaml")
    assert policy.dedup.fold_vulnerabilities == "cve_account"
    return CompiledPolicy(policy)


def _router(store: InMemoryDedupStore, pagerduty: PagerDutyModel) -> FindingsRouter:
    """A fresh invocation (its own cache) over the shared table and PagerDuty."""
    return FindingsRouter(_prod(), store, pagerduty)


def _copy(image: int, minute: int, *, resolved: bool = False, severity: str = "HIGH") -> dict[str, Any]:
    at = (START + dt.timedelta(minutes=minute)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raw = inspector(image=f"svc-{image}", updated=at, severity=severity, cvss=8.0 if severity == "HIGH" else 9.8)
    if resolved:
        raw["RecordState"] = "ARCHIVED"
    return raw


@st.composite
def flood_then_fix(draw: Any) -> tuple[int, list[tuple[int, bool, int]]]:
    """A CVE found on n images (active copies in any order, some sent twice), then fixed on all of them (the
    archived copies in any order, some sent twice, late active copies mixed in)."""
    n = draw(st.integers(min_value=1, max_value=6))
    actives = [(i, False, 0) for i in range(n)]
    actives += [(i, False, 0) for i in draw(st.lists(st.integers(0, n - 1), max_size=4))]
    fixes = [(i, True, 60) for i in range(n)]
    fixes += [(i, True, 60) for i in draw(st.lists(st.integers(0, n - 1), max_size=3))]
    lates = [(i, False, 0) for i in draw(st.lists(st.integers(0, n - 1), max_size=3))]
    return n, draw(st.permutations(actives)) + draw(st.permutations(fixes + lates))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flood_then_fix())
def test_a_flood_then_its_fix_pages_once_and_resolves_once_after_the_last_fix(case):
    n, deliveries = case
    store, pagerduty = InMemoryDedupStore(), PagerDutyModel()
    last_fix = max(k for k, (_, resolved, _) in enumerate(deliveries) if resolved)
    resolves_at = []
    for k, (image, resolved, minute) in enumerate(deliveries):
        before = len(pagerduty.events)
        _router(store, pagerduty).route(normalize_asff(_copy(image, minute, resolved=resolved)), NOW)
        if any(e["event_action"] == "resolve" for e in pagerduty.events[before:]):
            resolves_at.append(k)
    assert len(pagerduty.triggers) == 1
    # The resolve goes out when the last image is fixed: after the last first fix of every image.
    first_fixes = {}
    for k, (image, resolved, _) in enumerate(deliveries):
        if resolved:
            first_fixes.setdefault(image, k)
    assert resolves_at == [max(first_fixes.values())]
    assert resolves_at[0] <= last_fix
    assert pagerduty.open == set()
    [state] = store.items.values()
    assert state.status == "resolved" and state.members == ()
    assert state.affected_count == n


@dataclass
class Member:
    """What Security Hub reported of one finding: its copies (time, archived, severity), in the order sent."""

    copies: list[tuple[int, bool, str]] = field(default_factory=list)
    delivered: set[int] = field(default_factory=set)  # indexes of copies delivered at least once

    @property
    def newest(self) -> tuple[int, bool, str] | None:
        seen = [self.copies[i] for i in self.delivered]
        return max(seen, key=lambda c: c[0]) if seen else None

    @property
    def active(self) -> bool:
        newest = self.newest
        return newest is not None and not newest[1]


class FoldedEpisodes(RuleBasedStateMachine):
    """Findings of one CVE appear, change, are fixed, come back, and their copies are redelivered out of order."""

    @initialize()
    def start(self) -> None:
        self.store = InMemoryDedupStore()
        self.pagerduty = PagerDutyModel()
        self.members: list[Member] = []
        self.clock = 0
        self.episodes_seen: set[int] = set()

    def _deliver(self, index: int, copy: int) -> None:
        member = self.members[index]
        minute, resolved, severity = member.copies[copy]
        member.delivered.add(copy)
        raw = _copy(index, minute, resolved=resolved, severity=severity)
        _router(self.store, self.pagerduty).route(normalize_asff(raw), NOW + dt.timedelta(minutes=self.clock))
        for state in self.store.items.values():
            if state.episode:
                self.episodes_seen.add(state.episode)

    def _new_copy(self, index: int, resolved: bool, severity: str = "HIGH") -> None:
        self.clock += 1
        self.members[index].copies.append((self.clock, resolved, severity))
        self._deliver(index, len(self.members[index].copies) - 1)

    @precondition(lambda self: len(self.members) < 6)
    @rule()
    def a_new_image_is_found(self) -> None:
        self.members.append(Member())
        self._new_copy(len(self.members) - 1, resolved=False)

    @precondition(lambda self: self.members)
    @rule(data=st.data(), severity=st.sampled_from(["HIGH", "CRITICAL"]))
    def an_image_is_rescanned(self, data: st.DataObject, severity: str) -> None:
        index = data.draw(st.integers(0, len(self.members) - 1))
        if self.members[index].active:
            self._new_copy(index, resolved=False, severity=severity)

    @precondition(lambda self: self.members)
    @rule(data=st.data())
    def an_image_is_fixed(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.members) - 1))
        if self.members[index].active:
            self._new_copy(index, resolved=True)

    @precondition(lambda self: self.members)
    @rule(data=st.data())
    def a_fixed_image_is_vulnerable_again(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.members) - 1))
        if not self.members[index].active:
            self._new_copy(index, resolved=False)

    @precondition(lambda self: self.members)
    @rule(data=st.data())
    def a_copy_is_redelivered_late(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.members) - 1))
        member = self.members[index]
        newest = member.newest
        assert newest is not None
        choices = [
            i
            for i in sorted(member.delivered)
            # Not a resolution older than a newer active copy (the module docstring says why).
            if not (member.copies[i][1] and not newest[1] and member.copies[i][0] < newest[0])
        ]
        self._deliver(index, data.draw(st.sampled_from(choices)))

    @invariant()
    def the_episode_is_open_exactly_while_some_image_is_vulnerable(self) -> None:
        if not self.members:
            return
        [state] = self.store.items.values()
        assert state.is_open == any(m.active for m in self.members), (state, self.members)
        alerts = {base_key(k) for k in self.pagerduty.open}
        assert bool(alerts) == state.is_open
        if not state.is_open:
            assert state.pending == ()

    @invariant()
    def every_episode_paged_once(self) -> None:
        if not self.members:
            return
        [state] = self.store.items.values()
        key = state.key
        assert self.pagerduty.incidents.get(key, 0) == len(self.episodes_seen)
        resolves = [e for e in self.pagerduty.events if e["event_action"] == "resolve" and e["dedup_key"] == key]
        assert len(resolves) == len(self.episodes_seen) - (1 if state.is_open else 0)


FoldedEpisodes.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_folded_episodes = FoldedEpisodes.TestCase


@pytest.mark.parametrize("n", [1, 3])
def test_the_machine_runs_a_fixed_story(n):
    """The same checks on one readable story: found on n images, fixed everywhere, found again on one."""
    machine = FoldedEpisodes()
    machine.start()
    for _ in range(n):
        machine.a_new_image_is_found()
        machine.every_episode_paged_once()
    for i in range(n):
        machine.members[i].copies.append((machine.clock + 1, True, "HIGH"))
        machine.clock += 1
        machine._deliver(i, len(machine.members[i].copies) - 1)
        machine.the_episode_is_open_exactly_while_some_image_is_vulnerable()
    machine._new_copy(0, resolved=False)
    machine.the_episode_is_open_exactly_while_some_image_is_vulnerable()
    machine.every_episode_paged_once()
    assert machine.pagerduty.incidents == {next(iter(machine.store.items)): 2}
