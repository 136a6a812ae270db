"""What a PSIRT report makes of the rows of every source: one row per resource × package × CVE (merged across
sources, Inspector's data first), sorted, counted (`Summary`), compared with a date (`apply_since`), and grouped per
CVE for the scheduled digest (`group_by_cve`, `digest_csv`, `digest_text`).

Pure: no SDK, no clock (dates are passed in).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

from findings_router.psirt.model import (
    SOURCE_INSPECTOR,
    SOURCES,
    AffectedResource,
    resource_type_label,
)

CHANGE_NEW: Final = "new"
CHANGE_CHANGED: Final = "changed"
CHANGE_FIXED: Final = "fixed"
SUMMARY_MAX_CHARS: Final = 1000
DIGEST_LINES: Final = 25


def canonical_resource(resource_id: str) -> str:
    """The same resource as every source names it: an EC2 instance ARN is its instance id, a Lambda function's
    `:$LATEST` is dropped, case is ignored."""
    text = resource_id.strip()
    if text.startswith("arn:") and ":instance/" in text:
        text = text.rsplit("/", 1)[-1]
    if text.endswith(":$LATEST"):
        text = text[: -len(":$LATEST")]
    return text.lower()


def row_key(row: AffectedResource) -> tuple[str, str, str]:
    """resource × package × CVE: what two sources reporting the same problem share."""
    return row.cve, canonical_resource(row.resource_id), (row.package or "").lower()


def _rank(row: AffectedResource) -> int:
    """Which source's data wins: Inspector, then Security Hub v2, then v1."""
    return min((SOURCES.index(s) for s in row.sources if s in SOURCES), default=len(SOURCES))


def merge(rows: Iterable[AffectedResource]) -> list[AffectedResource]:
    """One row per resource × package × CVE: the best source's values (Inspector's first), what it lacks taken from
    the others, the union of the sources and of the finding ids. Order: first seen."""
    groups: dict[tuple[str, str, str], list[AffectedResource]] = {}
    for row in rows:
        groups.setdefault(row_key(row), []).append(row)
    merged = []
    for group in groups.values():
        ordered = sorted(group, key=_rank)
        best = ordered[0]
        if len(ordered) > 1:
            filled: dict[str, Any] = {
                f.name: next((getattr(r, f.name) for r in ordered if getattr(r, f.name) is not None), None)
                for f in fields(AffectedResource)
                if getattr(best, f.name) is None
            }
            ids = tuple(dict.fromkeys(i for r in ordered for i in r.finding_ids))
            best = replace(best, **filled, sources=frozenset().union(*(r.sources for r in ordered)), finding_ids=ids)
        merged.append(best)
    return merged


def with_environments(rows: Iterable[AffectedResource], environments: Mapping[str, str]) -> list[AffectedResource]:
    """Each row's `environment` from an account → environment map (None for an account no environment owns)."""
    return [replace(r, environment=environments.get(r.account)) for r in rows]


def sort_rows(rows: Iterable[AffectedResource]) -> list[AffectedResource]:
    """By account, then CVSS (highest first), then CVE, resource and package."""
    return sorted(
        rows,
        key=lambda r: (r.account, -(r.cvss if r.cvss is not None else -1.0), r.cve, r.resource_label, r.package or ""),
    )


