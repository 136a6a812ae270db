"""Storms on a fake timeline: 10,000 new findings in 5 minutes page a handful of times, nothing is lost."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from findings_router.adapters.memory import InMemoryDedupStore, InMemoryStormCounter
from findings_router.adapters.storm_counter import BufferedStormCounter, DynamoStormCounter
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.domain.storm import flush_size, is_report_point, verdict
from findings_router.notify import DeliveryError
from findings_router.notify.recording import RecordingNotifier
from findings_router.notify.retry import TokenBucket
from findings_router.service.route import FindingsRouter
from findings_router.settings.load import load_policy
from infra.contract import state_table_definition
from tests.builders import CONFIG_DIR, NOW, control


def flood(n: int, resources: int, controls: int, start: dt.datetime, seconds: float):
    """`n` FAILED control findings over `seconds`, across `resources` buckets and `controls` controls."""
    out = []
    for i in range(n):
        ctl = f"S3.{(i // resources) % controls + 1}"
        raw = control(
            ctl,
            severity="HIGH",
            resource=f"arn:aws:s3:::iot-bucket-{i % resources:04d}",
            id=f"arn:aws:securityhub:eu-central-1:111122223333:security-control/{ctl}/finding/{i:06d}",
        )
        out.append((start + dt.timedelta(seconds=seconds * i / n), normalize_asff(raw)))
    return out


@pytest.fixture(params=["exact", "buffered"])
def prod(request):
    """The prod policy with the exact shared counter, and with the Lambda's per-container buffer in front of it
    (one container sees every problem, so both must page identically)."""
    storms = InMemoryStormCounter() if request.param == "exact" else BufferedStormCounter(InMemoryStormCounter(), 2)
    store, notifier = InMemoryDedupStore(), RecordingNotifier()
    router = FindingsRouter(CompiledPolicy(load_policy(CONFIG_DIR / "prod.yaml")), store, notifier, storms=storms)
    return router, store, notifier


def test_ten_thousand_new_findings_in_five_minutes_page_a_handful_of_times(prod):
    router, store, notifier = prod
    outcomes = Counter()
    for at, finding in flood(10_000, 500, 20, NOW, 300):
        outcomes[router.route(finding, at).decision.outcome] += 1
    triggers = [e for e in notifier.events if e["event_action"] == "trigger"]
    incidents = {e["dedup_key"] for e in triggers}
    # 10 individual pages, one storm incident for (Security Hub, 111122223333), one meta-alert.
    assert len(incidents) == 12
    assert outcomes["page"] == 11 and outcomes["duplicate"] == 10_000 - 11
    storm = [e for e in triggers if e["payload"]["class"] == "storm"]
    assert storm[0]["payload"]["custom_details"]["new_problems_in_window"] == 11
    assert len(storm[0]["payload"]["custom_details"]["sample_resources"]) == 10
    assert storm[-1]["payload"]["custom_details"]["new_problems_in_window"] >= 5_000  # refreshed as it grows
    assert len(storm) <= 12  # refreshed at 2x, 4x, 8x… the threshold only
    assert next(e for e in triggers if e["payload"]["class"] == "meta-alert")["payload"]["severity"] == "critical"
    # Nothing lost: every distinct problem has its own dedup state and will dedup and resolve on its own.
    assert len(store.items) == 10_000
    # Re-sent during the storm: plain duplicates, no new PagerDuty event.
    sent = len(notifier.events)
    for at, finding in flood(200, 500, 20, NOW + dt.timedelta(minutes=1), 60):
        assert router.route(finding, at).decision.outcome == "duplicate"
    assert len(notifier.events) == sent


def test_a_new_window_starts_a_new_count(prod):
    router, _, _ = prod
    for at, finding in flood(11, 11, 1, NOW, 10):
        router.route(finding, at)  # the 11th opens a storm in this window
    # Fresh problems ten minutes later: below the threshold of their own window, they page individually.
    later = NOW + dt.timedelta(minutes=10)
    fresh = [normalize_asff(control("S3.9", severity="HIGH", resource=f"arn:aws:s3:::later-{i}")) for i in range(5)]
    assert [router.route(f, later).decision.outcome for f in fresh] == ["page"] * 5


def test_a_grouped_finding_resolving_does_not_resolve_the_storm(prod):
    router, _, notifier = prod
    findings = flood(15, 15, 1, NOW, 10)
    for at, finding in findings:
        router.route(finding, at)
    last_at, last = findings[-1]
    archived = normalize_asff(dict(last.raw, RecordState="ARCHIVED"))
    assert router.route(archived, last_at).decision.outcome == "resolve"
    resolves = [e for e in notifier.events if e["event_action"] == "resolve"]
    assert resolves == []  # its only incident is the shared storm incident


def test_storm_grouping_can_be_switched_off():
    from findings_router.settings.load import parse_policy

    text = (CONFIG_DIR / "prod.yaml").read_text() + "\nstorm:\n  enabled: false\n"
    store, notifier = InMemoryDedupStore(), RecordingNotifier()
    router = FindingsRouter(CompiledPolicy(parse_policy(text)), store, notifier, storms=InMemoryStormCounter())
    outcomes = [router.route(f, at).decision.outcome for at, f in flood(30, 30, 1, NOW, 10)]
    assert outcomes == ["page"] * 30


def test_verdicts_and_report_points():
    assert [verdict(c, 10) for c in (1, 10, 11, 12, 500)] == ["normal", "normal", "open", "open", "open"]
    assert [verdict(c, 10, opened=True) for c in (10, 11, 500)] == ["normal", "grouped", "grouped"]
    assert [c for c in range(1, 200) if is_report_point(c, 10)] == [20, 40, 80, 160]


def test_in_memory_counter_counts_a_retried_member_once():
    counter = InMemoryStormCounter()
    assert counter.increment("s", "k1", "r1", 2, 5, 0)[0] == 1
    assert counter.increment("s", "k1", "r1", 2, 5, 0)[0] == 1  # the same problem again (a retried message)
    assert [counter.increment("s", f"k{i}", f"r{i}", 2, 5, 0)[0] for i in (2, 3)] == [2, 3]
    assert counter.increment("s", "k3", "r3", 2, 5, 0)[0] == 3  # the opener, retried: opens again (PagerDuty dedups)


@pytest.fixture
def storm_table():
    """A state table in moto (in process), named `t`; yields its client."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        client.create_table(**state_table_definition("t"))
        yield client


