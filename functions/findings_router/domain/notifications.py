"""What the domain asks an on-call integration to send: channel-neutral notifications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from findings_router.domain.model import Severity


@dataclass(frozen=True, slots=True)
class StormInfo:
    """What a storm incident says (findings_router.storm): carried on the `Send` that opens or refreshes it."""

    key: str
    group: str
    count: int
    window_minutes: int
    samples: tuple[str, ...]
    meta: bool = False  # the router's own "I am in a storm" meta-alert


@dataclass(frozen=True, slots=True)
class Send:
    """One call to make to the on-call SaaS."""

    event_action: Literal["trigger", "resolve"]
    incident_key: str
    severity: Severity
    urgency: Literal["high", "low"]
    escalated_from: Severity | None = None
    storm: StormInfo | None = None