def apply_since(
    active: Iterable[AffectedResource], since: str, closed: Iterable[AffectedResource] = ()
) -> list[AffectedResource]:
    """`active` rows marked `new` (first observed at or after `since`, an ISO UTC string) or `changed` (updated, or
    when the source gives no update time last observed, at or after it), the others unmarked; then the `closed`
    rows (closed findings updated since) that no active row stands for, marked `fixed`; a closed row updated before
    `since` was fixed before: left out."""
    out = []
    keys = set()
    for row in active:
        keys.add(row_key(row))
        touched = row.updated or row.last_observed
        if row.first_observed is not None and row.first_observed >= since:
            out.append(replace(row, change=CHANGE_NEW))
        elif touched is not None and touched >= since:
            out.append(replace(row, change=CHANGE_CHANGED))
        else:
            out.append(replace(row, change=None))
    for row in merge(closed):
        closed_at = row.updated or row.last_observed
        if row_key(row) not in keys and (closed_at is None or closed_at >= since):
            out.append(replace(row, change=CHANGE_FIXED))
    return out


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts of a report. Per account, environment, resource type and CVE: distinct affected resources. `rows`:
    resource × package × CVE; `with_fix` / `without_fix` and `exploit_known` count rows. `confirmed`: rows that
    Inspector and Security Hub both report; `securityhub_only`: rows no Inspector finding stands for. `changes`:
    with --since, rows per change (new, changed, fixed)."""

    rows: int
    resources: int
    accounts: int
    per_cve: dict[str, int]
    per_account: dict[str, int]
    per_environment: dict[str, int]
    per_resource_type: dict[str, int]
    with_fix: int
    without_fix: int
    exploit_known: int
    max_cvss: float | None
    max_epss: float | None
    per_source: dict[str, int]
    confirmed: int
    securityhub_only: int
    changes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _distinct(rows: Sequence[AffectedResource], by: str) -> dict[str, int]:
    resources: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        value = getattr(row, by)
        resources["-" if value is None else str(value)].add(canonical_resource(row.resource_id))
    return {k: len(v) for k, v in sorted(resources.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


def summarize(rows: Sequence[AffectedResource]) -> Summary:
    """The counts of `rows` (active rows; rows marked `fixed` are counted only under `changes`)."""
    active = [r for r in rows if r.change != CHANGE_FIXED]
    cvss = [r.cvss for r in active if r.cvss is not None]
    epss = [r.epss for r in active if r.epss is not None]
    per_source: Counter[str] = Counter(s for r in active for s in r.sources)
    changes = Counter(r.change for r in rows if r.change is not None)
    return Summary(
        rows=len(active),
        resources=len({canonical_resource(r.resource_id) for r in active}),
        accounts=len({r.account for r in active}),
        per_cve=_distinct(active, "cve"),
        per_account=_distinct(active, "account"),
        per_environment=_distinct(active, "environment"),
        per_resource_type=_distinct(active, "resource_type"),
        with_fix=sum(1 for r in active if r.has_fix),
        without_fix=sum(1 for r in active if not r.has_fix),
        exploit_known=sum(1 for r in active if r.exploit_available),
        max_cvss=max(cvss) if cvss else None,
        max_epss=max(epss) if epss else None,
        per_source={s: per_source[s] for s in SOURCES if per_source[s]},
        confirmed=sum(1 for r in active if SOURCE_INSPECTOR in r.sources and len(r.sources) > 1),
        securityhub_only=sum(1 for r in active if SOURCE_INSPECTOR not in r.sources),
        changes={k: changes[k] for k in (CHANGE_NEW, CHANGE_CHANGED, CHANGE_FIXED) if changes[k]},
    )


# ------------------------------------------------------------------------------------------ the digest


@dataclass(frozen=True, slots=True)
class CveGroup:
    """One CVE of a digest: its worst scores and where it is. `fix_available`: rows (resource × package) with a
    fix; `resources`: distinct resources; `first_observed`: the earliest."""

    cve: str
    max_cvss: float | None
    max_epss: float | None
    exploit_known: bool
    fix_available: int
    resources: int
    accounts: tuple[str, ...]
    resource_types: tuple[str, ...]
    first_observed: str | None
    severity: str | None = None
    environments: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    rows: int = 0


SEVERITY_ORDER: Final = ("UNTRIAGED", "INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def _worst(values: Iterable[str | None]) -> str | None:
    known = [v.upper() for v in values if v]
    if not known:
        return None
    return max(known, key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else -1)


def group_by_cve(rows: Iterable[AffectedResource]) -> list[CveGroup]:
    """One `CveGroup` per CVE (rows marked `fixed` left out), the most severe first: highest CVSS, then EPSS, then
    a known exploit; ties by id."""
    by_cve: dict[str, list[AffectedResource]] = defaultdict(list)
    for row in rows:
        if row.change != CHANGE_FIXED:
            by_cve[row.cve].append(row)
    groups = []
    for cve, members in by_cve.items():
        cvss = [r.cvss for r in members if r.cvss is not None]
        epss = [r.epss for r in members if r.epss is not None]
        first = [r.first_observed for r in members if r.first_observed]
        groups.append(
            CveGroup(
                cve=cve,
                max_cvss=max(cvss) if cvss else None,
                max_epss=max(epss) if epss else None,
                exploit_known=any(r.exploit_available for r in members),
                fix_available=sum(1 for r in members if r.has_fix),
                resources=len({canonical_resource(r.resource_id) for r in members}),
                accounts=tuple(sorted({r.account for r in members})),
                resource_types=tuple(sorted({r.resource_type for r in members})),
                first_observed=min(first) if first else None,
                severity=_worst(r.severity for r in members),
                environments=tuple(sorted({r.environment for r in members if r.environment})),
                packages=tuple(sorted({r.package for r in members if r.package})),
                rows=len(members),
            )
        )
    groups.sort(key=lambda g: (-(g.max_cvss or 0.0), -(g.max_epss or 0.0), not g.exploit_known, g.cve))
    return groups


DIGEST_COLUMNS: Final = (
    "cve",
    "severity",
    "max_cvss",
    "max_epss",
    "exploit_known",
    "resources",
    "rows",
    "fix_available",
    "accounts",
    "environments",
    "resource_types",
    "packages",
    "first_observed",
)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return " ".join(value)
    return str(value)


def digest_csv(groups: Sequence[CveGroup]) -> str:
    """The digest as CSV: a header, then one line per CVE (`DIGEST_COLUMNS`; lists space-separated)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DIGEST_COLUMNS)
    for group in groups:
        writer.writerow([_csv_value(getattr(group, c)) for c in DIGEST_COLUMNS])
    return out.getvalue()