def test_dynamodb_counter_is_idempotent_per_problem_and_bounded(storm_table):
    client = storm_table
    counter = DynamoStormCounter("t", client)
    counts = [counter.increment("fr1-storm-x", f"k{i}", f"r{i}", 3, 2, 99)[0] for i in range(6)]
    assert counts == [1, 2, 3, 4, 5, 6]
    assert counter.increment("fr1-storm-x", "k1", "r1", 3, 2, 99)[0] == 6  # a member again: not counted twice
    assert counter.increment("fr1-storm-x", "k9", "r9", 3, 2, 99)[0] == 7  # past the threshold: display count only
    assert counter.increment("fr1-storm-y", "k1", "r1", 3, 2, 99) == (1, ("r1",), False)
    counter.mark_opened("fr1-storm-y")
    assert counter.increment("fr1-storm-y", "k1", "r1", 3, 2, 99) == (1, ("r1",), True)
    item = client.get_item(TableName="t", Key={"pk": {"S": "fr1-storm-x#count"}})["Item"]
    assert len(item["members"]["SS"]) == 4  # the member set stops growing once the storm is open
    _, samples, _ = counter.increment("fr1-storm-x", "k0", "r0", 3, 2, 99)
    assert samples == ("r0", "r1")  # the first resources, from the member set itself


# ------------------------------------------------------------------------------------------ pacing


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def sleep(self, s):
        self.now += s


