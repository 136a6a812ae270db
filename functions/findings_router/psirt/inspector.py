"""Amazon Inspector (inspector2) for a PSIRT report: `ListFindings` queries, paging, and findings → rows.

`ListFindings` (`POST /findings/list`, IAM `inspector2:ListFindings`) is the authoritative "where is CVE-X" source:
called from the Inspector delegated administrator it answers for every member account, one Region at a time (the
delegated administrator is regional). Its filters (`FilterCriteria`) are ANDed across keys and ORed within one key's
list, which holds at most 10 `StringFilter`s (`EQUALS | PREFIX | NOT_EQUALS`, no CONTAINS), so queries are split in
chunks of 10 ids and 10 accounts. A page holds at most 25 findings whatever `maxResults` says: always paginate.

Windows hosts are reported under Microsoft KB ids ("KB5008212") with the CVEs in `relatedVulnerabilities`, and
language packages sometimes under a GitHub advisory id: `cve_queries` asks for `vulnerabilityId` and, separately,
for `relatedVulnerabilities`. A finding matches a CVE asked for when either holds it.

Pure but for the client passed in: no boto3 import, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from findings_router.psirt.model import (
    EC2_INSTANCE,
    ECR_IMAGE,
    LAMBDA_FUNCTION,
    SOURCE_INSPECTOR,
    AffectedResource,
    as_dict,
    as_float,
    as_list,
    as_text,
    function_name,
    iso_time,
)

MAX_FILTER_VALUES: Final = 10  # StringFilterList: 1-10 entries
PAGE_SIZE: Final = 100  # maxResults 1-100; the service answers at most 25 a page
STATUS_ACTIVE: Final = "ACTIVE"
STATUS_CLOSED: Final = "CLOSED"
PACKAGE_VULNERABILITY: Final = "PACKAGE_VULNERABILITY"
SEVERITIES: Final = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL", "UNTRIAGED")
LIST_FINDINGS: Final = "inspector2:ListFindings"
LIST_AGGREGATIONS: Final = "inspector2:ListFindingAggregations"
NO_FIX_VALUES: Final = frozenset({"", "NOTAVAILABLE", "NOT AVAILABLE", "NONE", "N/A"})


def chunks(values: Sequence[str], size: int = MAX_FILTER_VALUES) -> list[tuple[str, ...]]:
    """`values` in consecutive tuples of at most `size` (one empty tuple for no values: "no filter")."""
    if not values:
        return [()]
    return [tuple(values[i : i + size]) for i in range(0, len(values), size)]


def string_filters(values: Sequence[str], comparison: str = "EQUALS") -> list[dict[str, str]]:
    if not 1 <= len(values) <= MAX_FILTER_VALUES:
        raise ValueError(f"an Inspector filter list holds 1 to {MAX_FILTER_VALUES} values, not {len(values)}")
    return [{"comparison": comparison, "value": v} for v in values]


def date_filter(start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[dict[str, dt.datetime]]:
    """A `DateFilterList` of one range, both ends inclusive (the wire has whole seconds)."""
    bound: dict[str, dt.datetime] = {}
    if start is not None:
        bound["startInclusive"] = start
    if end is not None:
        bound["endInclusive"] = end
    if not bound:
        raise ValueError("a date filter needs a start or an end")
    return [bound]


def filter_criteria(
    vulnerability_ids: Sequence[str] = (),
    *,
    related: bool = False,
    status: str | None = STATUS_ACTIVE,
    accounts: Sequence[str] = (),
    first_observed: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    last_observed: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    updated: tuple[dt.datetime | None, dt.datetime | None] | None = None,
    severities: Sequence[str] = (),
    exploit_available: bool | None = None,
    fix_available: Sequence[str] = (),
    finding_type: str | None = None,
) -> dict[str, Any]:
    """One `ListFindings` `filterCriteria`.

    `vulnerability_ids` (≤10) match `vulnerabilityId`, or with `related` the finding's `relatedVulnerabilities`
    (Windows KB findings list their CVEs there). `status`: ACTIVE (default), CLOSED, SUPPRESSED, or None for any.
    `accounts` (≤10): `awsAccountId`. The date ranges are (start, end), inclusive, either end None for open.
    `severities` (≤10) and `exploit_available` (YES/NO) are for the digest ("CRITICAL or exploitable"): they are
    ANDed with each other, so "either" takes two queries (`digest_queries`)."""
    criteria: dict[str, Any] = {}
    if vulnerability_ids:
        criteria["relatedVulnerabilities" if related else "vulnerabilityId"] = string_filters(vulnerability_ids)
    elif related:
        raise ValueError("related: give the vulnerability ids to look for in relatedVulnerabilities")
    strings: dict[str, Sequence[str]] = {
        "findingStatus": [status] if status is not None else [],
        "awsAccountId": accounts,
        "severity": _known_severities(severities),
        "exploitAvailable": [] if exploit_available is None else ["YES" if exploit_available else "NO"],
        "fixAvailable": fix_available,
        "findingType": [finding_type] if finding_type is not None else [],
    }
    criteria.update({key: string_filters(values) for key, values in strings.items() if values})
    for key, window in (("firstObservedAt", first_observed), ("lastObservedAt", last_observed), ("updatedAt", updated)):
        if window is not None:
            criteria[key] = date_filter(*window)
    return criteria


def _known_severities(severities: Sequence[str]) -> Sequence[str]:
    unknown = [s for s in severities if s not in SEVERITIES]
    if unknown:
        raise ValueError(f"unknown Inspector severities {unknown}; known: {', '.join(SEVERITIES)}")
    return severities


@dataclass(frozen=True, slots=True)
class InspectorQuery:
    """One paginated `ListFindings` query: what it is for (`kind`), the ids it looks for, and its criteria."""

    kind: str  # "vulnerabilityId", "relatedVulnerabilities", "closed", "digest-severity", "digest-exploitable"
    vulnerability_ids: tuple[str, ...]
    filter_criteria: dict[str, Any]


def cve_queries(
    vulnerability_ids: Sequence[str],
    *,
    accounts: Sequence[str] = (),
    status: str | None = STATUS_ACTIVE,
    updated_since: dt.datetime | None = None,
    related: bool = True,
) -> list[InspectorQuery]:
    """The queries for "every finding of these ids": per chunk of 10 ids and 10 accounts, one on `vulnerabilityId`
    and (`related`) one on `relatedVulnerabilities`. `status` CLOSED with `updated_since`: what was fixed since."""
    queries = []
    updated = (updated_since, None) if updated_since is not None else None
    kinds = [("vulnerabilityId", False)] + ([("relatedVulnerabilities", True)] if related else [])
    for ids in chunks(list(vulnerability_ids)):
        if not ids:
            raise ValueError("no vulnerability id to look for")
        for account_chunk in chunks(list(accounts)):
            for kind, on_related in kinds:
                criteria = filter_criteria(
                    ids, related=on_related, status=status, accounts=account_chunk, updated=updated
                )
                label = "closed" if status == STATUS_CLOSED and not on_related else kind
                queries.append(InspectorQuery(label, ids, criteria))
    return queries


def digest_queries(
    start: dt.datetime,
    end: dt.datetime,
    *,
    severities: Sequence[str],
    include_exploitable: bool,
    accounts: Sequence[str] | None = None,
) -> list[InspectorQuery]:
    """The digest's queries: ACTIVE package vulnerabilities first observed in [start, end), of `severities`, and
    (`include_exploitable`) those with a known exploit whatever their severity; per chunk of 10 accounts (None or
    empty: every account). A finding matching both comes back twice: `fetch_affected` keeps it once."""
    window = (start, end - dt.timedelta(seconds=1))  # [start, end): the wire carries whole seconds, both inclusive
    queries = []
    for account_chunk in chunks(list(accounts or ())):
        common: dict[str, Any] = {
            "status": STATUS_ACTIVE,
            "accounts": account_chunk,
            "first_observed": window,
            "finding_type": PACKAGE_VULNERABILITY,
        }
        if severities:
            criteria = filter_criteria(severities=list(severities), **common)
            queries.append(InspectorQuery("digest-severity", (), criteria))
        if include_exploitable:
            queries.append(InspectorQuery("digest-exploitable", (), filter_criteria(exploit_available=True, **common)))
    return queries


@dataclass
class CallStats:
    """API calls made, per `service:Operation`: `calls` counts every attempt (a retried call counts each time it
    was sent, from the responses' `RetryAttempts`), `retries` the retries among them."""

    calls: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)

    def record(self, operation: str, response: Mapping[str, Any]) -> None:
        metadata = response.get("ResponseMetadata") or {}
        retried = metadata.get("RetryAttempts") or 0
        retried = retried if isinstance(retried, int) else 0
        self.calls[operation] += 1 + retried
        self.retries[operation] += retried

    def add(self, other: CallStats) -> None:
        self.calls.update(other.calls)
        self.retries.update(other.retries)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {op: {"calls": self.calls[op], "retries": self.retries[op]} for op in sorted(self.calls)}


