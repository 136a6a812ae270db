"""Storms: a flood of new findings pages once per group and window, not once per finding.

Each new problem (a new episode about to page or notify) is counted per group (fields chosen per environment, e.g.
product + account + control id) and time window. The first `threshold` of a group page as usual; the next opens one
storm incident for the group, with the count and a sample of resources, and pages the router's meta-alert once;
later ones are folded into the storm incident (its count is refreshed at 2x, 4x, 8x… the threshold, as a trigger on
the same dedup key, which PagerDuty appends to the open alert without notifying again). Every finding still gets its
own dedup state, so it deduplicates and resolves as usual; a storm incident is resolved by the operator.

The count is shared by all invocations (an atomic, idempotent ADD in DynamoDB). Each execution environment holds a
group's first few new problems in memory and writes them together (`BufferedStormCounter`), so the usual trickle of
new findings costs no counter write; a storm is only declared from the shared count, and at most 2x `threshold`
problems page individually before it opens while no more environments than the reserved concurrency take part
(at most 5 more for each one Lambda adds late).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from findings_router.config import GroupField
from findings_router.dedup import KEY_PREFIX, STORM_PREFIX
from findings_router.model import Finding

META_STORM_PREFIX = f"{KEY_PREFIX}meta-storm-"
MAX_SAMPLE_BYTES = 200
MAX_HELD = 5  # new problems of a group one container may page before it writes them to the shared count
Verdict = Literal["normal", "open", "grouped"]


def group_values(finding: Finding, fields: Sequence[GroupField]) -> tuple[str, ...]:
    values = []
    for name in fields:
        if name == "product":
            values.append(finding.product_name)
        elif name == "finding_type":
            values.append(finding.types[0] if finding.types else "-")
        elif name == "resource_type":
            values.append(finding.resources[0].type if finding.resources else "-")
        else:
            values.append(str(getattr(finding, name) or "-"))
    return tuple(values)


def group_label(fields: Sequence[str], values: Sequence[str]) -> str:
    return ", ".join(f"{f}={v}" for f, v in zip(fields, values, strict=True))


def window_start(now: dt.datetime, minutes: int) -> int:
    seconds = minutes * 60
    return int(now.timestamp()) // seconds * seconds


def storm_key(values: Sequence[str], window: int) -> str:
    basis = "\n".join((*values, str(window)))
    return STORM_PREFIX + hashlib.sha256(basis.encode()).hexdigest()[:36]


def meta_storm_key(environment: str) -> str:
    return META_STORM_PREFIX + hashlib.sha256(environment.encode()).hexdigest()[:16]


def verdict(count: int, threshold: int, opened: bool = False) -> Verdict:
    """`opened`: a storm incident for the group was delivered. Until then every new problem past the threshold
    (re)opens it, so a delivery that failed (PagerDuty down mid-storm) is retried, not lost; PagerDuty's dedup_key
    folds the repeats into one incident."""
    if count <= threshold:
        return "normal"
    return "grouped" if opened else "open"


def is_report_point(count: int, threshold: int) -> bool:
    """Refresh the storm incident's count at 2x, 4x, 8x… the threshold: a handful of events, however big."""
    if count < 2 * threshold or count % threshold:
        return False
    multiple = count // threshold
    return multiple & (multiple - 1) == 0


class StormCounter(Protocol):
    def mark_opened(self, key: str) -> None:
        """The storm incident for `key` was delivered: later problems of the group are folded into it."""
        ...

    def increment(
        self, key: str, member: str, sample: str, threshold: int, sample_size: int, expires_at: int
    ) -> tuple[int, tuple[str, ...], bool]:
        """Count new problem `member` (a dedup key) for storm `key`; return the count, the resources sampled and
        whether the storm incident was already delivered.

        Counting is idempotent per member up to `threshold + 1` (a retried message does not count twice, so a
        PagerDuty outage cannot fake a storm, and the invocation that opens a storm opens it again on retry);
        beyond that the count only feeds the number shown on the storm incident."""
        ...


