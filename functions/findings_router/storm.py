"""Storms: a flood of new findings pages once per group and window, not once per finding.

Each new problem (a new episode about to page or notify) is counted per group (fields chosen per environment, e.g.
product + account + control id) and time window. The first `threshold` of a group page as usual; the next opens one
storm incident for the group, with the count and a sample of resources, and pages the router's meta-alert once;
later ones are folded into the storm incident (its count is refreshed at 2x, 4x, 8x… the threshold, as a trigger on
the same dedup key, which PagerDuty appends to the open alert without notifying again). Every finding still gets its
own dedup state, so it deduplicates and resolves as usual; a storm incident is resolved by the operator.

The counter is shared by all invocations (an atomic ADD in DynamoDB), so exactly one invocation opens a storm.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from findings_router.config import GroupField
from findings_router.dedup import KEY_PREFIX, STORM_PREFIX
from findings_router.model import Finding

META_STORM_PREFIX = f"{KEY_PREFIX}meta-storm-"
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


class InMemoryStormCounter:
    def __init__(self) -> None:
        self.members: dict[str, set[str]] = {}
        self.extra: dict[str, int] = {}
        self.samples: dict[str, list[str]] = {}
        self.opened: set[str] = set()

    def mark_opened(self, key: str) -> None:
        self.opened.add(key)

    def increment(
        self, key: str, member: str, sample: str, threshold: int, sample_size: int, expires_at: int
    ) -> tuple[int, tuple[str, ...], bool]:
        members = self.members.setdefault(key, set())
        if member in members or len(members) <= threshold:
            members.add(member)
        else:
            self.extra[key] = self.extra.get(key, 0) + 1
        count = len(members) + self.extra.get(key, 0)
        samples = self.samples.setdefault(key, [])
        if len(samples) < sample_size and sample not in samples:
            samples.append(sample)
        return count, tuple(samples), key in self.opened


class DynamoStormCounter:
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

    def increment(
        self, key: str, member: str, sample: str, threshold: int, sample_size: int, expires_at: int
    ) -> tuple[int, tuple[str, ...], bool]:
        pk = {"pk": {"S": f"{key}#count"}}
        # One write per new problem. The member string carries the sampled resource, so the member set (capped at
        # threshold + 1 by the condition) is also the sample, and a retried member is still counted once.
        entry = f"{member}|{sample}"
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=pk,
                UpdateExpression="ADD #members :m SET expires_at = if_not_exists(expires_at, :exp)",
                ConditionExpression="attribute_not_exists(#members) OR size(#members) <= :t OR contains(#members, :k)",
                ExpressionAttributeNames={"#members": "members"},
                ExpressionAttributeValues={
                    ":m": {"SS": [entry]},
                    ":k": {"S": entry},
                    ":t": {"N": str(threshold)},
                    ":exp": {"N": str(expires_at)},
                },
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            # The storm is open: only the displayed count grows (the member set stays small).
            response = self.client.update_item(
                TableName=self.table_name,
                Key=pk,
                UpdateExpression="ADD extra :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
            )
        attributes = response["Attributes"]
        opened = bool(attributes.get("opened", {}).get("BOOL", False))
        members = sorted(attributes.get("members", {}).get("SS", []))
        count = len(members) + int(attributes.get("extra", {}).get("N", "0"))
        samples = list(dict.fromkeys(m.split("|", 1)[-1] for m in members))
        return count, tuple(samples[:sample_size]), opened
