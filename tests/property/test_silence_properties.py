"""Properties of silences over any interleaving of copies of a finding, its resolutions, silences added and expired,
sweeps and the passing of time (a fake clock: nothing sleeps):

* nothing is triggered while an active silence matches the finding (a page recorded before the silence aside:
  there is none here);
* a resolution of an episode that sent something leaves nothing open at PagerDuty, silence or not;
* once every silence has ended and a sweep has run, a finding still active that the policy pages has exactly one
  open incident of its own key, and one that is resolved has none;
* what the time index lists is exactly the open episodes owing a page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from findings_router.domain.normalize import normalize_asff
from tests.builders import NOW, asff
from tests.unit.test_silenced_episodes import World

MINUTE = dt.timedelta(minutes=1)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("copy"), st.sampled_from(["HIGH", "CRITICAL", "LOW"])),
        st.tuples(st.just("resolve"), st.just("")),
        st.tuples(st.just("silence"), st.sampled_from(["all", "HIGH", "CRITICAL"])),
        st.tuples(st.just("expire"), st.just("")),
        st.tuples(st.just("sweep"), st.just("")),
        st.tuples(st.just("wait"), st.sampled_from(["5", "45", "130"])),
    ),
    max_size=20,
)


def _copy(raw: dict[str, Any], at: dt.datetime, **fields: Any) -> dict[str, Any]:
    return {**raw, "UpdatedAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), **fields}


@settings(max_examples=150, deadline=None)
@given(steps)
def test_silences_hold_pages_back_never_resolves_and_lose_nothing(plan: list[tuple[str, str]]) -> None:
    world = World()
    base = asff(severity="HIGH")
    now = NOW
    silences = 0
    active = True
    severity = "HIGH"
    key = None

    def holding(at: dt.datetime) -> bool:
        return any(
            s.is_active(at) and s.applies_to(normalize_asff(_copy(base, at, Severity={"Label": severity})))
            for s in world.silences.silences.values()
        )

    for op, arg in plan:
        sent_before = len(world.pagerduty.triggers)
        now += MINUTE
        if op == "copy":
            severity, active = arg, True
            routed = world.route(_copy(base, now, Severity={"Label": severity}), now)
            key = routed.decision.key
        elif op == "resolve":
            active = False
            routed = world.route(_copy(base, now, RecordState="ARCHIVED"), now)
            key = routed.decision.key
            assert world.pagerduty.open == set()  # every incident sent is resolved, silence or not
        elif op == "silence":
            silences += 1
            world.silence(f"s{silences}", start=now, hours=1, **({} if arg == "all" else {"severity": arg}))
        elif op == "expire":
            live = [s for s in world.silences.silences.values() if s.state(now) != "expired"]
            if live:
                world.expire(live[-1].id, now)
        elif op == "sweep":
            world.sweep(now)
        else:
            now += dt.timedelta(minutes=int(arg))
        if len(world.pagerduty.triggers) > sent_before:
            assert not holding(now), f"{op} triggered while a silence held the finding"
        owing = sorted(k for k, s in world.table.items.items() if s.owes)
        assert sorted(e.key for e in _owed(world)) == owing

    # Every silence over, one sweep: nothing held back is lost, nothing resolved stays open.
    now += dt.timedelta(hours=3)
    world.sweep(now)
    if key is None:
        return
    state = world.table.items.get(key)
    pages = active and severity in ("HIGH", "CRITICAL")
    if pages and state is not None and state.is_open and state.resolved_by is None:
        assert key in world.pagerduty.open or any(k.startswith(key) for k in world.pagerduty.open)
    if not active:
        assert world.pagerduty.open == set()
    assert _owed(world) == []


def _owed(world: World) -> list[Any]:
    from findings_router.adapters.memory import InMemoryOwedIndex

    return InMemoryOwedIndex(world.table).owed()
