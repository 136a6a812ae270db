"""A PSIRT sweep: every resource affected by some CVEs, in every Region asked for, from every source.

Per Region (Inspector's delegated administrator is regional; so is a Security Hub without cross-Region
aggregation): Inspector `ListFindings` first (`--source auto` or `inspector`; the authoritative source, with image,
function and instance details and a fixed version per package), then Security Hub `GetFindingsV2` (`auto`: a
cross-check, which also brings vulnerabilities from other scanners), falling back to `GetFindings` (v1, title
prefix) where v2 is not enabled. Rows are merged across sources (`report.merge`: one per resource × package × CVE,
Inspector's data first). Security Hub rows of a Region not asked for (a cross-Region aggregator answers for all its
linked Regions) are left out and counted, so that the report covers exactly the Regions asked for.

Clients come from a `ClientFactory` (service, region) → client. `client_factory` builds them with botocore's
**standard** retry mode and `max_attempts` 10 (botocore counts retries: 11 attempts). The sweep sends one request at a
time, so standard's jittered exponential backoff (1 s base for throttling, at most 20 s a wait: about a minute in all
on average, two at worst) rides out throttling, and the calls that are not throttled go at full speed. Adaptive mode
adds a client-side token bucket that, once throttled, paces every later call of the client; the AWS SDK reference
calls it experimental and for specialized use, and it would slow the rest of a 3 a.m. report for one throttled call
(the scheduled digest, which nobody waits for, may well prefer it). A call still throttled after the retries ends the
sweep with a message that says so (`SweepError`).

Errors are one line naming what is missing: the IAM action (`inspector2:ListFindings`, `securityhub:GetFindings`)
and that the command must run in (or with a role of) the Inspector / Security Hub delegated administrator account,
which alone sees every member account's findings. Under `auto`, a Security Hub failure does not end the sweep
(Inspector's answer stands): it becomes a note.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from findings_router.psirt import inspector, securityhub
from findings_router.psirt.model import AffectedResource, iso_time
from findings_router.psirt.report import merge, sort_rows, with_environments

Source = Literal["auto", "inspector", "securityhub"]
SOURCE_CHOICES: Final = ("auto", "inspector", "securityhub")
RETRIES: Final = {"mode": "standard", "max_attempts": 10}
ClientFactory = Callable[[str, str], Any]  # (service name, region) → a boto3 client
Progress = Callable[[int, int | None], None]  # (findings received so far, total expected when known)

ACCESS_DENIED: Final = frozenset(
    {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException"}
)
THROTTLED: Final = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "Throttling", "LimitExceededException", "RequestLimitExceeded"}
)
# GetFindingsV2 errors after which GetFindings (v1) is asked: v2 not enabled (the exact error is not documented), or
# denied (Security Hub answers AccessDenied for more than IAM; v1 then says whether the permission is really missing).
V2_UNAVAILABLE: Final = (
    frozenset({"ValidationException", "InvalidAccessException", "ResourceNotFoundException"}) | ACCESS_DENIED
)
SECURITY_HUB_OFF: Final = frozenset({"InvalidAccessException", "ResourceNotFoundException"})
DELEGATED_ADMIN = (
    "run it from the {service} delegated administrator account (or with a role there): only that account sees every "
    "member account's findings"
)


class SweepError(Exception):
    """A one-line reason the sweep cannot give a complete answer."""


def client_factory(
    session: Any, *, endpoint_url: str | None = None, config: Any = None, on_client: Callable[[Any], None] | None = None
) -> ClientFactory:
    """Clients of `session` (a boto3.Session), one per service and Region, with standard retries (up to 10 retries);
    `on_client`: called with each new client (tests attach a transport to it)."""
    from botocore.config import Config

    settings = config or Config(retries=dict(RETRIES), connect_timeout=5, read_timeout=30)  # type: ignore[arg-type]
    made: dict[tuple[str, str], Any] = {}

    def make(service: str, region: str) -> Any:
        key = (service, region)
        if key not in made:
            client = session.client(service, region_name=region, endpoint_url=endpoint_url, config=settings)
            if on_client is not None:
                on_client(client)
            made[key] = client
        return made[key]

    return make


@dataclass(frozen=True, slots=True)
class SweepRequest:
    """What to look for: `cves` (CVE, KB or GHSA ids) in `regions`, of `accounts` (empty: every account the
    caller administers). `since`: also the findings closed since then (fixed), for `report.apply_since`.
    `count_first`: ask Inspector how many findings to expect (`ListFindingAggregations`), for a progress bar."""

    cves: tuple[str, ...]
    regions: tuple[str, ...]
    accounts: tuple[str, ...] = ()
    source: Source = "auto"
    since: dt.datetime | None = None
    count_first: bool = False


@dataclass
class SweepResult:
    """Merged, sorted active rows (environments filled in), the closed rows (with `since`), the API calls made,
    notes for the reader (a fallback, a cross-check that could not be made), which sources answered in which Region,
    and the Security Hub rows left out because their Region was not asked for (Region → rows)."""

    rows: list[AffectedResource]
    closed: list[AffectedResource] = field(default_factory=list)
    stats: inspector.CallStats = field(default_factory=inspector.CallStats)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, list[str]] = field(default_factory=dict)
    elsewhere: Counter[str] = field(default_factory=Counter)


def _code(exc: ClientError) -> tuple[str, str]:
    error = exc.response.get("Error") or {}
    return str(error.get("Code") or "error"), str(error.get("Message") or "").strip()


def _attempts(exc: ClientError) -> int:
    metadata: Mapping[str, Any] = exc.response.get("ResponseMetadata") or {}
    retried = metadata.get("RetryAttempts")
    return (retried if isinstance(retried, int) else 0) + 1


def describe_error(exc: Exception, *, action: str, service: str, region: str) -> str:
    """One line for an error of `action` (e.g. inspector2:ListFindings) in `region`."""
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: configure a profile (--profile) or the AWS_* variables"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --regions or --region, or set AWS_DEFAULT_REGION"
    if isinstance(exc, ClientError):
        code, message = _code(exc)
        detail = f" ({message})" if message else ""
        if code in ACCESS_DENIED:
            admin = DELEGATED_ADMIN.format(service=service)
            return f"{action} denied in {region}{detail}: allow {action} for this identity, and {admin}"
        if code in THROTTLED:
            return (
                f"{action} in {region} is still throttled after {_attempts(exc)} attempts ({code}): wait a minute "
                "and run it again, or ask for fewer Regions at a time"
            )
        return f"{action} failed in {region}: {code}{detail}"
    if isinstance(exc, BotoCoreError):
        return f"{action} in {region}: {exc}"
    return f"{action} in {region}: {type(exc).__name__}: {exc}"


class _Counter:
    """Findings received so far, reported to `progress` after every page. The total, when Inspector said how many
    to expect (`count_first`), is that (or what came, if more did: Windows KB findings are not counted in advance)
    plus the Security Hub findings received, whose number is not known in advance."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.inspector = 0
        self.securityhub = 0
        self.expected: int | None = None

    def page(self, findings: int) -> None:
        self.inspector += findings
        self._report()

    def securityhub_page(self, findings: int) -> None:
        self.securityhub += findings
        self._report()

    def _report(self) -> None:
        if self.progress is None:
            return
        total = None if self.expected is None else max(self.expected, self.inspector) + self.securityhub
        self.progress(self.inspector + self.securityhub, total)


