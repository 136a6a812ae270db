"""`findings-router replay`: the dry run. What would this policy have done with these findings?

Reads EventBridge events, `aws securityhub get-findings` output, bare findings, JSON arrays or JSON lines.
Makes no AWS call: dedup state lives in memory across all files, and deliveries are only recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from findings_router.config import Policy
from findings_router.model import Finding, FindingError
from findings_router.normalize import clean_json_text, normalize_document
from findings_router.pagerduty import RecordingNotifier
from findings_router.policy import CompiledPolicy
from findings_router.router import FindingsRouter, Routed
from findings_router.store import InMemoryDedupStore
from findings_router.storm import InMemoryStormCounter
from findings_router_local.tables import clip, render_table

BATCH = 100  # findings per batched state read, as in the Lambda
PROGRESS_THRESHOLD = 1000  # findings; shorter replays finish before a bar would help

COLUMNS = (
    "finding_id",
    "dedup_key",
    "format",
    "product",
    "severity",
    "account",
    "region",
    "resource_ids",
    "cve_ids",
    "max_cvss",
    "decision",
    "reason",
)


@dataclass(frozen=True)
class InputProblem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def record_of(routed: Routed) -> dict[str, Any]:
    f = routed.finding
    return {
        "finding_id": f.id,
        "dedup_key": routed.decision.key,
        "format": f.format.value,
        "product": f.product_name,
        "severity": f.severity.value,
        "account": f.account,
        "region": f.region,
        "resource_ids": list(f.resource_ids),
        "cve_ids": list(f.cve_ids),
        "max_cvss": f.max_cvss,
        "decision": routed.decision.outcome,
        "reason": routed.decision.reason,
    }


def read_documents(path: Path) -> Iterator[tuple[str, Any]]:
    """(position, parsed JSON) for a file holding one JSON document or JSON lines. Raises InputProblem-ish errors."""
    text = path.read_text(encoding="utf-8")
    try:
        yield str(path), _load(text)
        return
    except json.JSONDecodeError as whole_error:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) <= 1:
            raise ValueError(
                f"line {whole_error.lineno} column {whole_error.colno}: not JSON: {whole_error.msg}"
            ) from None
    except (ValueError, RecursionError) as exc:  # nesting too deep, an integer of thousands of digits
        raise ValueError(f"not usable JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    for n, line in lines:
        try:
            yield f"{path}:{n}", _load(line)
        except json.JSONDecodeError as exc:
            yield f"{path}:{n}", ValueError(f"column {exc.colno}: not JSON: {exc.msg}")
        except (ValueError, RecursionError) as exc:
            yield f"{path}:{n}", ValueError(f"not usable JSON: {type(exc).__name__}: {str(exc)[:200]}")


def _load(text: str) -> Any:
    value = json.loads(text)
    return clean_json_text(value) if "\\u" in text else value


class Replayer:
    def __init__(self, policy: Policy, now: dt.datetime | None = None) -> None:
        self.store = InMemoryDedupStore()
        self.notifier = RecordingNotifier()
        self.storms = InMemoryStormCounter()
        self.router = FindingsRouter(CompiledPolicy(policy), self.store, self.notifier, storms=self.storms)
        self.now = now or dt.datetime.now(dt.UTC)
        self.problems: list[InputProblem] = []

    def normalize_document(self, where: str, doc: Any) -> list[Finding]:
        if isinstance(doc, Exception):
            self.problems.append(InputProblem(where, str(doc)))
            return []
        try:
            normalized = normalize_document(doc)
        except FindingError as exc:
            self.problems.append(InputProblem(where, str(exc)))
            return []
        for error in normalized.errors:
            self.problems.append(InputProblem(where, str(error)))
        return normalized.findings

    def normalize_files(self, paths: list[Path]) -> list[Finding]:
        """Every finding of every file, in order; problems are collected, never raised."""
        findings: list[Finding] = []
        for path in paths:
            try:
                for where, doc in read_documents(path):
                    findings.extend(self.normalize_document(where, doc))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                self.problems.append(InputProblem(str(path), str(exc)))
        return findings

    def route(self, findings: list[Finding]) -> Iterator[Routed]:
        for start in range(0, len(findings), BATCH):
            chunk = findings[start : start + BATCH]
            self.router.prefetch(chunk)
            for f in chunk:
                yield self.router.route(f, finding_time(f, self.now))


def finding_time(finding: Finding, default: dt.datetime) -> dt.datetime:
    """Replay on the findings' own timeline (their last update), so TTLs, suppression expiry and storm windows
    behave as they would have then."""
    stamp = finding.updated_at or finding.last_observed_at
    if stamp:
        try:
            parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
            parsed.astimezone(dt.UTC)  # at the edge of time (year 1 or 9999 with an offset) this overflows
        except (ValueError, OverflowError):
            return default
        if not 1970 <= parsed.year <= 9000:  # TTL arithmetic needs room on both sides
            return default
        return parsed
    return default


class ProgressBar:
    """A one-line bar on stderr for long replays: `[########            ]  4,000/10,000 findings`."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, every: int = 200) -> None:
        self.total = total
        self.stream = stream
        self.every = every

    def update(self, done: int) -> None:
        if done % self.every and done != self.total:
            return
        filled = self.WIDTH * done // max(self.total, 1)
        self.stream.write(f"\r[{'#' * filled}{' ' * (self.WIDTH - filled)}] {done:,}/{self.total:,} findings")
        if done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    return str(value)


def render_records(records: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS, width: int = 48) -> str:
    return render_table(columns, [[clip(_cell(r[c]), width) for c in columns] for r in records], "(no findings)")


def summarize(records: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["decision"]] = counts.get(r["decision"], 0) + 1
    parts = [f"{counts.get(k, 0)} {k}" for k in ("page", "notify", "resolve", "duplicate", "drop")]
    return f"{len(records)} findings: " + ", ".join(parts)


def run_replay(
    policy: Policy,
    paths: list[Path],
    fmt: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
    progress: bool = False,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    replayer = Replayer(policy)
    findings = replayer.normalize_files(paths)
    bar = ProgressBar(len(findings), err) if progress and len(findings) >= PROGRESS_THRESHOLD else None
    records: list[dict[str, Any]] = []
    for routed in replayer.route(findings):
        record = record_of(routed)
        records.append(record)
        if fmt == "json":
            out.write(json.dumps(record) + "\n")
        if bar is not None:
            bar.update(len(records))
    if fmt == "table":
        out.write(render_records(records) + "\n")
        out.write(summarize(records) + "\n")
    for problem in replayer.problems:
        err.write(f"error: {problem}\n")
    return 2 if replayer.problems else 0
