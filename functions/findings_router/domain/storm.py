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

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from findings_router.domain.episodes import Decision
from findings_router.domain.keys import meta_storm_key, storm_key
from findings_router.domain.model import Finding
from findings_router.domain.notifications import MetaAlert, Notification, StormInfo
from findings_router.settings.schema import GroupField, Storm

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


def flush_size(threshold: int, concurrency: int) -> int:
    """How many new problems of a group one execution environment holds before it writes them to the shared
    counter: 1 + threshold // concurrency, at most 1 + MAX_HELD. Every environment pages at most that many less one
    before it learns the shared count, so a storm opens after at most threshold + that many per environment that
    takes part: 2x threshold when `concurrency` environments share a flood. Thresholds below the concurrency stay
    exact (a write per problem)."""
    return 1 + min(MAX_HELD, threshold // max(1, concurrency))


@dataclass(frozen=True, slots=True)
class StormCount:
    """What counting one new problem for its group said (the shared count, read by service/route.py)."""

    kind: Verdict
    problems: int  # new problems counted for the group in this window
    samples: tuple[str, ...]
    key: str  # the storm incident's dedup key
    label: str  # the group, for people


def apply_storm(decision: Decision, counted: StormCount, cfg: Storm, environment: str, meta_mode: str) -> Decision:
    """Turn a new episode's page into a storm page, or fold it into the open storm incident.

    `meta_mode` (monitoring.meta_alerts: page, notify or off) says whether opening a storm also tells on-call that
    findings-router is grouping findings now."""
    kind, count, samples, skey, label = counted.kind, counted.problems, counted.samples, counted.key, counted.label
    if kind == "normal" or decision.new_state is None:
        return decision
    first = decision.notifications[0]
    info = StormInfo(skey, label, count, cfg.window_minutes, samples)
    # Storm incidents are shared and counted idempotently (a storm whose delivery failed is opened again by the
    # next new problem): no write-ahead, the state is written once after the send.
    version = (decision.expected_version or 0) + 1
    state = dataclasses.replace(decision.new_state, incident_keys=(skey,), pending=(), version=version)
    decision = dataclasses.replace(decision, pending_state=None)
    if kind == "open":
        notifications: tuple[Notification, ...] = (dataclasses.replace(first, key=skey, storm=info),)
        if meta_mode != "off":
            meta = Notification(
                "trigger",
                meta_storm_key(environment),
                first.severity,
                "high" if meta_mode == "page" else "low",
                storm=info,
                meta=MetaAlert("storm", label),
            )
            notifications = (*notifications, meta)
        reason = (
            f"{decision.reason}; storm: {count} new problems for {label} in {cfg.window_minutes} min, "
            "grouped from now on"
        )
        return dataclasses.replace(decision, reason=reason, notifications=notifications, new_state=state)
    refresh = (dataclasses.replace(first, key=skey, storm=info),) if is_report_point(count, cfg.threshold) else ()
    reason = f"grouped into the storm incident for {label} ({count} new problems in {cfg.window_minutes} min)"
    return dataclasses.replace(decision, outcome="duplicate", reason=reason, notifications=refresh, new_state=state)


@dataclass(frozen=True, slots=True)
class StormSlot:
    """Where a new problem is counted: its group's counter for the current window."""

    key: str
    label: str
    expires_at: int  # the counter item's TTL: a day after its window


def storm_slot(finding: Finding, cfg: Storm, now: dt.datetime) -> StormSlot:
    values = group_values(finding, cfg.group_by)
    start = window_start(now, cfg.window_minutes)
    return StormSlot(
        storm_key(values, start), group_label(cfg.group_by, values), start + cfg.window_minutes * 60 + 86_400
    )
