"""`findings-router cve CVE-2021-44228 [ID...] [--env ENV] [--regions a,b] [--output table|json|csv] [--since DATE]`:
every resource affected by these CVEs across the organization, from Amazon Inspector (cross-checked with Security
Hub), with the account and its environment, Region, resource, package, installed and fixed version, CVSS, Inspector
score, EPSS, exploit and fix availability, first and last observed, status; then a summary (docs/psirt.md).

It reads, never writes. Run it from the Inspector / Security Hub delegated administrator account (or with a role
there): a member account sees only its own findings. The work is `findings_router.psirt.sweep`; this module reads
the options, prints, and chooses the exit status: 0 no affected resource, 1 affected resources found, 2 usage or AWS
error (one line, no traceback).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from findings_router.psirt.model import COLUMNS, AffectedResource, csv_cell, normalize_vulnerability_id
from findings_router.psirt.model import resource_type_label as type_label
from findings_router.psirt.report import CHANGE_FIXED, Summary, apply_since, summarize
from findings_router.psirt.sweep import (
    SOURCE_CHOICES,
    ClientFactory,
    SweepError,
    SweepRequest,
    SweepResult,
    client_factory,
    since_iso,
    sweep,
)
from findings_router.settings.schema import Policy
from findings_router_local.tables import table_lines

OUTPUTS = ("table", "json", "csv")
PROGRESS_INTERVAL = 0.1
RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
SHORT_TYPES = {"AWS_ECR_CONTAINER_IMAGE": "ECR", "AWS_LAMBDA_FUNCTION": "Lambda", "AWS_EC2_INSTANCE": "EC2"}
SHORT_SOURCES = {"inspector": "insp", "securityhub-v2": "sh2", "securityhub": "sh1"}
CELL = 40  # the widest a resource label gets before the terminal fit
MIN_CELL = 14  # a terminal fit never clips a cell to less (an account id, a CVE id stay whole)


class CveError(Exception):
    """A one-line usage or AWS problem; exit status 2."""


# ------------------------------------------------------------------------------------------ options


def read_ids(given: Sequence[str], stdin: TextIO) -> list[str]:
    """The ids to look for, as Inspector spells them, without duplicates; `-` reads more from `stdin` (separated by
    whitespace or commas, `#` starts a comment)."""
    raw: list[str] = []
    for item in given:
        if item == "-":
            for line in stdin.read().splitlines():
                raw += line.split("#", 1)[0].replace(",", " ").split()
        else:
            raw += item.replace(",", " ").split()
    ids: list[str] = []
    for text in raw:
        normalized = normalize_vulnerability_id(text)
        if normalized is None:
            raise CveError(
                f"{text!r} is not a vulnerability id Inspector reports: CVE-YYYY-NNNN, KBNNNNNNN or GHSA-xxxx-xxxx-xxxx"
            )
        if normalized not in ids:
            ids.append(normalized)
    if not ids:
        raise CveError("no vulnerability id given (an id, or - to read them from standard input)")
    return ids


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """`7d`, `24h`, `90m`, `2w` before `now`, or an ISO date (midnight UTC) or date and time (UTC unless it says)."""
    match = RELATIVE.match(text.strip().lower())
    if match:
        return now - dt.timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CveError(f"--since {text!r}: expected a date (2026-11-20), a date and time, or 7d / 24h / 90m") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if moment > now:
        raise CveError(f"--since {text}: in the future")
    return moment.astimezone(dt.UTC)


def environments_of(policies: Iterable[Policy]) -> dict[str, str]:
    """account → environment, from every policy (an account of `["*"]` is nobody's in particular)."""
    return {a: p.environment for p in policies if not p.all_accounts for a in p.accounts}


def regions_for(given: str | None, region: str | None, policy: Policy | None, session_region: str | None) -> list[str]:
    """--regions, else --region, else the policy's `psirt_digest.regions`, else its `region`, else the session's."""
    if given:
        regions = [r.strip() for r in given.split(",") if r.strip()]
        if not regions:
            raise CveError("--regions: no Region given")
        return list(dict.fromkeys(regions))
    if region:
        return [region]
    if policy is not None and policy.psirt_digest.regions:
        return list(policy.psirt_digest.regions)
    if policy is not None and policy.region:
        return [policy.region]
    if session_region:
        return [session_region]
    raise CveError(
        "no AWS region: pass --regions (or --region), set AWS_DEFAULT_REGION, or set `region:` in the policy file"
    )


def make_clients(session: Any, endpoint_url: str | None) -> ClientFactory:
    """The sweep's clients (standard retries, up to 10 of them); tests replace this to serve them in-process."""
    return client_factory(session, endpoint_url=endpoint_url)


# ------------------------------------------------------------------------------------------ progress


class ProgressLine:
    """`[#####        ] 1,200/10,000 findings` on stderr (just `1,200 findings` while the total is unknown),
    redrawn at most every `interval` seconds, ended by `finish`."""

    WIDTH = 30

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self.drawn_at: float | None = None
        self.done = 0
        self.total: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        now = self.clock()
        if self.drawn_at is None or now - self.drawn_at >= PROGRESS_INTERVAL:
            self.drawn_at = now
            self._draw(final=False)

    def line(self) -> str:
        if not self.total:
            return f"{self.done:,} findings"
        filled = self.WIDTH * min(self.done, self.total) // self.total
        return f"[{'#' * filled}{' ' * (self.WIDTH - filled)}] {self.done:,}/{self.total:,} findings"

    def _draw(self, final: bool) -> None:
        self.stream.write("\r" + self.line() + ("\n" if final else ""))
        self.stream.flush()

    def finish(self) -> None:
        if self.drawn_at is not None:
            self._draw(final=True)


# ------------------------------------------------------------------------------------------ output


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _package(name: str | None) -> str:
    """A Maven `group:artifact` shortened to the artifact (the table; json and csv keep it whole)."""
    return "-" if not name else name.rsplit(":", 1)[-1]


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


TABLE_COLUMNS = (
    "change",
    "cve",
    "account",
    "env",
    "region",
    "resource",
    "package",
    "fixed in",
    "CVSS",
    "CVSS by",
    "insp",
    "EPSS",
    "exploit",
    "first seen",
    "source",
)
NEVER_FOLDED = ("account", "resource", "package", "fixed in", "CVSS")  # the columns a row is read by


def table_cells(row: AffectedResource) -> dict[str, str]:
    """A row as table cells: the resource with its kind, the package with installed → fixed version (Maven group
    and long labels shortened; json and csv keep everything whole)."""
    kind = SHORT_TYPES.get(row.resource_type, type_label(row.resource_type))
    label = row.resource_label if len(row.resource_label) <= CELL else row.resource_label[: CELL - 1] + "…"
    via = f"via {row.vulnerability_id}: " if row.vulnerability_id not in (None, row.cve) else ""
    return {
        "change": row.change or "-",
        "cve": row.cve,
        "account": row.account,
        "env": row.environment or "-",
        "region": row.region or "-",
        "resource": f"{kind} {label}",
        "package": f"{via}{_package(row.package)} {row.installed_version or '?'}",
        "fixed in": row.fixed_version or "no fix",
        "CVSS": _num(row.cvss),
        "CVSS by": " ".join(x for x in (row.cvss_version and f"v{row.cvss_version}", row.cvss_source) if x) or "-",
        "insp": _num(row.inspector_score),
        "EPSS": _num(row.epss, 3),
        "exploit": _yes(row.exploit_available),
        "first seen": (row.first_observed or "-")[:10],
        "source": "+".join(SHORT_SOURCES.get(s, s) for s in sorted(row.sources, key=_source_order)),
    }


def _source_order(source: str) -> int:
    order = list(SHORT_SOURCES)
    return order.index(source) if source in order else len(order)


def table_layout(
    rows: Sequence[AffectedResource], *, since: bool, said: Sequence[str] = ()
) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, cells, folded): every column but those whose value is the same in every row (when there are two
    rows or more), which are folded into one line above the table (`env prod · EPSS 0.944 · …`), unless the line
    above already says it (`said`). `change` only with --since."""
    records = [table_cells(r) for r in rows]
    columns = [c for c in TABLE_COLUMNS if since or c != "change"]
    folded: list[str] = []
    if len(records) > 1:
        if all(r["insp"] == r["CVSS"] for r in records):
            folded.append("insp(ector score) = CVSS")
            columns.remove("insp")
        for column in list(columns):
            values = {r[column] for r in records}
            if len(values) == 1 and column not in NEVER_FOLDED and column != "change":
                if column not in said:
                    folded.append(f"{column} {values.pop()}")
                columns.remove(column)
    return columns, [[r[c] for c in columns] for r in records], folded


def _counts(counts: dict[str, int], label: Callable[[str], str] = str) -> str:
    return " · ".join(f"{label(k)} {n}" for k, n in counts.items())


def summary_lines(summary: Summary, result: SweepResult, environments: dict[str, str]) -> list[str]:
    """The summary under the table: per CVE, totals, per account (with its environment), per type, sources, calls."""
    if not summary.rows:
        return []
    plural = "s" if summary.accounts != 1 else ""
    lines = [
        f"{summary.rows} affected (resource × package × CVE) on {summary.resources} resources, {summary.accounts} "
        f"account{plural}: fix available {summary.with_fix}, no fix {summary.without_fix} · exploit known "
        f"{summary.exploit_known} · max CVSS {_num(summary.max_cvss)}, EPSS {_num(summary.max_epss, 3)}",
        *([f"  per CVE      {_counts(summary.per_cve)}  (resources)"] if len(summary.per_cve) > 1 else []),
        f"  per account  {_counts(summary.per_account, lambda a: a + ' (' + environments.get(a, '-') + ')')}",
        f"  per type     {_counts(summary.per_resource_type, type_label)}",
    ]
    sources = f"Inspector {summary.per_source.get('inspector', 0)}"
    if summary.confirmed:
        sources += f", confirmed by Security Hub {summary.confirmed}"
    if summary.securityhub_only:
        sources += f", only in Security Hub {summary.securityhub_only}"
    lines.append(f"  sources      {sources} · API calls {api_calls(result)}")
    return lines


def api_calls(result: SweepResult) -> str:
    stats = result.stats
    parts = ", ".join(f"{op.split(':', 1)[1]} {n}" for op, n in sorted(stats.calls.items()))
    retries = sum(stats.retries.values())
    return f"{stats.total} ({parts}" + (f"; {retries} retried after throttling or errors" if retries else "") + ")"


def since_line(summary: Summary, since: dt.datetime, shown: int, total: int) -> str:
    changes = summary.changes
    counts = ", ".join(f"{changes.get(k, 0)} {k}" for k in ("new", "changed", "fixed"))
    hidden = total - shown
    return f"since {since_iso(since)}: {counts}" + (f" ({hidden} unchanged not shown)" if hidden else "")


def document(
    request: SweepRequest, result: SweepResult, rows: list[AffectedResource], summary: Summary, environment: str | None
) -> dict[str, Any]:
    return {
        "cves": list(request.cves),
        "environment": environment,
        "accounts": list(request.accounts),
        "regions": list(request.regions),
        "source": request.source,
        "since": since_iso(request.since) if request.since else None,
        "rows": [r.to_dict() for r in rows],
        "summary": summary.to_dict(),
        "api_calls": result.stats.to_dict(),
        "sources_by_region": result.sources,
        "notes": result.notes,
    }


@dataclass
class CveRun:
    """What one run needs besides the sweep: where to write, the terminal width, and who owns which account."""

    output: str
    out: TextIO
    err: TextIO
    environments: dict[str, str]
    environment: str | None = None
    expected_accounts: tuple[str, ...] = ()
    width: int | None = None


def report(request: SweepRequest, result: SweepResult, run: CveRun) -> int:
    """Writes the report; the exit status: 1 when some resource is affected, else 0."""
    rows = result.rows
    if request.since is not None:
        rows = apply_since(rows, since_iso(request.since), result.closed)
    summary = summarize(rows)
    notes = list(result.notes)
    seen = {r.account for r in rows if r.change != CHANGE_FIXED}
    if len(run.expected_accounts) > 1 and len(seen) == 1:
        notes.append(
            f"only {next(iter(seen))} of {run.environment}'s {len(run.expected_accounts)} accounts has affected "
            "resources: if you expected more, check that this runs in the Inspector delegated administrator account "
            "(a member account sees only its own findings)"
        )
    if run.output == "json":
        run.out.write(json.dumps(document(request, result, rows, summary, run.environment), indent=1) + "\n")
    elif run.output == "csv":
        writer = csv.writer(run.out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([csv_cell(getattr(row, c)) for c in COLUMNS])
    else:
        _write_table(request, result, rows, summary, run)
    for note in notes:
        run.err.write(f"note: {note}\n")
    run.out.flush()
    return 1 if summary.rows else 0


def _scope(request: SweepRequest, run: CveRun) -> str:
    if run.environment is not None:
        who = f"{run.environment}'s accounts ({', '.join(request.accounts) or 'all'})"
    else:
        who = "every account this identity administers"
    return f"{', '.join(request.cves)} in {who}, {', '.join(request.regions)}"


def _write_table(
    request: SweepRequest, result: SweepResult, rows: list[AffectedResource], summary: Summary, run: CveRun
) -> None:
    out = run.out
    if not summary.rows and not summary.changes:
        out.write(
            f"no affected resource: {_scope(request, run)} (API calls {api_calls(result)}). Inspector reports only "
            "what it scans, Linux CVEs within 24 h and Windows within 48 h of publication (docs/psirt.md).\n"
        )
        return
    shown = [r for r in rows if r.change is not None] if request.since is not None else rows
    said = ["cve"] if len(request.cves) == 1 else []
    said += ["region"] if len(request.regions) == 1 else []
    header, cells, folded = table_layout(shown, since=request.since is not None, said=said)
    out.write(f"{_scope(request, run)}:\n")
    if folded:
        out.write(f"every row: {' · '.join(folded)}\n")
    for line in table_lines(header, cells, "(nothing changed)", max_width=run.width, min_width=MIN_CELL):
        out.write(line + "\n")
    if request.since is not None:
        out.write(since_line(summary, request.since, len(shown), len(rows)) + "\n")
    for line in summary_lines(summary, result, run.environments):
        out.write(line + "\n")


def terminal_width(out: TextIO) -> int | None:
    from findings_router_local.replay import terminal_width as width

    return width(out)


def run_cve(
    request: SweepRequest,
    clients: ClientFactory,
    run: CveRun,
    *,
    progress: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """The sweep, then the report. Raises `CveError` (one line) when AWS cannot answer completely."""
    bar = ProgressLine(run.err, clock=clock) if progress else None
    try:
        result = sweep(request, clients, environments=run.environments, progress=bar)
    except SweepError as exc:
        raise CveError(str(exc)) from None
    finally:
        if bar is not None:
            bar.finish()
    return report(request, result, run)


def cve_command(
    args: Any,
    *,
    policies: dict[str, Policy],
    policy: Policy | None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
    now: dt.datetime | None = None,
) -> int:
    """`findings-router cve` from its parsed options: `policies`, every policy of the config directory (for the
    environment column); `policy`, the --env one (None: every account)."""
    from findings_router_local.aws_access import AwsClients

    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    now = now or dt.datetime.now(dt.UTC)
    ids = read_ids(args.ids, stdin)
    since = parse_since(args.since, now) if args.since else None
    aws = AwsClients(profile=args.profile, region=args.region, endpoint_url=args.endpoint_url)
    regions = regions_for(args.regions, args.region, policy, aws.session.region_name)
    accounts = tuple(policy.accounts) if policy is not None and not policy.all_accounts else ()
    show_progress = args.progress if args.progress is not None else err.isatty()
    request = SweepRequest(
        cves=tuple(ids),
        regions=tuple(regions),
        accounts=accounts,
        source=args.source,
        since=since,
        count_first=show_progress,
    )
    run = CveRun(
        output=args.output,
        out=out,
        err=err,
        environments=environments_of(policies.values()),
        environment=policy.environment if policy is not None else None,
        expected_accounts=accounts,
        width=terminal_width(out) if args.output == "table" else None,
    )
    return run_cve(request, make_clients(aws.session, args.endpoint_url), run, progress=show_progress)


__all__ = ["OUTPUTS", "SOURCE_CHOICES", "CveError", "cve_command", "read_ids", "run_cve"]