def iter_findings(
    client: Any,
    criteria: Mapping[str, Any],
    *,
    stats: CallStats | None = None,
    on_page: Callable[[int], None] | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[dict[str, Any]]:
    """Every finding `ListFindings` returns for `criteria`, page after page (the `list_findings` paginator);
    `on_page(n)` after each page of n findings."""
    paginator = client.get_paginator("list_findings")
    pages = paginator.paginate(filterCriteria=dict(criteria), PaginationConfig={"PageSize": page_size})
    for page in pages:
        if stats is not None:
            stats.record(LIST_FINDINGS, page)
        findings = page.get("findings") or []
        if on_page is not None:
            on_page(len(findings))
        yield from findings


def count_findings(
    client: Any, vulnerability_ids: Sequence[str], *, accounts: Sequence[str] = (), stats: CallStats | None = None
) -> int:
    """How many ACTIVE findings Inspector holds for these ids (`ListFindingAggregations`, TITLE, summed over
    titles and accounts): the total of a progress bar. Windows KB findings (related ids) are not counted."""
    total = 0
    paginator = client.get_paginator("list_finding_aggregations")
    for ids in chunks(list(vulnerability_ids)):
        for account_chunk in chunks(list(accounts)):
            request: dict[str, Any] = {
                "aggregationType": "TITLE",
                "aggregationRequest": {"titleAggregation": {"vulnerabilityIds": string_filters(ids)}},
                "PaginationConfig": {"PageSize": PAGE_SIZE},
            }
            if account_chunk:
                request["accountIds"] = string_filters(account_chunk)
            for page in paginator.paginate(**request):
                if stats is not None:
                    stats.record(LIST_AGGREGATIONS, page)
                for response in page.get("responses") or []:
                    counts = (response.get("titleAggregation") or {}).get("severityCounts") or {}
                    all_count = counts.get("all")
                    total += all_count if isinstance(all_count, int) else 0
    return total


def fetch_affected(
    client: Any,
    queries: Sequence[InspectorQuery],
    *,
    cves: Collection[str] | None = None,
    stats: CallStats | None = None,
    on_page: Callable[[int], None] | None = None,
) -> list[AffectedResource]:
    """Runs `queries` and returns their rows (`affected_from_inspector`), each finding once (by `findingArn`)
    even when several queries return it. `cves`: the ids asked for (None: those of the queries, or, for queries
    without ids such as the digest's, each finding's own id)."""
    seen: set[str] = set()
    rows: list[AffectedResource] = []
    asked = frozenset(i for q in queries for i in q.vulnerability_ids)
    wanted = cves if cves is not None else (asked or None)
    for query in queries:
        for finding in iter_findings(client, query.filter_criteria, stats=stats, on_page=on_page):
            arn = finding.get("findingArn")
            if isinstance(arn, str):
                if arn in seen:
                    continue
                seen.add(arn)
            rows.extend(affected_from_inspector(finding, wanted))
    return rows


# ------------------------------------------------------------------------------------------ findings → rows


def matched_ids(vulnerability_id: str | None, related: Sequence[Any], wanted: Collection[str] | None) -> list[str]:
    """The ids asked for that a finding is about: its own id, and those among its related ids (in that order)."""
    if wanted is None:
        return [vulnerability_id] if vulnerability_id else []
    found = [vulnerability_id] if vulnerability_id in wanted else []
    found += [r for r in related if isinstance(r, str) and r in wanted and r not in found]
    return [f for f in found if f]


def _version_key(version: Any) -> tuple[int, ...]:
    parts = []
    for part in str(version or "").split("."):
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def pick_cvss(finding: Mapping[str, Any]) -> tuple[float | None, str | None, str | None]:
    """(score, version, source): Inspector's adjusted CVSS (`inspectorScoreDetails.adjustedCvss`) when it has one,
    else the highest `packageVulnerabilityDetails.cvss` entry (a newer CVSS version breaks a tie)."""
    adjusted = as_dict(as_dict(finding.get("inspectorScoreDetails")).get("adjustedCvss"))
    score = as_float(adjusted.get("score"))
    if score is not None:
        source = as_text(adjusted.get("scoreSource")) or as_text(adjusted.get("cvssSource"))
        return score, as_text(adjusted.get("version")), source
    best: tuple[float, tuple[int, ...], str | None, str | None] | None = None
    for entry in as_list(as_dict(finding.get("packageVulnerabilityDetails")).get("cvss")):
        entry = as_dict(entry)
        base = as_float(entry.get("baseScore"))
        if base is None:
            continue
        candidate = (
            base,
            _version_key(entry.get("version")),
            as_text(entry.get("version")),
            as_text(entry.get("source")),
        )
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is None:
        return None, None, None
    return best[0], best[2], best[3]


def package_version(package: Mapping[str, Any]) -> str | None:
    """`epoch:version-release` as the package manager prints it (epoch only when not 0)."""
    version = as_text(package.get("version"))
    if version is None:
        return None
    release = as_text(package.get("release"))
    epoch = package.get("epoch")
    text = f"{version}-{release}" if release else version
    return f"{epoch}:{text}" if isinstance(epoch, int) and epoch else text


def fixed_version(value: Any) -> str | None:
    """Inspector's `fixedInVersion`, None when there is no fix ("NotAvailable")."""
    text = as_text(value)
    if text is None or text.strip().upper() in NO_FIX_VALUES:
        return None
    return text


def _layer_name(arn: str) -> str:
    """`arn:aws:lambda:region:account:layer:NAME:VERSION` → `NAME:VERSION`."""
    parts = arn.split(":")
    return ":".join(parts[6:8]) if len(parts) >= 8 and parts[5] == "layer" else arn


def resource_label(resource: Mapping[str, Any], package: Mapping[str, Any] | None = None) -> str:
    """What a person recognizes: `repository:tag,tag` for an image, the function name (and the layer the package
    came from) for a Lambda function, `i-… (Name tag)` for an instance; else the resource id."""
    details = as_dict(resource.get("details"))
    resource_id = str(resource.get("id") or "?")
    kind = resource.get("type")
    if kind == ECR_IMAGE:
        image = as_dict(details.get("awsEcrContainerImage"))
        repository = as_text(image.get("repositoryName")) or resource_id
        tags = [t for t in as_list(image.get("imageTags")) if isinstance(t, str)]
        if tags:
            return f"{repository}:{','.join(tags)}"
        digest = as_text(image.get("imageHash")) or ""
        return f"{repository}@{digest[:19]}" if digest else repository
    if kind == LAMBDA_FUNCTION:
        function = as_dict(details.get("awsLambdaFunction"))
        name = as_text(function.get("functionName")) or function_name(resource_id)
        layer = as_text((package or {}).get("sourceLambdaLayerArn"))
        return f"{name} (layer {_layer_name(layer)})" if layer else name
    if kind == EC2_INSTANCE:
        tag = as_text(as_dict(resource.get("tags")).get("Name"))
        return f"{resource_id} ({tag})" if tag else resource_id
    return resource_id


def _exploit(value: Any) -> bool | None:
    return {"YES": True, "NO": False}.get(value) if isinstance(value, str) else None


def affected_from_inspector(finding: Mapping[str, Any], cves: Collection[str] | None = None) -> list[AffectedResource]:
    """One row per resource × vulnerable package × id asked for (`cves`; None: the finding's own id). A finding
    that is not a package vulnerability, or about none of `cves`, gives no row. Absent fields give None, never an
    error: real findings vary."""
    details = as_dict(finding.get("packageVulnerabilityDetails"))
    vulnerability_id = as_text(details.get("vulnerabilityId"))
    ids = matched_ids(vulnerability_id, as_list(details.get("relatedVulnerabilities")), cves)
    if not ids:
        return []
    cvss, cvss_version, cvss_source = pick_cvss(finding)
    packages = [as_dict(p) for p in as_list(details.get("vulnerablePackages"))] or [{}]
    account = as_text(finding.get("awsAccountId")) or "?"
    arn = as_text(finding.get("findingArn"))
    common: dict[str, Any] = {
        "account": account,
        "cvss": cvss,
        "cvss_version": cvss_version,
        "cvss_source": cvss_source,
        "inspector_score": as_float(finding.get("inspectorScore")),
        "epss": as_float(as_dict(finding.get("epss")).get("score")),
        "exploit_available": _exploit(finding.get("exploitAvailable")),
        "fix_available": as_text(finding.get("fixAvailable")),
        "severity": as_text(finding.get("severity")),
        "first_observed": iso_time(finding.get("firstObservedAt")),
        "last_observed": iso_time(finding.get("lastObservedAt")),
        "updated": iso_time(finding.get("updatedAt")),
        "status": as_text(finding.get("status")),
        "sources": frozenset({SOURCE_INSPECTOR}),
        "finding_ids": (arn,) if arn else (),
        "vulnerability_id": vulnerability_id,
    }
    rows = []
    for resource in as_list(finding.get("resources")):
        resource = as_dict(resource)
        resource_id = as_text(resource.get("id"))
        if resource_id is None:
            continue
        image = as_dict(as_dict(resource.get("details")).get("awsEcrContainerImage"))
        in_use = image.get("inUseCount")
        for package in packages:
            for cve in ids:
                rows.append(
                    AffectedResource(
                        cve=cve,
                        region=as_text(resource.get("region")),
                        resource_type=as_text(resource.get("type")) or "UNKNOWN",
                        resource_id=resource_id,
                        resource_label=resource_label(resource, package),
                        package=as_text(package.get("name")),
                        installed_version=package_version(package),
                        fixed_version=fixed_version(package.get("fixedInVersion")),
                        in_use_count=in_use if isinstance(in_use, int) and not isinstance(in_use, bool) else None,
                        **common,
                    )
                )
    return rows