def _inspector_region(
    request: SweepRequest, client: Any, region: str, result: SweepResult, counter: _Counter
) -> tuple[list[AffectedResource], list[AffectedResource]]:
    wanted = frozenset(request.cves)
    if request.count_first:
        try:
            expected = inspector.count_findings(client, request.cves, accounts=request.accounts, stats=result.stats)
            counter.expected = (counter.expected or 0) + expected
        except (ClientError, BotoCoreError):  # only for the progress bar: go on without a total
            pass
    try:
        queries = inspector.cve_queries(request.cves, accounts=request.accounts)
        active = inspector.fetch_affected(client, queries, cves=wanted, stats=result.stats, on_page=counter.page)
        closed: list[AffectedResource] = []
        if request.since is not None:
            queries = inspector.cve_queries(
                request.cves, accounts=request.accounts, status=inspector.STATUS_CLOSED, updated_since=request.since
            )
            closed = inspector.fetch_affected(client, queries, cves=wanted, stats=result.stats, on_page=counter.page)
    except (ClientError, BotoCoreError) as exc:
        raise SweepError(
            describe_error(exc, action=inspector.LIST_FINDINGS, service="Amazon Inspector", region=region)
        ) from None
    return active, closed


def _securityhub_findings(
    client: Any, operation: str, requests: Sequence[Mapping[str, Any]], result: SweepResult, counter: _Counter
) -> list[dict[str, Any]]:
    findings: list[dict[str, Any]] = []
    for request in requests:
        for page in securityhub.iter_pages(client, operation, request, stats=result.stats):
            counter.securityhub_page(len(page))
            findings.extend(f for f in page if isinstance(f, dict))
    return findings