class SharedStormCounter(StormCounter, Protocol):
    def add(
        self,
        key: str,
        entries: Sequence[tuple[str, str]],
        threshold: int,
        sample_size: int,
        expires_at: int,
        *,
        past_threshold: bool = False,
    ) -> tuple[int, tuple[str, ...], bool]:
        """`increment` for several (member, sample) pairs at once: one shared write. `past_threshold`: the count
        is known to be past the threshold, so the member set is full and only the displayed count grows."""
        ...


def _entry(member: str, sample: str) -> str:
    # The member string carries the sampled resource, so the member set is also the sample. Resource ids are
    # cut to 200 UTF-8 bytes so that threshold (≤ 500) + one flush (≤ MAX_HELD + 1) entries always fit one DynamoDB
    # item (400 KB): 506 x ~250 bytes.
    cut = sample.encode()[:MAX_SAMPLE_BYTES].decode(errors="ignore")
    return f"{member}|{cut}"


class _CountsOneByAdding:
    """`increment` as an `add` of one entry."""

    def increment(
        self: SharedStormCounter, key: str, member: str, sample: str, threshold: int, sample_size: int, expires_at: int
    ) -> tuple[int, tuple[str, ...], bool]:
        return self.add(key, [(member, sample)], threshold, sample_size, expires_at)


class InMemoryStormCounter(_CountsOneByAdding):
    def __init__(self) -> None:
        self.members: dict[str, set[str]] = {}
        self.extra: dict[str, int] = {}
        self.samples: dict[str, list[str]] = {}
        self.opened: set[str] = set()
        self.writes = 0

    def mark_opened(self, key: str) -> None:
        self.opened.add(key)

    def add(
        self,
        key: str,
        entries: Sequence[tuple[str, str]],
        threshold: int,
        sample_size: int,
        expires_at: int,
        *,
        past_threshold: bool = False,
    ) -> tuple[int, tuple[str, ...], bool]:
        self.writes += 1
        members = self.members.setdefault(key, set())
        if not past_threshold and (len(members) <= threshold or (len(entries) == 1 and entries[0][0] in members)):
            members.update(m for m, _ in entries)
        else:
            self.extra[key] = self.extra.get(key, 0) + len(entries)
        count = len(members) + self.extra.get(key, 0)
        samples = self.samples.setdefault(key, [])
        for _, sample in entries:
            if len(samples) < sample_size and sample not in samples:
                samples.append(sample)
        return count, tuple(samples), key in self.opened


