"""The episode state machine: page once, escalate on rising severity, resolve once, reopen."""

from __future__ import annotations

import datetime as dt

import pytest

from findings_router.adapters.memory import InMemoryDedupStore
from findings_router.domain.keys import base_key, dedup_key
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.route import FindingsRouter, route_findings
from findings_router.settings.load import load_policy
from tests.builders import CONFIG_DIR, NOW, asff, control, updated


@pytest.fixture
def prod_router():
    store = InMemoryDedupStore()
    notifier = RecordingNotifier()
    router = FindingsRouter(CompiledPolicy(load_policy(CONFIG_DIR / "prod.yaml")), store, notifier)
    return router, store, notifier


def _route(router, raw, now=NOW):
    return route_findings(router, [normalize_asff(raw)], now)[0].decision


def test_same_finding_resent_50_times_pages_once(prod_router):
    router, store, notifier = prod_router
    raw = asff(severity="HIGH")
    outcomes = [_route(router, raw, NOW + dt.timedelta(minutes=i)).outcome for i in range(50)]
    assert outcomes[0] == "page"
    assert set(outcomes[1:]) == {"duplicate"}
    assert [e["event_action"] for e in notifier.events] == ["trigger"]
    # The page costs two writes (recorded ahead, then confirmed); repeats inside the touch interval cost none.
    assert store.write_calls == 2


def test_duplicates_refresh_the_item_once_per_touch_interval(prod_router):
    router, store, _ = prod_router
    raw = asff()
    _route(router, raw)
    first = next(iter(store.items.values()))
    assert store.write_calls == 2  # the page: recorded ahead, then confirmed
    _route(router, updated(raw, 60 * 71), NOW + dt.timedelta(hours=71))  # within the interval: no write
    assert store.write_calls == 2
    _route(router, updated(raw, 60 * 73), NOW + dt.timedelta(hours=73))
    touched = next(iter(store.items.values()))
    assert touched.expires_at > first.expires_at
    assert touched.seen_count == 2
    assert store.write_calls == 3


def test_rising_severity_pages_again_with_its_own_incident(prod_router):
    router, _, notifier = prod_router
    raw = asff(severity="HIGH")
    assert _route(router, raw).outcome == "page"
    raised = updated(raw, Severity={"Label": "CRITICAL"})
    decision = _route(router, raised)
    assert decision.outcome == "page"
    assert "HIGH→CRITICAL" in decision.reason
    assert len(notifier.events) == 2
    second = notifier.events[1]
    assert second["dedup_key"] != notifier.events[0]["dedup_key"]
    assert base_key(second["dedup_key"]) == notifier.events[0]["dedup_key"]
    assert second["payload"]["severity"] == "critical"
    assert "ESCALATED HIGH→CRITICAL" in second["payload"]["summary"]
    # Re-sent at the raised severity: nothing more.
    assert _route(router, raised).outcome == "duplicate"
    # Falling back is not news.
    assert _route(router, updated(raised, Severity={"Label": "HIGH"})).outcome == "duplicate"
    assert len(notifier.events) == 2


def test_archived_sends_one_resolve_for_every_incident_of_the_episode(prod_router):
    router, _, notifier = prod_router
    raw = asff(severity="HIGH")
    _route(router, raw)
    _route(router, updated(raw, Severity={"Label": "CRITICAL"}))
    archived = updated(raw, 2, RecordState="ARCHIVED")
    assert _route(router, archived).outcome == "resolve"
    assert _route(router, archived).outcome == "duplicate"
    resolves = [e for e in notifier.events if e["event_action"] == "resolve"]
    assert sorted(e["dedup_key"] for e in resolves) == sorted(e["dedup_key"] for e in notifier.events[:2])


def test_resolved_finding_that_fails_again_opens_a_new_episode(prod_router):
    router, store, notifier = prod_router
    failed = control("S3.8", "FAILED")
    assert _route(router, failed).outcome == "page"
    passed = updated(
        failed, Compliance={"Status": "PASSED", "SecurityControlId": "S3.8"}, Workflow={"Status": "RESOLVED"}
    )
    assert _route(router, passed).outcome == "resolve"
    assert _route(router, updated(failed, 60)).outcome == "page"
    state = next(iter(store.items.values()))
    assert state.episode == 2
    assert state.status == "open"
    assert [e["event_action"] for e in notifier.events] == ["trigger", "resolve", "trigger"]


