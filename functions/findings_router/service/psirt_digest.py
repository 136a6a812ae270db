"""The scheduled PSIRT digest: the period's new CRITICAL (or exploitable) CVEs from Amazon Inspector, one line per CVE
(not per image or instance), as a CSV report in S3 and/or one low-urgency notification (docs/psirt.md).

A run covers the `schedule_hours` before the time EventBridge scheduled it (the event's `time`, not the clock):
a retried run covers the same period, overwrites the same report and sends the same notification key, which the
on-call service folds into the incident it already has. Each digest resolves the previous one's incident (the
newer digest replaces it), so a daily digest never leaves a pile of open low-urgency incidents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from findings_router.domain.keys import KEY_PREFIX
from findings_router.domain.model import SEVERITY_RANK, Severity
from findings_router.domain.notifications import MetaAlert, Notification, NotifyContext, resolve
from findings_router.notify import Notifier
from findings_router.psirt.inspector import digest_queries, fetch_affected
from findings_router.psirt.report import digest_csv, digest_text, group_by_cve
from findings_router.settings.schema import Policy

DIGEST_NAME = "psirt-digest"
# Every report's key starts here: the function may write under this prefix only (infra/constructs/psirt_digest.py).
REPORT_PREFIX = "psirt-digest"


@dataclass(frozen=True, slots=True)
class DigestQuery:
    """What one run asks Inspector: ACTIVE findings first observed in [start, end) in these regions."""

    start: dt.datetime
    end: dt.datetime
    severities: tuple[str, ...]  # Inspector severities at or above the policy's min_severity
    include_exploitable: bool  # also exploitAvailable YES, whatever the severity
    accounts: tuple[str, ...] | None  # the environment's accounts; None: every account
    regions: tuple[str, ...]


# (query) → the affected resources (findings_router.psirt.model.AffectedResource) of every region.
FetchAffected = Callable[[DigestQuery], Sequence[Any]]


class Reports(Protocol):
    def put(self, key: str, body: str, content_type: str = ...) -> str: ...


@dataclass(frozen=True, slots=True)
class DigestRun:
    start: dt.datetime
    end: dt.datetime
    cves: int
    resources: int
    report: str | None  # s3://bucket/key
    notification_key: str | None  # None: nothing was sent (no CVE in the period, or no `notify`)


def digest_period(scheduled_time: str | None, now: dt.datetime, hours: int) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the run: `hours` up to the scheduled time (to the minute), else up to `now`."""
    end = now
    if scheduled_time:
        try:
            end = dt.datetime.fromisoformat(scheduled_time.replace("Z", "+00:00"))
        except ValueError:
            end = now
    if end.tzinfo is None:
        end = end.replace(tzinfo=dt.UTC)
    end = end.astimezone(dt.UTC).replace(second=0, microsecond=0)
    return end - dt.timedelta(hours=hours), end


def severities_from(least: Severity) -> tuple[str, ...]:
    """Inspector's severity values at or above `least` (UNTRIAGED, "not scored yet", is never included)."""
    return tuple(s.value for s in Severity if SEVERITY_RANK[s] >= SEVERITY_RANK[least])


def report_key(environment: str, end: dt.datetime) -> str:
    return f"{REPORT_PREFIX}/{environment}/{end:%Y/%m/%d}/{environment}-psirt-digest-{end:%Y%m%dT%H%MZ}.csv"


def digest_key(environment: str, end: dt.datetime) -> str:
    """The notification key of the digest ending at `end`: the same for a retried run."""
    basis = f"psirt-digest\n{environment}\n{end:%Y-%m-%dT%H:%MZ}"
    return f"{KEY_PREFIX}digest-" + hashlib.sha256(basis.encode()).hexdigest()[:32]


def inspector_fetch(client_for: Callable[[str], Any]) -> FetchAffected:
    """Inspector's ListFindings in each region of the query (the delegated administrator is regional), through
    `client_for(region)`."""

    def fetch(query: DigestQuery) -> list[Any]:
        queries = digest_queries(
            query.start,
            query.end,
            severities=query.severities,
            include_exploitable=query.include_exploitable,
            accounts=query.accounts,
        )
        rows: list[Any] = []
        for region in query.regions:
            rows.extend(fetch_affected(client_for(region), queries))
        return rows

    return fetch


def digest_query(policy: Policy, start: dt.datetime, end: dt.datetime, default_region: str) -> DigestQuery:
    settings = policy.psirt_digest
    return DigestQuery(
        start=start,
        end=end,
        severities=severities_from(settings.min_severity),
        include_exploitable=settings.include_exploitable,
        accounts=None if policy.all_accounts else tuple(policy.accounts),
        regions=tuple(settings.regions or [default_region]),
    )


def run_digest(
    policy: Policy,
    fetch: FetchAffected,
    *,
    reports: Reports | None,
    notifier: Notifier | None,
    now: dt.datetime,
    scheduled_time: str | None,
    default_region: str,
) -> DigestRun:
    """One digest run: query, group per CVE, write the report (if `reports`), notify (if `notifier` and a CVE)."""
    settings = policy.psirt_digest
    environment = policy.environment
    start, end = digest_period(scheduled_time, now, settings.schedule_hours)
    rows = fetch(digest_query(policy, start, end, default_region))
    groups = group_by_cve(rows)
    report = reports.put(report_key(environment, end), digest_csv(groups)) if reports is not None else None
    sent: str | None = None
    if notifier is not None and settings.notify:
        context = NotifyContext(environment, targets=tuple(settings.notify))
        previous = digest_key(environment, end - dt.timedelta(hours=settings.schedule_hours))
        if groups:
            summary, body = digest_text(groups, environment, start, end)
            if report is not None:
                body = f"{body}\n\nFull report: {report}"
            sent = digest_key(environment, end)
            meta = MetaAlert(kind="digest", name=DIGEST_NAME, reason=summary, description=body, changed_at=_iso(end))
            notifier.send(Notification("trigger", sent, Severity.INFORMATIONAL, "low", meta=meta), context)
        # The newer digest replaces the previous one (a no-op at the on-call service when none is open).
        notifier.send(resolve(previous), context)
    return DigestRun(start, end, len(groups), len(rows), report, sent)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