def test_pacing_keeps_every_minute_under_the_limit_without_dropping():
    t = FakeTime()
    bucket = TokenBucket(100, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(400):
        bucket.acquire(max_wait=60)
        stamps.append(t.now)
    for i, start in enumerate(stamps):
        in_window = sum(1 for s in stamps[i:] if s < start + 60)
        assert in_window <= 120  # PagerDuty: about 120 events per minute per routing key
    assert stamps[-1] >= (400 - 10) * 0.6 - 1  # spread out, not sent at once


def test_pacing_past_the_budget_fails_back_to_sqs_instead_of_dropping():
    t = FakeTime()
    bucket = TokenBucket(6, clock=t.clock, sleep=t.sleep)  # 1 token, then one every 10 s
    bucket.acquire(max_wait=0)
    with pytest.raises(DeliveryError) as info:
        bucket.acquire(max_wait=5)
    assert info.value.retryable and info.value.reason == "paced" and "paced" in str(info.value)


def test_a_storm_incident_that_failed_to_deliver_is_opened_again_not_lost():
    """PagerDuty is down at the very moment the storm opens: the next new problem opens it again."""
    store, storms, notifier = InMemoryDedupStore(), InMemoryStormCounter(), RecordingNotifier()
    router = FindingsRouter(CompiledPolicy(load_policy(CONFIG_DIR / "prod.yaml")), store, notifier, storms=storms)
    findings = flood(13, 13, 1, NOW, 10)
    for at, finding in findings[:10]:
        router.route(finding, at)
    notifier.fail_with = DeliveryError("PagerDuty 503", retryable=True, reason="unavailable")
    with pytest.raises(DeliveryError):
        router.route(findings[10][1], findings[10][0])  # would open the storm: fails, message goes back to SQS
    notifier.fail_with = None
    outcome = router.route(findings[11][1], findings[11][0]).decision
    assert outcome.outcome == "page" and "storm" in outcome.reason  # opened now
    assert router.route(findings[10][1], findings[10][0]).decision.outcome == "duplicate"  # the retry folds in
    assert router.route(findings[12][1], findings[12][0]).decision.outcome == "duplicate"
    storm_triggers = {e["dedup_key"] for e in notifier.events if e["payload"].get("class") == "storm"}
    assert len(storm_triggers) == 1


# ------------------------------------------------------------------------ the per-container buffer

PROD_CONCURRENCY = 2


def test_a_trickle_of_new_findings_writes_no_storm_counter():
    """Steady state: a handful of new problems per group and window cost no shared write at all."""
    shared = InMemoryStormCounter()
    buffered = BufferedStormCounter(shared, PROD_CONCURRENCY)
    assert flush_size(10, PROD_CONCURRENCY) == 6 and flush_size(500, PROD_CONCURRENCY) == 6
    answers = [buffered.increment("s", f"k{i}", f"r{i}", 10, 3, 99) for i in range(5)]
    assert [a[0] for a in answers] == [1, 2, 3, 4, 5] and shared.writes == 0 and buffered.held() == 5
    assert answers[-1][1] == ("r0", "r1", "r2")
    assert buffered.increment("s", "k5", "r5", 10, 3, 99)[0] == 6  # the sixth is written, with the five held
    assert shared.writes == 1 and buffered.held() == 0 and len(shared.members["s"]) == 6


def test_the_storm_opens_from_the_shared_count_then_folded_problems_are_held_again():
    shared = InMemoryStormCounter()
    buffered = BufferedStormCounter(shared, PROD_CONCURRENCY)
    for i in range(10):
        buffered.increment("s", f"k{i}", f"r{i}", 10, 3, 99)
    writes = shared.writes
    count, _, opened = buffered.increment("s", "k10", "r10", 10, 3, 99)
    assert (count, opened, shared.writes) == (11, False, writes + 1)  # verdict "open", from the shared counter
    count, _, opened = buffered.increment("s", "k11", "r11", 10, 3, 99)
    assert (count, opened, shared.writes) == (12, False, writes + 2)  # not delivered yet: opens again
    buffered.mark_opened("s")
    answers = [buffered.increment("s", f"k{i}", f"r{i}", 10, 3, 99) for i in range(12, 18)]
    assert [verdict(c, 10, o) for c, _, o in answers] == ["grouped"] * 6
    assert [c for c, _, _ in answers] == [13, 14, 15, 16, 17, 18]
    assert shared.writes == writes + 3  # six folded problems, one write (to the displayed count only)
    assert len(shared.members["s"]) == 11 and shared.extra["s"] == 7  # the member set stops at the threshold


def test_a_retried_message_is_held_once():
    shared = InMemoryStormCounter()
    buffered = BufferedStormCounter(shared, PROD_CONCURRENCY)
    assert [buffered.increment("s", "k1", "r1", 10, 3, 99)[0] for _ in range(3)] == [1, 1, 1]


def test_a_new_window_forgets_what_the_last_one_held():
    buffered = BufferedStormCounter(InMemoryStormCounter(), PROD_CONCURRENCY)
    for i in range(4):
        buffered.increment("old-window", f"k{i}", f"r{i}", 10, 3, expires_at=100)
    assert buffered.increment("new-window", "k9", "r9", 10, 3, expires_at=400)[0] == 1
    assert buffered.held() == 1


def test_thresholds_below_the_concurrency_stay_exact():
    shared = InMemoryStormCounter()
    buffered = BufferedStormCounter(shared, concurrency=5)
    assert flush_size(3, 5) == 1
    buffered.increment("s", "k1", "r1", 3, 3, 99)
    assert shared.writes == 1


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    threshold=st.integers(1, 40),
    concurrency=st.integers(1, 6),
    schedule=st.lists(st.integers(0, 7), min_size=1, max_size=200),
)
def test_many_containers_never_fake_a_storm_and_page_a_bounded_number(threshold, concurrency, schedule):
    """Any interleaving of new problems over up to 8 containers (more than the reserved concurrency when Lambda
    replaces containers within a window): no storm before `threshold` distinct problems; at most threshold +
    (flush size - 1) individual pages per container that took part, which is 2x threshold when no more than
    `concurrency` containers did; and a storm surely opens once more problems than that arrived."""
    shared = InMemoryStormCounter()
    containers = [BufferedStormCounter(shared, concurrency) for _ in range(8)]
    individual = opened_at = 0
    for n, which in enumerate(schedule, start=1):
        container = containers[which]
        count, _, opened = container.increment("s", f"k{n}", f"r{n}", threshold, 5, 99)
        kind = verdict(count, threshold, opened)
        if kind == "normal":
            individual += 1
            assert count <= n  # the count shown is never more than the problems that exist
        else:
            assert n > threshold  # never a storm that is not one
            if kind == "open":
                container.mark_opened("s")
                opened_at = opened_at or n
    used = len(set(schedule))
    bound = threshold + used * (flush_size(threshold, concurrency) - 1)
    assert individual <= bound
    if used <= concurrency:
        assert individual <= 2 * threshold
    if len(schedule) > bound:
        assert opened_at


