"""CloudWatch alarm state changes (as SNS delivers them) that page about findings-router itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from findings_router.domain.keys import meta_dedup_key
from findings_router.domain.model import Severity
from findings_router.domain.notifications import MetaAlert, Notification, Urgency, resolve


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
    old_state: str = ""

    @property
    def never_had_data(self) -> bool:
        """Into ALARM straight from INSUFFICIENT_DATA because no datapoint ever came and missing data breaches: an
        absence alarm (canary-missing, no-findings) of a stack that has not seen its metric yet, e.g. just deployed.
        CloudWatch's reason then reads "no datapoints were received for 1 period and 1 missing datapoint was treated
        as [Breaching]"."""
        return self.old_state == "INSUFFICIENT_DATA" and "no datapoints were received" in self.reason


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
        old_state=str(data.get("OldStateValue") or ""),
    )


def alarm_notification(change: AlarmChange, mode: str) -> Notification | None:
    """What an alarm change asks of on-call: ALARM triggers a meta-alert (urgent when `mode` is `page`, low urgency
    for an alarm that never had data), OK resolves it; other states and mode `off` send nothing."""
    if mode == "off":
        return None
    key = meta_dedup_key(change.arn)
    if change.state == "OK":
        return resolve(key)
    if change.state != "ALARM":
        return None
    reason = change.reason
    urgency: Urgency = "high" if mode == "page" else "low"
    if change.never_had_data:
        # Every fresh deployment starts so, until its first canary completes or its first finding arrives: tell,
        # at low urgency, rather than wake someone; once the metric was seen, its absence pages (OK → ALARM).
        urgency = "low"
        reason = f"no data yet since the alarm was created (a new deployment, or a path that never worked): {reason}"
    meta = MetaAlert("alarm", change.name, reason, change.description, change.account, change.region, change.changed_at)
    return Notification("trigger", key, Severity.CRITICAL, urgency, meta=meta)
