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
class FoldedResources:
    """A folded vulnerability episode (dedup.fold_vulnerabilities: one episode per CVE and account, or per CVE and
    resource) as known when a notification is sent: its vulnerability and the affected resources, which the page
    lists next to the finding that triggered it, and the command that lists them all."""

    vulnerability: str  # the CVE (or Windows KB) id the episode folds on
    fold: Literal["cve_account", "cve_resource"]
    resources: tuple[str, ...]  # the first affected resource ids seen in the episode, in that order
    count: int  # how many affected resources the episode has seen (at least len(resources))
    open_findings: int  # findings of the episode still open (tracked)
    findings_capped: bool  # the episode tracks no more findings: there may be more than `open_findings`
    command: str  # `findings-router cve <id> --env <env>`: every affected resource, now

    def listed(self, limit: int) -> tuple[tuple[str, ...], int]:
        """At most `limit` resource ids, and how many more there are."""
        shown = self.resources[:limit]
        return shown, max(self.count - len(shown), 0)

    def more(self, limit: int) -> str:
        """`and 17 more: findings-router cve … --env …` when `limit` does not list them all, else ""."""
        _, more = self.listed(limit)
        return f"and {more} more: {self.command}" if more else ""

    @property
    def scope(self) -> str:
        return "one episode per CVE and account" if self.fold == "cve_account" else "one episode per CVE and resource"

    @property
    def open_text(self) -> str:
        return f"{self.open_findings}{'+' if self.findings_capped else ''}"


@dataclass(frozen=True, slots=True)
class MetaAlert:
    """Not about one finding: findings-router is grouping a storm, one of its own alarms fired, or a report it sends
    on a schedule (the PSIRT digest: `reason` its one-line summary, `description` its body, `changed_at` the end of
    its period)."""

    kind: Literal["storm", "alarm", "digest"]
    name: str  # the alarm's name, the storm's group, or the digest's name
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
    # A folded vulnerability episode's affected resources (None for every other key).
    folded: FoldedResources | None = None


def resolve(key: str, severity: Severity = Severity.INFORMATIONAL) -> Notification:
    """Resolve the incident `key` (a no-op at the on-call service when none is open)."""
    return Notification("resolve", key, severity, "low")