def test_a_container_joining_late_pages_at_most_five_before_it_learns_of_the_storm():
    shared = InMemoryStormCounter()
    first = BufferedStormCounter(shared, concurrency=2)
    for i in range(600):
        count, _, opened = first.increment("s", f"k{i}", f"r{i}", 500, 3, 99)
        if verdict(count, 500, opened) == "open":
            first.mark_opened("s")
    late = BufferedStormCounter(shared, concurrency=2)
    kinds = []
    for i in range(10):
        count, _, opened = late.increment("s", f"late{i}", "r", 500, 3, 99)
        kinds.append(verdict(count, 500, opened))
    assert kinds == ["normal"] * 5 + ["grouped"] * 5  # flush size is capped at 6, whatever the threshold


def test_a_failed_counter_write_is_not_retried_with_an_ever_growing_batch():
    class Failing(InMemoryStormCounter):
        def add(self, *args, **kwargs):
            raise RuntimeError("DynamoDB said no")

    buffered = BufferedStormCounter(Failing(), concurrency=5)
    with pytest.raises(RuntimeError):
        buffered.increment("s", "k1", "r1", 1, 3, 99)  # threshold below the concurrency: written at once, failed
    assert buffered.held() == 0  # the message is retried by SQS and counts again then


def test_dynamodb_counter_writes_held_problems_in_one_request(storm_table):
    client = storm_table
    counter = DynamoStormCounter("t", client)
    assert counter.add("fr1-storm-x", [("k1", "r1"), ("k2", "r2"), ("k3", "r3")], 4, 2, 99) == (3, ("r1", "r2"), False)
    assert counter.add("fr1-storm-x", [("k3", "r3"), ("k4", "r4")], 4, 2, 99)[0] == 4  # k3 again: counted once
    assert counter.add("fr1-storm-x", [("k5", "r5"), ("k6", "r6")], 4, 2, 99)[0] == 6
    assert counter.add("fr1-storm-x", [("k7", "r7"), ("k8", "r8")], 4, 2, 99)[0] == 8  # open: the display count
    item = client.get_item(TableName="t", Key={"pk": {"S": "fr1-storm-x#count"}})["Item"]
    assert len(item["members"]["SS"]) == 6
    long_arn = "arn:aws:s3:::" + "b" * 1000
    wide_arn = "arn:aws:s3:::" + "🪣" * 1000  # 4 bytes a character in UTF-8
    counter.add("fr1-storm-y", [("k1", long_arn), ("k2", wide_arn)], 4, 2, 99)
    item = client.get_item(TableName="t", Key={"pk": {"S": "fr1-storm-y#count"}})["Item"]
    # 500 (the largest threshold) + one flush of 6 such entries always fit one item (400 KB)
    assert max(len(m.encode()) for m in item["members"]["SS"]) < 260
