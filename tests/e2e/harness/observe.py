"""Looking at the deployed stacks: bounded waits, the functions' CloudWatch Logs, the state table, the queues."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from findings_router.adapters.state_table import item_to_state
from findings_router.domain.episodes import DedupState
from findings_router.domain.keys import KEY_PREFIX

T = TypeVar("T")
POLL_SECONDS = 0.25


class WaitTimeoutError(AssertionError):
    pass


def wait_for(
    what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout: float, show: Callable[[T], str] = repr
) -> T:
    """Probe until `done(value)`; after `timeout` seconds fail with what was awaited and the last value seen."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise WaitTimeoutError(f"waited {timeout:.0f} s for {what}; last seen: {show(value)}")
        time.sleep(POLL_SECONDS)
        value = probe()
    return value


def log_lines(aws: Any, log_group: str, since_ms: int = 0) -> list[str]:
    """Every log line of the group since `since_ms` (epoch ms), in order; [] while the group has none."""
    logs = aws.client("logs")
    lines: list[str] = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=log_group, startTime=since_ms):
            lines.extend(e["message"].rstrip("\n") for e in page["events"])
    except logs.exceptions.ResourceNotFoundException:
        return []
    return lines


def log_records(aws: Any, log_group: str, since_ms: int = 0) -> list[dict[str, Any]]:
    """The structured (JSON) log records of the group: the functions' Powertools lines."""
    out = []
    for line in log_lines(aws, log_group, since_ms):
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "message" in record:
                out.append(record)
    return out


def now_ms() -> int:
    return int(time.time() * 1000)


def dedup_states(aws: Any, table: str) -> dict[str, DedupState]:
    """The dedup items of the state table (storm counters and idempotency records share it), by key."""
    dynamodb = aws.client("dynamodb")
    states = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            key = item["pk"]["S"]
            if key.startswith(KEY_PREFIX) and "#" not in key:
                states[key] = item_to_state(item)
    return states


def queue_depth(aws: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def alarms(aws: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """The environment's CloudWatch alarms (names start with `prefix`-), by name."""
    out = {}
    for page in aws.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{prefix}-"):
        for alarm in page["MetricAlarms"]:
            out[alarm["AlarmName"]] = alarm
    return out
