"""`findings-router shadow-report --env ENV --since 7d [--output table|json|csv]`: what the shadow policy would have
paged against what the live policy paged, from the environment's state table.

Shadow decisions (`mode: shadow`, rules with `shadow: true`) are recorded like live ones, under their own keys
(`fr1-shadow-<hash>` beside the live `fr1-<hash>`: the same finding, the same hash), so the two sides pair up per
problem. An episode counts for the period when it opened, escalated or was delivered after a silence since `--since`
(its `opened_at` or `last_notified_at`), with its action (page or notify) and what decided it (`rule`). A live episode
a silence held back counts as the page the policy decided (marked `held`): the report compares policies, not
silences. A finding a side dropped left no episode there: "-".

It reads the whole table once (a paginated, eventually consistent Scan: about one read unit per 8 KB of table), so
run it now and then, not in a loop. IAM: dynamodb:Scan on the table. Exit status: 0 when the two sides agree, 1 when
some finding differs, 2 on bad input or AWS errors.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from findings_router.adapters.state_table import item_to_state
from findings_router.domain.acks import is_finding_key
from findings_router.domain.episodes import DedupState
from findings_router.domain.keys import SHADOW_PREFIX, live_key
from findings_router.domain.model import Severity
from findings_router.domain.silences import SilenceError, parse_duration, parse_time
from findings_router.settings.schema import Policy
from findings_router_local.aws_access import aws_error
from findings_router_local.tables import clip, render_table
from infra.contract import resource_names

UNKNOWN_RULE = "(not recorded)"
CSV_COLUMNS = ("severity", "account", "finding_id", "title", "live", "live_rule", "shadow", "shadow_rule", "dedup_key")


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_since(text: str, now: dt.datetime) -> dt.datetime:
    """`7d`, `24h`, `90m` before `now`, or a date (UTC midnight) or a time."""
    text = text.strip()
    try:
        since = now - parse_duration(text)
    except SilenceError:
        try:
            since = parse_time(text)
        except SilenceError:
            raise SilenceError(f"--since {text!r}: expected 7d / 24h / 90m, a date (2026-11-20) or a time") from None
    if since > now:
        raise SilenceError(f"--since {text}: in the future")
    return since


@dataclass(frozen=True)
class Side:
    """What one side's episode of a problem did in the period: `page` or `notify` (or "-": nothing)."""

    action: str = "-"
    rule: str = "-"
    held: bool = False  # live only: a silence held the page back

    @property
    def text(self) -> str:
        return f"{self.action} (held by a silence)" if self.held else self.action


@dataclass(frozen=True)
class Difference:
    dedup_key: str
    finding_id: str
    account: str
    severity: str
    title: str
    live: Side
    shadow: Side


@dataclass
class RuleRow:
    rule: str
    live_page: int = 0
    live_notify: int = 0
    shadow_page: int = 0
    shadow_notify: int = 0


@dataclass
class ShadowReport:
    environment: str
    since: str
    live: dict[str, int] = field(default_factory=lambda: {"page": 0, "notify": 0})
    shadow: dict[str, int] = field(default_factory=lambda: {"page": 0, "notify": 0})
    rules: list[RuleRow] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "since": self.since,
            "live": self.live,
            "shadow": self.shadow,
            "rules": [asdict(r) for r in self.rules],
            "differences": [
                {**asdict(d), "live": asdict(d.live), "shadow": asdict(d.shadow)} for d in self.differences
            ],
        }


def side(state: DedupState | None, since: str) -> Side:
    """What `state`'s episode did since `since` (ISO, UTC): its action if it triggered (or was held back) then."""
    if state is None or state.episode == 0 or not (state.incident_keys or state.silenced):
        return Side()
    when = max(state.opened_at or "", state.last_notified_at or "")
    if when < since:
        return Side()
    held = bool(state.silenced) and not state.incident_keys
    return Side(state.action, state.rule or UNKNOWN_RULE, held)