class DynamoStormCounter(_CountsOneByAdding):
    """Counter items in the state table: `pk` = `<storm key>#count`, expiring a day after their window."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def mark_opened(self, key: str) -> None:
        self.client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"{key}#count"}},
            UpdateExpression="SET opened = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def add(
        self,
        key: str,
        entries: Sequence[tuple[str, str]],
        threshold: int,
        sample_size: int,
        expires_at: int,
        *,
        past_threshold: bool = False,
    ) -> tuple[int, tuple[str, ...], bool]:
        pk = {"pk": {"S": f"{key}#count"}}
        values = sorted({_entry(m, s) for m, s in entries})
        # The member set grows until the storm is open (threshold + at most one batch of entries), so a retried
        # member is counted once; past that only the displayed count grows.
        condition = "attribute_not_exists(#members) OR size(#members) <= :t"
        names = {"#members": "members"}
        attribute_values: dict[str, Any] = {
            ":m": {"SS": values},
            ":t": {"N": str(threshold)},
            ":exp": {"N": str(expires_at)},
        }
        if len(values) == 1:  # a single retried member (e.g. the storm's opener) is not counted twice either
            condition += " OR contains(#members, :k)"
            attribute_values[":k"] = {"S": values[0]}
        response = None
        if not past_threshold:
            with contextlib.suppress(self.client.exceptions.ConditionalCheckFailedException):  # the set is full
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=pk,
                    UpdateExpression="ADD #members :m SET expires_at = if_not_exists(expires_at, :exp)",
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=attribute_values,
                    ReturnValues="ALL_NEW",
                )
        if response is None:
            # Past the threshold: only the displayed count grows (the member set stays small).
            response = self.client.update_item(
                TableName=self.table_name,
                Key=pk,
                UpdateExpression="ADD extra :n",
                ExpressionAttributeValues={":n": {"N": str(len(values))}},
                ReturnValues="ALL_NEW",
            )
        attributes = response["Attributes"]
        opened = bool(attributes.get("opened", {}).get("BOOL", False))
        members = sorted(attributes.get("members", {}).get("SS", []))
        count = len(members) + int(attributes.get("extra", {}).get("N", "0"))
        samples = list(dict.fromkeys(m.split("|", 1)[-1] for m in members))
        return count, tuple(samples[:sample_size]), opened


def flush_size(threshold: int, concurrency: int) -> int:
    """How many new problems of a group one execution environment holds before it writes them to the shared
    counter: 1 + threshold // concurrency, at most 1 + MAX_HELD. Every environment pages at most that many less one
    before it learns the shared count, so a storm opens after at most threshold + that many per environment that
    takes part: 2x threshold when `concurrency` environments share a flood. Thresholds below the concurrency stay
    exact (a write per problem)."""
    return 1 + min(MAX_HELD, threshold // max(1, concurrency))


class BufferedStormCounter:
    """The execution environment's view of the shared counter: new problems of a group are held in memory and
    written together, so the usual handful of new findings costs no counter write at all.

    Storms are only ever declared from the shared counter's exact answer: as soon as this environment's
    estimate (the shared count it last saw + what it holds) passes the threshold, every new problem is written at
    once, exactly as without the buffer, until the storm incident is delivered; from then on problems are folded
    into it and held again (they only change the count it shows). What is held is lost with the environment (or
    with a failed write: the messages that fail are retried and count again); it is only missing from a storm's
    count. An environment that joins a flood late pages at most `flush_size - 1` problems before its first write
    tells it the storm is open. Lives as long as the environment (one per Lambda container), forgets groups whose
    window is over."""

    def __init__(self, shared: SharedStormCounter, concurrency: int) -> None:
        self.shared = shared
        self.concurrency = concurrency
        self._held: dict[str, dict[str, str]] = {}  # storm key → member → sample, not written yet
        self._seen: dict[str, tuple[int, tuple[str, ...], bool]] = {}  # storm key → the shared counter's last answer
        self._expires: dict[str, int] = {}

    def mark_opened(self, key: str) -> None:
        self.shared.mark_opened(key)
        count, samples, _ = self._seen.get(key, (0, (), False))
        self._seen[key] = (count, samples, True)

    def increment(
        self, key: str, member: str, sample: str, threshold: int, sample_size: int, expires_at: int
    ) -> tuple[int, tuple[str, ...], bool]:
        self._forget_windows_before(expires_at)
        self._expires[key] = expires_at
        held = self._held.setdefault(key, {})
        held.setdefault(member, sample)
        seen, seen_samples, opened = self._seen.get(key, (0, (), False))
        estimate = seen + len(held)
        # Until the storm incident is known to be delivered, a count past the threshold must come from the shared
        # counter (it opens the storm); once it is open, problems only add to its displayed count and are held too.
        if (estimate > threshold and not opened) or len(held) >= flush_size(threshold, self.concurrency):
            entries = list(held.items())
            held.clear()  # even if the write fails: never an ever-growing batch that keeps failing
            answer = self.shared.add(key, entries, threshold, sample_size, expires_at, past_threshold=seen > threshold)
            self._seen[key] = answer
            return answer
        samples = tuple(dict.fromkeys((*seen_samples, *held.values())))[:sample_size]
        return estimate, samples, opened

    def held(self) -> int:
        """New problems counted here but not yet written (for tests and logs)."""
        return sum(len(v) for v in self._held.values())

    def _forget_windows_before(self, expires_at: int) -> None:
        for key in [k for k, e in self._expires.items() if e < expires_at]:
            self._held.pop(key, None)
            self._seen.pop(key, None)
            del self._expires[key]