def _when(value: dt.datetime | dt.date | str) -> str:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%MZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _score(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _item(group: CveGroup) -> str:
    """A CVE in the one-line summary: `CVE-2021-44228 (CVSS 10.0, exploit known, 12 resources)`."""
    parts = [f"CVSS {_score(group.max_cvss)}"]
    if group.exploit_known:
        parts.append("exploit known")
    parts.append(f"{group.resources} resource{'s' if group.resources != 1 else ''}")
    return f"{group.cve} ({', '.join(parts)})"


def _line(group: CveGroup) -> str:
    types = ", ".join(resource_type_label(t) for t in group.resource_types)
    accounts = ", ".join(group.accounts)
    fix = f"fix for {group.fix_available}/{group.rows}" if group.rows else "fix -"
    exploit = "exploit known" if group.exploit_known else "no known exploit"
    packages = (
        f" · {', '.join(group.packages[:3])}" + (" …" if len(group.packages) > 3 else "") if group.packages else ""
    )
    return (
        f"{group.cve}  {group.severity or '-'}  CVSS {_score(group.max_cvss)}  EPSS {_score(group.max_epss, 3)}  "
        f"{exploit}  {group.resources} resource{'s' if group.resources != 1 else ''} ({types}) in {accounts}  {fix}  "
        f"first seen {group.first_observed or '-'}{packages}"
    )


def digest_text(
    groups: Sequence[CveGroup],
    environment: str,
    period_start: dt.datetime | dt.date | str,
    period_end: dt.datetime | dt.date | str,
    *,
    max_lines: int = DIGEST_LINES,
) -> tuple[str, str]:
    """(summary, body) of a digest notification. The summary is one line of at most 1000 characters (PagerDuty's
    summary holds 1024) naming as many CVEs as fit, then "and N more"; the body lists one line per CVE, at most
    `max_lines`, then "and N more"."""
    period = f"{_when(period_start)} → {_when(period_end)}"
    count = len(groups)
    resources = sum(g.resources for g in groups)
    head = f"[{environment}] PSIRT digest {period}: {count} CVE{'s' if count != 1 else ''} on {resources} resources"
    if not groups:
        text = f"[{environment}] PSIRT digest {period}: no new CVE"
        return text[:SUMMARY_MAX_CHARS], text
    summary = head
    for shown, group in enumerate(groups):
        candidate = f"{summary}{': ' if shown == 0 else '; '}{_item(group)}"
        rest = count - shown - 1
        tail = f"; and {rest} more" if rest else ""
        if len(candidate) + len(tail) > SUMMARY_MAX_CHARS:
            summary = f"{summary}; and {count - shown} more" if shown else f"{head} (see the body)"
            break
        summary = candidate
    summary = summary[:SUMMARY_MAX_CHARS]
    lines = [head, ""]
    lines += [_line(g) for g in groups[:max_lines]]
    if count > max_lines:
        lines.append(f"and {count - max_lines} more")
    return summary, "\n".join(lines)
