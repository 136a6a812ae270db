"""CloudWatch alarm state changes (as SNS delivers them) that page about findings-router itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from findings_router.domain.keys import meta_dedup_key
from findings_router.domain.model import Severity
from findings_router.domain.notifications import MetaAlert, Notification, resolve


@dataclass(frozen=True, slots=True)
class AlarmChange:
    name: str
    arn: str
    state: str  # ALARM | OK | INSUFFICIENT_DATA
    reason: str
    description: str
    account: str
    region: str
    changed_at: str


def parse_alarm(message: str | Mapping[str, Any]) -> AlarmChange:
    """A CloudWatch alarm state change as published to SNS (`Records[].Sns.Message`, JSON)."""
    data = json.loads(message) if isinstance(message, str) else message
    if not isinstance(data, Mapping) or "AlarmName" not in data or "NewStateValue" not in data:
        raise ValueError("not a CloudWatch alarm notification")
    return AlarmChange(
        name=str(data["AlarmName"]),
        arn=str(data.get("AlarmArn") or data["AlarmName"]),
        state=str(data["NewStateValue"]),
        reason=str(data.get("NewStateReason") or ""),
        description=str(data.get("AlarmDescription") or ""),
        account=str(data.get("AWSAccountId") or ""),
        region=str(data.get("Region") or ""),
        changed_at=str(data.get("StateChangeTime") or ""),
    )


def alarm_notification(change: AlarmChange, mode: str) -> Notification | None:
    """What an alarm change asks of on-call: ALARM triggers a meta-alert (urgent when `mode` is `page`), OK resolves
    it; other states and mode `off` send nothing."""
    if mode == "off":
        return None
    key = meta_dedup_key(change.arn)
    if change.state == "OK":
        return resolve(key)
    if change.state != "ALARM":
        return None
    meta = MetaAlert(
        "alarm", change.name, change.reason, change.description, change.account, change.region, change.changed_at
    )
    return Notification("trigger", key, Severity.CRITICAL, "high" if mode == "page" else "low", meta=meta)