def test_resolution_with_nothing_open_is_dropped(prod_router):
    router, _, notifier = prod_router
    decision = _route(router, asff(RecordState="ARCHIVED"))
    assert decision.outcome == "drop"
    assert "nothing was open" in decision.reason
    assert notifier.events == []


def test_workflow_suppressed_resolves(prod_router):
    router, _, notifier = prod_router
    raw = asff()
    _route(router, raw)
    assert _route(router, dict(raw, Workflow={"Status": "SUPPRESSED"})).outcome == "resolve"
    assert notifier.events[-1]["event_action"] == "resolve"


def test_legacy_control_findings_from_two_standards_are_one_problem(prod_router):
    router, _, notifier = prod_router
    fsbp = control("EC2.19", standard="aws-foundational-security-best-practices/v/1.0.0", severity="CRITICAL")
    cis = control("EC2.19", standard="cis-aws-foundations-benchmark/v/1.4.0", severity="CRITICAL")
    assert fsbp["Id"] != cis["Id"]
    results = route_findings(router, [normalize_asff(fsbp), normalize_asff(cis)], NOW)
    assert [r.decision.outcome for r in results] == ["page", "duplicate"]
    assert results[0].decision.key == results[1].decision.key
    # One standard's copy archived (consolidation switched on) while the other still fails: stays open.
    assert _route(router, dict(fsbp, RecordState="ARCHIVED")).outcome == "duplicate"
    assert (
        _route(router, dict(cis, Compliance={"Status": "PASSED", "SecurityControlId": "EC2.19"})).outcome == "resolve"
    )
    assert [e["event_action"] for e in notifier.events] == ["trigger", "resolve"]


def test_folding_can_be_switched_off():
    a = normalize_asff(control("EC2.19", standard="aws-foundational-security-best-practices/v/1.0.0"))
    b = normalize_asff(control("EC2.19", standard="cis-aws-foundations-benchmark/v/1.4.0"))
    assert dedup_key(a, True) == dedup_key(b, True)
    assert dedup_key(a, False) != dedup_key(b, False)


def test_keys_are_stable_and_short():
    raw = asff(id="arn:aws:guardduty:eu-central-1:111122223333:detector/d/finding/" + "x" * 400)
    key = dedup_key(normalize_asff(raw))
    assert key == dedup_key(normalize_asff(dict(raw, Severity={"Label": "LOW"}, UpdatedAt="2027-01-01T00:00:00Z")))
    assert len(key) < 64
    assert key.startswith("fr1-")


def test_notify_upgraded_to_page_pages(prod_router):
    router, _, notifier = prod_router
    raw = asff(severity="MEDIUM")  # prod: MEDIUM GuardDuty notifies
    assert _route(router, raw).outcome == "notify"
    assert notifier.events[0]["payload"]["severity"] == "warning"
    # Same severity, but a new CVSS score now makes the prod policy page it.
    raw2 = updated(raw, Vulnerabilities=[{"Id": "CVE-2026-0001", "Cvss": [{"BaseScore": 9.1}]}])
    decision = _route(router, raw2)
    assert decision.outcome == "page"
    assert notifier.events[-1]["payload"]["severity"] == "error"


def test_dropped_findings_write_nothing(prod_router):
    router, store, notifier = prod_router
    assert _route(router, asff(severity="LOW")).outcome == "drop"
    assert store.items == {}
    assert notifier.events == []


def test_expired_item_is_treated_as_absent(prod_router):
    router, _, notifier = prod_router
    raw = asff()
    _route(router, raw)
    later = NOW + dt.timedelta(days=31)  # prod ttl_days: 30, never touched in between
    assert _route(router, raw, later).outcome == "page"
    assert len(notifier.events) == 2


def test_custom_action_pages_even_when_policy_drops(prod_router):
    from findings_router.domain.normalize import normalize_event
    from tests.builders import custom_action_event

    router, _, notifier = prod_router
    [finding] = normalize_event(custom_action_event(asff(severity="LOW"))).findings
    [routed] = route_findings(router, [finding], NOW)
    assert routed.decision.outcome == "page"
    assert "custom action PageOnCallProd" in routed.decision.reason
    assert len(notifier.events) == 1
