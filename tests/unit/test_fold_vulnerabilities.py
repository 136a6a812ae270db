"""Folding vulnerability findings (dedup.fold_vulnerabilities): one episode per CVE and account (or resource), one
page, every affected resource recorded and listed, one resolve after the last finding resolves.

Each test interleaves findings of one CVE the way Inspector and SQS produce them (one finding per CVE x image, copies
in any order, crashes between the write-ahead and the confirmation) against an in-memory PagerDuty that counts
incidents, and checks what the on-call engineer sees.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.adapters.state_table import item_to_state, state_to_item
from findings_router.domain.episodes import MAX_AFFECTED, MAX_FOLDED_MEMBERS, decide
from findings_router.domain.keys import dedup_key, folded_resource, folded_vulnerability
from findings_router.domain.model import Finding
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.notifications import Notification
from findings_router.domain.policy import CompiledPolicy, PolicyDecision
from findings_router.service.route import FindingsRouter, Routed, TriggerInFlightError
from findings_router.settings.load import load_policy
from findings_router.settings.schema import Policy
from tests.builders import CONFIG_DIR, NOW, asff, event, inspector, load_fixture, updated
from tests.unit.test_order import REDELIVERED, Crash, CrashingStore, PagerDutyModel

OTHER_ACCOUNT = "111122224444"  # prod's second account


def _policy(mode: str = "cve_account", env: str = "prod", **update: Any) -> Policy:
    policy = load_policy(CONFIG_DIR / f"{env}.yaml")
    dedup = policy.dedup.model_copy(update={"fold_vulnerabilities": mode})
    return policy.model_copy(update={"dedup": dedup, **update})


class World:
    """One table, one PagerDuty, one Security Hub; each `route` is a fresh invocation (its own cache)."""

    def __init__(self, mode: str = "cve_account", env: str = "prod", **update: Any) -> None:
        self.policy = _policy(mode, env, **update)
        self.store = CrashingStore()
        self.pagerduty = PagerDutyModel()
        self.securityhub = RecordingSecurityHub()

    def router(self) -> FindingsRouter:
        return FindingsRouter(CompiledPolicy(self.policy), self.store, self.pagerduty, self.securityhub)

    def route(self, raw: dict[str, Any] | Finding, now: dt.datetime = NOW) -> Routed:
        finding = raw if isinstance(raw, Finding) else normalize_asff(raw)
        return self.router().route(finding, now)

    def outcomes(self, raws: list[dict[str, Any]], now: dt.datetime = NOW) -> list[str]:
        return [self.route(r, now).decision.outcome for r in raws]

    @property
    def triggers(self) -> list[dict[str, Any]]:
        return [e for e in self.pagerduty.events if e["event_action"] == "trigger"]

    @property
    def resolves(self) -> list[dict[str, Any]]:
        return [e for e in self.pagerduty.events if e["event_action"] == "resolve"]


def _archived(raw: dict[str, Any], minutes: float = 60) -> dict[str, Any]:
    return updated(raw, minutes, RecordState="ARCHIVED")


def _images(n: int, **kwargs: Any) -> list[dict[str, Any]]:
    return [inspector(image=f"svc-{i:03d}", **kwargs) for i in range(n)]


# ------------------------------------------------------------------------------------------ keys


def test_cve_account_folds_images_and_regions_of_one_account_but_not_accounts():
    here = normalize_asff(inspector(image="a"))
    there = normalize_asff(inspector(image="b", region="us-east-1"))
    other = normalize_asff(inspector(image="a", account=OTHER_ACCOUNT))
    assert dedup_key(here, True, "cve_account") == dedup_key(there, True, "cve_account")
    assert dedup_key(here, True, "cve_account") != dedup_key(other, True, "cve_account")
    assert dedup_key(here, True, "cve_account") != dedup_key(
        normalize_asff(inspector("CVE-2021-45046")), True, "cve_account"
    )


def test_cve_resource_folds_image_updates_of_one_repository_only():
    a1 = normalize_asff(inspector(image="a", digest="1" * 64))
    a2 = normalize_asff(inspector(image="a", digest="2" * 64))
    b = normalize_asff(inspector(image="b"))
    assert a1.id != a2.id
    assert folded_resource(a1) == "arn:aws:ecr:eu-central-1:111122223333:repository/a"
    assert dedup_key(a1, True, "cve_resource") == dedup_key(a2, True, "cve_resource")
    assert dedup_key(a1, True, "cve_resource") != dedup_key(b, True, "cve_resource")
    assert dedup_key(a1, True, "cve_resource") != dedup_key(a1, True, "cve_account")


def test_off_keys_every_finding_as_before():
    a, b = (normalize_asff(r) for r in _images(2))
    assert dedup_key(a, True, "off") == dedup_key(a) != dedup_key(b)
    assert folded_vulnerability(a, "off") is None


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        (inspector(), "CVE-2021-44228"),
        (inspector("cve-2026-0001"), "CVE-2026-0001"),  # one spelling
        (inspector("KB5023697"), "KB5023697"),  # Windows: the KB id is the vulnerability id
        # Another scanner's package-vulnerability finding: its type says so.
        (
            asff(
                product="trivy",
                Types=["Software and Configuration Checks/Vulnerabilities/CVE"],
                Vulnerabilities=[{"Id": "CVE-1"}],
            ),
            "CVE-1",
        ),
        # Inspector without the type (exported without Types): still Inspector's package finding.
        (dict(inspector(), Types=["Other"]), "CVE-2021-44228"),
        (asff(product="inspector", Vulnerabilities=[{"Id": "CWE-79"}]), None),  # code scanning: one place in code
        (asff(product="guardduty", Vulnerabilities=[{"Id": "CVE-1"}]), None),  # neither the type nor Inspector
        (asff(product="inspector"), None),  # no vulnerability id (network reachability)
    ],
)
def test_which_findings_fold(raw, folded):
    assert folded_vulnerability(normalize_asff(raw), "cve_account") == folded


def test_the_asff_and_ocsf_copies_of_one_finding_are_one_member():
    [o] = normalize_event(load_fixture("ocsf_inspector_vulnerability.json")).findings
    # The same Inspector finding through Security Hub CSPM (ASFF), later.
    a = inspector("CVE-2024-3094", account=o.account, region=o.region, severity="HIGH")
    a = dict(a, Id=o.id, UpdatedAt="2026-11-21T10:00:00.000Z")
    world = World(accounts=["*"])
    assert world.route(o).decision.outcome == "page"
    assert world.route(a).decision.outcome == "duplicate"
    [state] = world.store.items.values()
    assert state.members == (o.id,)
    assert state.affected == ("arn:aws:ec2:us-east-1:444455556666:instance/i-02c6e8a4f1b9d7350",)


# ------------------------------------------------------------------------------------------ one page per CVE and account


def test_a_flood_of_one_cve_in_two_accounts_pages_once_per_account():
    world = World()
    here = _images(30)
    there = _images(20, account=OTHER_ACCOUNT)
    flood = [x for pair in itertools.zip_longest(here, there) for x in pair if x is not None]
    outcomes = world.outcomes(flood)
    assert outcomes.count("page") == 2
    assert set(outcomes) == {"page", "duplicate"}
    assert len(world.triggers) == 2
    assert {t["payload"]["group"] for t in world.triggers} == {"111122223333", OTHER_ACCOUNT}
    states = {s.account: s for s in world.store.items.values()}
    assert len(states[OTHER_ACCOUNT].members) == 20 and states[OTHER_ACCOUNT].affected_count == 20
    assert len(states["111122223333"].members) == 30
    assert len(states["111122223333"].affected) == MAX_AFFECTED and states["111122223333"].affected_count == 30
    # Each joining finding cost one write; the first page two (write-ahead, confirm).
    assert world.store.write_calls == 2 * 2 + 29 + 19


def test_the_page_lists_the_resources_known_when_it_is_sent():
    world = World()
    first, second = _images(2)
    world.route(first)
    details = world.triggers[0]["payload"]["custom_details"]
    assert details["vulnerability"] == (
        "CVE-2021-44228: exploit available, fix available: YES, EPSS 0.94358; "
        "one episode per CVE and account, 1 finding open"
    )
    assert details["affected_resource_count"] == 1
    assert details["affected_resources"] == [normalize_asff(first).primary_resource_id]
    assert details["all_affected_resources"] == "findings-router cve CVE-2021-44228 --env prod"
    assert world.route(second).decision.outcome == "duplicate"  # recorded, nothing sent
    assert len(world.pagerduty.events) == 1


def test_a_critical_finding_joining_a_high_episode_escalates_listing_every_resource_known():
    world = World()
    highs = _images(12, severity="HIGH", cvss=8.0)
    world.outcomes(highs)
    critical = inspector(image="svc-critical", severity="CRITICAL")
    routed = world.route(critical)
    assert routed.decision.outcome == "page"
    assert "severity raised HIGH→CRITICAL" in routed.decision.reason
    first, escalation = world.triggers
    assert escalation["dedup_key"] == f"{first['dedup_key']}~4"
    assert escalation["payload"]["summary"].startswith("[prod] [ESCALATED HIGH→CRITICAL] CRITICAL")
    assert " and 12 more resources in 111122223333/eu-central-1" in escalation["payload"]["summary"]
    details = escalation["payload"]["custom_details"]
    assert details["affected_resource_count"] == 13
    assert details["affected_resources"][-1] == "and 3 more: findings-router cve CVE-2021-44228 --env prod"
    assert len(details["affected_resources"]) == 11
    # Another critical image: already escalated, nothing more.
    assert world.route(inspector(image="svc-critical-2")).decision.outcome == "duplicate"
    assert len(world.triggers) == 2


def test_a_finding_the_policy_drops_does_not_join():
    world = World()
    world.route(inspector(image="a"))
    low = inspector(image="b", severity="LOW", cvss=3.0, ExploitAvailable="NO")
    assert world.route(low).decision.outcome == "drop"
    [state] = world.store.items.values()
    assert len(state.members) == 1


# ------------------------------------------------------------------------------------------ resolution


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_members_resolving_in_any_order_resolve_once_after_the_last(order):
    world = World()
    images = _images(4)
    world.outcomes(images)
    outcomes = world.outcomes([_archived(images[i]) for i in order], NOW + dt.timedelta(hours=1))
    assert outcomes == ["duplicate", "duplicate", "duplicate", "resolve"]
    [trigger] = world.triggers
    [resolve] = world.resolves
    assert resolve["dedup_key"] == trigger["dedup_key"]
    assert world.pagerduty.open == set()
    [state] = world.store.items.values()
    assert (state.status, state.members, len(state.member_resolutions)) == ("resolved", (), 4)


def test_a_resolution_older_than_another_findings_copy_still_counts():
    # The key's newest finding time is another finding's: it says nothing about this one's order.
    world = World()
    early = inspector(image="a", updated="2026-11-21T09:00:00.000Z")
    late = inspector(image="b", updated="2026-11-21T11:00:00.000Z")
    world.outcomes([early, late])
    assert world.route(_archived(early, 30)).decision.outcome == "duplicate"  # 09:30, older than 11:00
    assert world.route(_archived(late, 30)).decision.outcome == "resolve"
    assert len(world.resolves) == 1


def test_a_late_active_copy_after_resolution_pages_nobody_and_joins_nothing():
    world = World()
    a, b = _images(2)
    world.outcomes([a, b])
    world.outcomes([_archived(a), _archived(b)], NOW + dt.timedelta(hours=1))
    assert world.route(a, REDELIVERED + dt.timedelta(hours=1)).decision.outcome == "duplicate"
    routed = world.route(b, REDELIVERED + dt.timedelta(hours=1))
    assert (routed.decision.outcome, routed.decision.reason) == (
        "duplicate",
        "not newer than its own resolution: already resolved",
    )
    assert len(world.triggers) == 1
    # While another episode is open, a late copy of a resolved finding does not join it either.
    c = inspector(image="c", updated="2026-11-21T12:00:00.000Z")
    assert world.route(c, NOW + dt.timedelta(hours=2)).decision.outcome == "page"
    world.route(a, NOW + dt.timedelta(hours=2))
    state = next(iter(world.store.items.values()))
    assert state.members == (normalize_asff(c).id,)


def test_a_resolution_arriving_before_its_active_copy_is_remembered():
    world = World()
    a, b = _images(2)
    assert world.route(_archived(a)).decision.outcome == "drop"  # nothing open: remembered
    assert world.route(a).decision.outcome == "duplicate"  # its older active copy, late
    assert world.route(b).decision.outcome == "page"  # another image: a real problem
    assert world.route(a).decision.outcome == "duplicate"
    assert world.route(_archived(b)).decision.outcome == "resolve"


def test_a_finding_active_again_after_its_resolution_opens_a_new_episode():
    world = World()
    a = inspector(image="a")
    world.route(a)
    world.route(_archived(a))
    again = updated(a, 120)
    assert world.route(again, NOW + dt.timedelta(hours=3)).decision.outcome == "page"
    state = next(iter(world.store.items.values()))
    assert (state.episode, state.status, state.member_resolutions) == (2, "open", ())
    assert len(world.triggers) == 2 and len(world.resolves) == 1


def test_a_redelivered_resolution_changes_nothing():
    world = World()
    a, b = _images(2)
    world.outcomes([a, b])
    archived = _archived(a)
    world.route(archived)
    writes = world.store.write_calls
    assert world.route(archived).decision.outcome == "duplicate"
    assert world.store.write_calls == writes
    assert world.resolves == []


def test_an_operator_resolve_is_agreed_only_when_the_last_finding_resolves():
    world = World()
    a, b = _images(2)
    world.outcomes([a, b])
    key, state = next(iter(world.store.items.items()))
    world.store.items[key] = type(state)(
        **{
            **{f: getattr(state, f) for f in state.__dataclass_fields__},
            "status": "resolved",
            "resolved_by": "operator",
        }
    )
    world.route(_archived(a))
    assert not world.store.items[key].securityhub_agrees
    world.route(_archived(b))
    assert world.store.items[key].securityhub_agrees
    assert world.resolves == []  # PagerDuty already resolved it


# ------------------------------------------------------------------------------------------ crashes


def test_a_crash_between_the_write_ahead_and_the_confirmation_pages_once_and_records_every_finding():
    world = World()
    a, b, c = _images(3)
    world.store.crash_when = lambda s: not s.pending and s.episode == 1  # dies after PagerDuty's 202
    with pytest.raises(Crash):
        world.route(a)
    assert len(world.triggers) == 1
    # Another image of the CVE while the page may still be in flight: tried again later, not lost.
    with pytest.raises(TriggerInFlightError):
        world.route(b, NOW + dt.timedelta(seconds=30))
    # Redelivered after the in-flight window: the recorded page is delivered again (PagerDuty folds it: one
    # incident), and the finding joins in the same write, so the page lists its resource too.
    routed = world.route(b, REDELIVERED)
    assert routed.decision.outcome == "page"
    assert "delivering the recorded page of episode 1" in routed.decision.reason
    assert world.pagerduty.incidents == {world.triggers[0]["dedup_key"]: 1}
    assert world.triggers[-1]["payload"]["custom_details"]["affected_resource_count"] == 2
    assert world.route(c, REDELIVERED).decision.outcome == "duplicate"
    [state] = world.store.items.values()
    assert (state.pending, len(state.members), state.affected_count) == ((), 3, 3)


def test_a_resolution_meanwhile_resolves_the_recorded_page():
    world = World()
    a = inspector(image="a")
    world.store.crash_when = lambda s: not s.pending and s.episode == 1
    with pytest.raises(Crash):
        world.route(a)
    assert world.route(_archived(a), REDELIVERED).decision.outcome == "resolve"
    assert world.pagerduty.open == set()


# ------------------------------------------------------------------------------------------ overflow


def test_past_the_member_cap_the_episode_resolves_with_its_tracked_findings_and_a_live_one_reopens_it():
    world = World()
    flood = _images(MAX_FOLDED_MEMBERS + 5)
    world.outcomes(flood)
    [state] = world.store.items.values()
    assert len(state.members) == MAX_FOLDED_MEMBERS
    assert state.affected_count == MAX_FOLDED_MEMBERS  # what is not tracked is not counted
    page = world.triggers[0]["payload"]["custom_details"]
    assert page["vulnerability"].endswith("one episode per CVE and account, 1 finding open")
    tracked, untracked = flood[:MAX_FOLDED_MEMBERS], flood[MAX_FOLDED_MEMBERS:]
    later = NOW + dt.timedelta(hours=1)
    outcomes = world.outcomes([_archived(r) for r in tracked], later)
    assert outcomes[-1] == "resolve" and outcomes.count("resolve") == 1
    # An untracked finding still active: its next copy is a new episode (its resource is still vulnerable).
    assert world.route(updated(untracked[0], 90), later).decision.outcome == "page"
    # One resolving while the cap was full is remembered (its late copy joins nothing).
    world2 = World()
    world2.outcomes(flood)
    world2.route(_archived(untracked[1]), later)
    assert world2.route(untracked[1], later).decision.outcome == "duplicate"


def test_a_full_item_stays_well_under_dynamodbs_item_limit():
    world = World()
    flood = _images(MAX_FOLDED_MEMBERS + 50)
    world.outcomes(flood)
    world.outcomes([_archived(r) for r in flood[:100]], NOW + dt.timedelta(hours=1))
    [state] = world.store.items.values()
    item = state_to_item(state)
    assert item_to_state(item) == state
    size = len(str(item).encode())
    assert size < 50 * 1024, size


# ------------------------------------------------------------------------------------------ off


def test_off_pages_every_image_as_before():
    world = World(mode="off")
    outcomes = world.outcomes(_images(3))
    assert outcomes == ["page", "page", "page"]
    for state in world.store.items.values():
        assert (state.member_resolutions, state.affected, state.affected_count) == ((), (), 0)
        assert "affected" not in state_to_item(state)
    assert "vulnerability" not in world.triggers[0]["payload"]["custom_details"]


def test_decide_without_folded_is_unchanged_for_a_vulnerability_key():
    raw = inspector()
    f = normalize_asff(raw)
    cfg = _policy().dedup
    page = PolicyDecision("page", "high", "rule r")
    plain = decide(f, page, None, "k", NOW, cfg)
    folded = decide(f, page, None, "k", NOW, cfg, folded=True)
    assert plain.new_state is not None and folded.new_state is not None
    assert (plain.new_state.affected, folded.new_state.affected) == ((), (f.primary_resource_id,))
    assert plain.notifications == folded.notifications == (Notification("trigger", "k", f.severity, "high"),)


def test_event_with_many_findings_of_one_cve_is_one_page():
    world = World()
    ev = event(*_images(5))
    results = [world.route(f).decision.outcome for f in normalize_event(ev).findings]
    assert results == ["page"] + ["duplicate"] * 4
