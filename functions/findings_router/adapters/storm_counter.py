"""Storm counters: the shared count of new problems per group and window, in the state table."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from findings_router.domain.storm import MAX_SAMPLE_BYTES, flush_size

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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


class DynamoStormCounter(_CountsOneByAdding):
    """Counter items in the state table: `pk` = `<storm key>#count`, expiring a day after their window."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
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