def compare(environment: str, states: Iterable[DedupState], since: dt.datetime) -> ShadowReport:
    """Pair live and shadow episodes of the same problems and count, per side and per rule, what each did since."""
    since_iso = _iso(since)
    live: dict[str, DedupState] = {}
    shadow: dict[str, DedupState] = {}
    for state in states:
        if state.key.startswith(SHADOW_PREFIX):
            shadow[live_key(state.key)] = state
        elif is_finding_key(state.key):
            live[state.key] = state
    report = ShadowReport(environment, since_iso)
    rules: dict[str, RuleRow] = {}
    for key in sorted(live.keys() | shadow.keys()):
        ours, theirs = side(live.get(key), since_iso), side(shadow.get(key), since_iso)
        for name, got, counts in (("live", ours, report.live), ("shadow", theirs, report.shadow)):
            if got.action in ("page", "notify"):
                counts[got.action] += 1
                row = rules.setdefault(got.rule, RuleRow(got.rule))
                attribute = f"{name}_{got.action}"
                setattr(row, attribute, getattr(row, attribute) + 1)
        if ours.action != theirs.action:
            known = live.get(key) or shadow[key]
            report.differences.append(
                Difference(key, known.finding_id, known.account, known.severity.value, known.title, ours, theirs)
            )
    report.rules = sorted(rules.values(), key=lambda r: r.rule)
    report.differences.sort(key=lambda d: (-Severity(d.severity).rank, d.account, d.finding_id))
    return report


def read_states(dynamodb: Any, table: str) -> list[DedupState]:
    """Every live and shadow episode of the table (one paginated Scan)."""
    out = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            key = item["pk"]["S"]
            if "#" not in key and (key.startswith(SHADOW_PREFIX) or is_finding_key(key)):
                out.append(item_to_state(item))
    return out


def render_report(report: ShadowReport) -> str:
    live, shadow = report.live, report.shadow
    lines = [
        f"{report.environment} since {report.since}: live paged {live['page']}, notified {live['notify']} · shadow "
        f"would have paged {shadow['page']}, notified {shadow['notify']} · {len(report.differences)} finding(s) differ",
        "",
        render_table(
            ("rule", "live page", "live notify", "shadow page", "shadow notify"),
            [
                [r.rule, str(r.live_page), str(r.live_notify), str(r.shadow_page), str(r.shadow_notify)]
                for r in report.rules
            ],
            "(nothing paged or notified on either side)",
        ),
    ]
    if report.differences:
        lines += [
            "",
            "findings that differ:",
            render_table(
                ("severity", "account", "live", "shadow", "title", "finding"),
                [
                    [
                        d.severity,
                        d.account,
                        f"{d.live.text} ({d.live.rule})" if d.live.action != "-" else "-",
                        f"{d.shadow.text} ({d.shadow.rule})" if d.shadow.action != "-" else "-",
                        clip(d.title, 48),
                        clip(d.finding_id.rsplit("/", 1)[-1], 36),
                    ]
                    for d in report.differences
                ],
            ),
        ]
    return "\n".join(lines)


def write_report(report: ShadowReport, output: str, out: TextIO) -> None:
    if output == "json":
        out.write(json.dumps(report.as_dict(), indent=1) + "\n")
    elif output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for d in report.differences:
            row = (d.severity, d.account, d.finding_id, d.title, d.live.text, d.live.rule, d.shadow.text)
            writer.writerow((*row, d.shadow.rule, d.dedup_key))
    else:
        out.write(render_report(report) + "\n")


def shadow_report_command(
    policy: Policy,
    clients: Any,
    since_text: str,
    output: str,
    out: TextIO,
    err: TextIO,
    now: dt.datetime | None = None,
) -> int:
    """Exit 0 when both sides agree, 1 when some finding differs."""
    now = now or dt.datetime.now(dt.UTC)
    since = parse_since(since_text, now)
    table = resource_names(policy).state_table
    try:
        states = read_states(clients.client("dynamodb"), table)
    except Exception as exc:
        raise aws_error(exc, f"state table {table!r}") from None
    report = compare(policy.environment, states, since)
    if not policy.has_shadow and not any(s.key.startswith(SHADOW_PREFIX) for s in states):
        err.write(
            f"note: {policy.environment} makes no shadow decisions (no `mode: shadow`, no rule with `shadow: true`): "
            "every live page shows as a difference\n"
        )
    write_report(report, output, out)
    return 1 if report.differences else 0
