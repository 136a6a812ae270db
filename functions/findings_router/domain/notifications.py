"""What the domain asks an on-call integration to send: channel-neutral notifications.

A `Notification` says what to do (trigger or resolve the incident `key`), how loud (severity, urgency) and what kind
of incident it is (a finding's, an escalation, a storm of a group, or a meta-alert about findings-router itself).
A `NotifyContext` says what it is about (the environment, and the finding and its episode when there is one). Each
integration (notify/) turns the pair into its own payload; nothing here knows any vendor's vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from findings_router.domain.model import Finding, Severity

Urgency = Literal["high", "low"]


@dataclass(frozen=True, slots=True)
class StormInfo:
    """A storm incident of a group (domain/storm.py): carried on the notification that opens or refreshes it."""

    key: str
    group: str
    count: int
    window_minutes: int
    samples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MetaAlert:
    """About findings-router itself rather than a finding: it is grouping a storm, or one of its own alarms fired."""

    kind: Literal["storm", "alarm"]
    name: str  # the alarm's name, or the storm's group
    reason: str = ""
    description: str = ""
    account: str = ""
    region: str = ""
    changed_at: str = ""


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing to tell the on-call service."""

    kind: Literal["trigger", "resolve"]
    key: str  # the incident's identity at the on-call service: a dedup key, with `~<rank>` for an escalation
    severity: Severity
    urgency: Urgency
    escalated_from: Severity | None = None
    storm: StormInfo | None = None
    meta: MetaAlert | None = None


@dataclass(frozen=True, slots=True)
class NotifyContext:
    """What a notification is about. `finding` is None for an alarm's meta-alert and for resolves sent by key alone
    (an acknowledgement resolving sibling incidents), which name no finding."""

    environment: str
    finding: Finding | None = None
    dedup_key: str = ""
    reason: str = ""
    episode: int = 0
    # The policy's notifiers this goes to (a rule's `notify`, the episode's `targets`); () is the primary `notifier`.
    targets: tuple[str, ...] = ()


def resolve(key: str, severity: Severity = Severity.INFORMATIONAL) -> Notification:
    """Resolve the incident `key` (a no-op at the on-call service when none is open)."""
    return Notification("resolve", key, severity, "low")