def _securityhub_region(
    request: SweepRequest, client: Any, region: str, result: SweepResult, counter: _Counter
) -> tuple[list[AffectedResource], str | None]:
    """Security Hub's rows in `region` and which API answered (None: neither; a note or an error says why)."""
    wanted = frozenset(request.cves)
    strict = request.source == "securityhub"
    action = securityhub.GET_FINDINGS
    try:
        requests = securityhub.findings_v2_requests(request.cves, accounts=request.accounts)
        findings = _securityhub_findings(client, "get_findings_v2", requests, result, counter)
        return [r for f in findings for r in securityhub.affected_from_ocsf(f, wanted)], "GetFindingsV2"
    except ClientError as exc:
        code, message = _code(exc)
        if code not in V2_UNAVAILABLE:
            problem = describe_error(exc, action=action, service="Security Hub", region=region)
            if strict:
                raise SweepError(problem) from None
            result.notes.append(f"no Security Hub cross-check: {problem}")
            return [], None
        unavailable = (
            f"Security Hub v2 (GetFindingsV2) is not available in {region} ({code}: {message or 'no message'})"
        )
    except BotoCoreError as exc:
        problem = describe_error(exc, action=action, service="Security Hub", region=region)
        if strict:
            raise SweepError(problem) from None
        result.notes.append(f"no Security Hub cross-check: {problem}")
        return [], None
    try:
        requests = securityhub.findings_v1_requests(request.cves, accounts=request.accounts)
        findings = _securityhub_findings(client, "get_findings", requests, result, counter)
    except (ClientError, BotoCoreError) as exc:
        problem = describe_error(exc, action=action, service="Security Hub", region=region)
        if isinstance(exc, ClientError) and _code(exc)[0] in SECURITY_HUB_OFF:
            problem = f"Security Hub is not enabled in {region} ({_code(exc)[1] or _code(exc)[0]})"
        if strict:
            raise SweepError(problem) from None
        result.notes.append(f"no Security Hub cross-check: {problem} (and {unavailable})")
        return [], None
    result.notes.append(
        f"{unavailable}: used GetFindings (v1: title prefix, confirmed on the vulnerability ids; Windows KB findings "
        "are missed)"
    )
    return [r for f in findings for r in securityhub.affected_from_asff(f, wanted)], "GetFindings"


def _client(clients: ClientFactory, service: str, region: str) -> Any:
    try:
        return clients(service, region)
    except (BotoCoreError, ValueError) as exc:
        raise SweepError(f"a {service} client for {region}: {exc}") from None


def _sweep_region(
    request: SweepRequest, clients: ClientFactory, region: str, result: SweepResult, counter: _Counter
) -> tuple[list[AffectedResource], list[AffectedResource]]:
    """The active and closed rows of one Region, from every source the request names."""
    active: list[AffectedResource] = []
    closed: list[AffectedResource] = []
    answered: list[str] = []
    if request.source in ("auto", "inspector"):
        found, closed = _inspector_region(request, _client(clients, "inspector2", region), region, result, counter)
        active += found
        answered.append("ListFindings")
    if request.source in ("auto", "securityhub"):
        found, api = _securityhub_region(request, _client(clients, "securityhub", region), region, result, counter)
        for row in found:
            if row.region is not None and row.region not in request.regions:
                result.elsewhere[row.region] += 1
            else:
                active.append(row)
        if api is not None:
            answered.append(api)
    result.sources[region] = answered
    return active, closed


def sweep(
    request: SweepRequest,
    clients: ClientFactory,
    *,
    environments: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> SweepResult:
    """Every resource affected by `request.cves` in `request.regions` (see the module docstring). Raises
    `SweepError` (one line) when a source the answer depends on fails."""
    if not request.cves:
        raise ValueError("no vulnerability id to look for")
    if not request.regions:
        raise SweepError("no Region to look in: pass --regions or --region, or set AWS_DEFAULT_REGION")
    result = SweepResult(rows=[])
    counter = _Counter(progress)
    active: list[AffectedResource] = []
    closed: list[AffectedResource] = []
    for region in request.regions:
        found, fixed = _sweep_region(request, clients, region, result, counter)
        active += found
        closed += fixed
    if result.elsewhere:
        where = ", ".join(f"{r} ({n})" for r, n in sorted(result.elsewhere.items()))
        result.notes.append(
            f"Security Hub (a cross-Region aggregator) also reports affected resources in Regions not asked for: "
            f"{where}; ask for them too"
        )
    env_map = dict(environments or {})
    result.rows = sort_rows(with_environments(merge(active), env_map))
    result.closed = with_environments(merge(closed), env_map)
    return result


def since_iso(since: dt.datetime) -> str:
    """`since` as the rows' times are written (ISO UTC to the second)."""
    return iso_time(since) or since.isoformat()
