"""`findings-router status --env ENV`: what is open right now, from the deployed stack (needs AWS credentials).

Reads, never writes: the open and acknowledged episodes of the state table, the dead-letter queue's depth, the age of
the oldest finding waiting in the queue (CloudWatch), the stack's alarms and when the last page went out. Resource
names come from the environment's policy, as the stack names them (infra/contract.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from findings_router.adapters.state_table import item_to_state
from findings_router.domain.acks import is_finding_key
from findings_router.domain.model import Severity
from findings_router.settings.schema import Policy
from findings_router_local.aws_access import AwsAccessError, aws_error
from findings_router_local.tables import clip, render_table
from infra.contract import ResourceNames, resource_names

OPEN_STATUSES = ("open", "acknowledged")


StatusError = AwsAccessError  # what `status` raises: one line, no traceback


@dataclass
class Episode:
    dedup_key: str
    status: str
    severity: str
    action: str
    episode: int
    account: str
    title: str
    opened_at: str | None
    last_notified_at: str
    acknowledged_by: str | None
    incidents: list[str]


@dataclass
class Status:
    environment: str
    episodes: list[Episode] = field(default_factory=list)
    dead_letters: int | None = None
    queued: int | None = None
    oldest_message_age_seconds: float | None = None
    alarms: dict[str, str] = field(default_factory=dict)
    last_page_at: str | None = None

    @property
    def alarming(self) -> list[str]:
        return sorted(name for name, state in self.alarms.items() if state == "ALARM")


def read_status(session: Any, policy: Policy, *, now: dt.datetime | None = None) -> Status:
    """Everything `status` shows, read with `session`'s clients (boto3.Session or anything with `.client`)."""
    names = resource_names(policy)
    now = now or dt.datetime.now(dt.UTC)
    status = Status(policy.environment)
    try:
        dynamodb = session.client("dynamodb")
        sqs = session.client("sqs")
        cloudwatch = session.client("cloudwatch")
    except Exception as exc:  # no region, an unusable profile: one line, not a traceback
        raise aws_error(exc, "AWS clients") from None
    try:
        # One consistent scan: the open episodes and the last page ever recorded, whatever its episode's status now.
        pages = dynamodb.get_paginator("scan").paginate(TableName=names.state_table, ConsistentRead=True)
        states = [
            item_to_state(item)
            for page in pages
            for item in page.get("Items", [])
            if is_finding_key(item["pk"]["S"]) and "#" not in item["pk"]["S"]  # not storm counters, idempotency
        ]
    except Exception as exc:
        raise aws_error(exc, f"state table {names.state_table!r}") from None
    paged = [s.last_notified_at for s in states if s.action == "page" and s.notify_count > 0]
    status.last_page_at = max(paged) if paged else None
    status.episodes = [
        Episode(
            dedup_key=state.key,
            status=state.status,
            severity=state.severity.value,
            action=state.action,
            episode=state.episode,
            account=state.account,
            title=state.title,
            opened_at=state.opened_at,
            last_notified_at=state.last_notified_at,
            acknowledged_by=state.acknowledged_by,
            incidents=list(state.incident_keys),
        )
        for state in states
        if state.status in OPEN_STATUSES
    ]
    status.episodes.sort(key=lambda e: (e.status != "open", -Severity(e.severity).rank, e.last_notified_at))

    try:
        for name, attr in ((names.dead_letter_queue, "dead_letters"), (names.queue, "queued")):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            setattr(status, attr, int(counts["Attributes"]["ApproximateNumberOfMessages"]))
    except Exception as exc:
        raise aws_error(exc, "queue") from None

    try:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": names.queue}],
            StartTime=now - dt.timedelta(minutes=15),
            EndTime=now,
            Period=300,
            Statistics=["Maximum"],
        ).get("Datapoints", [])
        if points:
            status.oldest_message_age_seconds = float(max(points, key=lambda p: p["Timestamp"])["Maximum"])
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=names.alarm_prefix + "-"):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                # The prefix also matches an environment whose name extends this one's (prod → prod-eu): only
                # alarms that watch this environment's resources, or whose name has no further environment part.
                if _ours(alarm, names, policy.environment):
                    status.alarms[alarm["AlarmName"]] = alarm["StateValue"]
    except Exception as exc:
        raise aws_error(exc, "CloudWatch alarms and metrics") from None
    return status


def _ours(alarm: dict[str, Any], names: ResourceNames, environment: str) -> bool:
    """Whether an alarm named with this environment's prefix watches this environment (not `prod-eu` for `prod`):
    one of its resources, or one of its own metrics (the Powertools dimension `environment`: canary-missing,
    no-findings, rejected signatures)."""
    mine = {
        names.queue,
        names.dead_letter_queue,
        names.function,
        names.ack_function,
        names.ack_dead_letter_queue,
        names.meta_alert_function,
        names.meta_alert_dead_letter_queue,
        names.state_table,
        names.canary_function,
        names.psirt_digest_function,
        names.silence_sweep_function,
        environment,
    }
    values = [d.get("Value") for d in alarm.get("Dimensions", [])]
    for metric in alarm.get("Metrics", []):  # metric-math alarms
        stat = metric.get("MetricStat", {}).get("Metric", {})
        values.extend(d.get("Value") for d in stat.get("Dimensions", []))
    return not values or any(v in mine for v in values)


def status_json(status: Status) -> str:
    return json.dumps({**asdict(status), "alarming": status.alarming}, indent=1)


def render_status(status: Status) -> str:
    open_count = sum(1 for e in status.episodes if e.status == "open")
    acked = len(status.episodes) - open_count
    age = "-" if status.oldest_message_age_seconds is None else f"{status.oldest_message_age_seconds:.0f} s"
    alarming = ", ".join(status.alarming) or "none"
    lines = [
        f"{status.environment}: {open_count} open, {acked} acknowledged · dead letters {status.dead_letters} · "
        f"queued {status.queued} (oldest {age}) · alarms in ALARM: {alarming} · last page {status.last_page_at or '-'}",
        "",
        render_table(
            ("status", "severity", "action", "ep", "account", "since", "acknowledged by", "title", "dedup_key"),
            [
                [
                    e.status,
                    e.severity,
                    e.action,
                    str(e.episode),
                    e.account or "-",
                    e.opened_at or e.last_notified_at,
                    e.acknowledged_by or "-",
                    clip(e.title, 48),
                    e.dedup_key,
                ]
                for e in status.episodes
            ],
            "(nothing open)",
        ),
    ]
    return "\n".join(lines)


def status_command(session: Any, policy: Policy, *, output: str, out: TextIO) -> int:
    """Prints the status; exit 0 when nothing needs a person (no dead letters, no alarm), 1 otherwise."""
    status = read_status(session, policy)
    out.write((status_json(status) if output == "json" else render_status(status)) + "\n")  # table, text: the same
    return 1 if (status.dead_letters or status.alarming) else 0
