"""CloudWatch alarm state changes (as SNS delivers them) that page about findings-router itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
