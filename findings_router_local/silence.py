"""`findings-router silence add|list|expire --env ENV`: silences in a deployed environment's state table.

    findings-router silence add --env prod --match account=111122223333 --match control_id=EC2.19 \\
        --duration 4h --comment "CHG-1234: security group rework" [--author alice]
    findings-router silence add --env prod --all --duration 2h --comment "INC-77: stop paging now"
    findings-router silence list --env prod [--output table|json]
    findings-router silence expire 3f2a9c0d1e4b --env prod [--author alice]

A silence holds back the pages and notifications of the findings it matches while it is active; their episodes are
still tracked, resolves still go out, and what it held back pages when it ends (within `silences.sweep_minutes`) if
the finding is still active and the policy still pages it (docs/runbook.md, docs/dedup.md). The router applies a new
silence (or an expiry) within a minute. Every add and expire prints one audit line (and the router logs each page
it holds back, "silence applied", and the sweep each page it sends after, with the silence's id).

Writes are conditional: a new silence never overwrites one, an expiry changes only the version it read. IAM:
dynamodb:PutItem and GetItem on the table's `fr1-silence-*` items, dynamodb:Query on its `time-index`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import uuid
from dataclasses import dataclass
from typing import Any, TextIO

from findings_router.adapters.silences import DynamoSilenceStore, SilenceStore
from findings_router.domain.silences import (
    Silence,
    SilenceError,
    expire,
    match_from_pairs,
    new_silence,
    parse_duration,
    parse_time,
)
from findings_router.settings.schema import Policy
from findings_router_local.aws_access import aws_error
from findings_router_local.tables import clip, render_table
from infra.contract import resource_names

STATE_ORDER = {"active": 0, "pending": 1, "expired": 2}


def default_author() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name (a container without a passwd entry)
        return "unknown"


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _length(silence: Silence) -> str:
    hours = (silence.ends_at - silence.starts_at).total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def store_for(clients: Any, policy: Policy) -> DynamoSilenceStore:
    """The environment's silences, in its stack's state table (`clients`: aws_access.AwsClients)."""
    return DynamoSilenceStore(
        resource_names(policy).state_table,
        clients.client("dynamodb"),
        policy.environment,
        retention_days=policy.silences.retention_days,
    )


@dataclass(frozen=True)
class AddRequest:
    matchers: list[str]
    all_findings: bool
    duration: str | None
    until: str | None
    starts_at: str | None
    comment: str
    author: str | None


def add_silence(policy: Policy, store: SilenceStore, request: AddRequest, now: dt.datetime, out: TextIO) -> Silence:
    """Make, check and store a silence; print its audit line. Raises SilenceError (bad input) or AWS errors."""
    match = match_from_pairs(request.matchers) if request.matchers else None
    settings = policy.silences
    for _ in range(3):  # a 48-bit id collides only by the wildest chance; the put is conditional anyway
        silence = new_silence(
            silence_id=new_id(),
            environment=policy.environment,
            match=match,
            all_findings=request.all_findings,
            now=now,
            created_by=request.author or default_author(),
            comment=request.comment,
            max_duration=dt.timedelta(hours=settings.max_duration_hours),
            duration=parse_duration(request.duration) if request.duration else None,
            until=parse_time(request.until) if request.until else None,
            starts_at=parse_time(request.starts_at) if request.starts_at else None,
        )
        if store.add(silence):
            break
    else:
        raise SilenceError("could not store the silence (its id was taken three times): try again")
    out.write(
        f"silence {silence.id} added in {policy.environment} by {silence.created_by}: {silence.matchers} from "
        f"{_iso(silence.starts_at)} until {_iso(silence.ends_at)} ({_length(silence)}): {silence.comment!r}\n"
    )
    out.write(
        "  the router applies it within a minute; what it holds back pages when it ends (checked every "
        f"{settings.sweep_minutes} min) if still active. End it early: findings-router silence expire {silence.id} "
        f"--env {policy.environment}\n"
    )
    return silence


def expire_silence(
    policy: Policy, store: SilenceStore, silence_id: str, author: str | None, now: dt.datetime, out: TextIO
) -> Silence:
    """End a silence now (conditional on the version read); print its audit line."""
    for _ in range(3):
        current = store.get(silence_id)
        if current is None:
            raise SilenceError(f"no silence {silence_id!r} in {policy.environment} (findings-router silence list)")
        ended = expire(current, now, author or default_author())
        if store.replace(ended, current.version):
            break
    else:
        raise SilenceError(f"silence {silence_id} kept changing while expiring it: try again")
    out.write(
        f"silence {ended.id} expired in {policy.environment} by {ended.expired_by} at {_iso(now)} (was until "
        f"{_iso(current.ends_at)}; {current.matchers}; {current.comment!r})\n"
    )
    out.write(
        f"  what it held back pages within {policy.silences.sweep_minutes} min if still active and still paging\n"
    )
    return ended


def sorted_silences(silences: list[Silence], now: dt.datetime) -> list[Silence]:
    return sorted(silences, key=lambda s: (STATE_ORDER[s.state(now)], s.ends_at, s.id))


def render_silences(silences: list[Silence], now: dt.datetime) -> str:
    rows = [
        [
            s.id,
            s.state(now),
            clip(s.matchers, 48),
            _iso(s.starts_at),
            _iso(s.ends_at),
            s.created_by + (f" (expired by {s.expired_by})" if s.expired_by else ""),
            clip(s.comment, 48),
        ]
        for s in sorted_silences(silences, now)
    ]
    header = ("id", "state", "matchers", "starts", "ends", "by", "comment")
    return render_table(header, rows, "(no silences)")


def silences_json(silences: list[Silence], now: dt.datetime) -> str:
    """The form `replay --silences` and `explain --silences` read."""
    return json.dumps([s.to_dict(now) for s in sorted_silences(silences, now)], indent=1)


def silence_command(args: Any, policy: Policy, clients: Any, out: TextIO, now: dt.datetime | None = None) -> int:
    """`args.action`: add, list or expire (cli.py's parser). AWS errors become AwsAccessError (exit 2 in cli.py)."""
    now = now or dt.datetime.now(dt.UTC)
    store = store_for(clients, policy)
    try:
        if args.action == "add":
            request = AddRequest(
                matchers=list(args.match or []),
                all_findings=bool(args.all),
                duration=args.duration,
                until=args.until,
                starts_at=args.starts_at,
                comment=args.comment,
                author=args.author,
            )
            add_silence(policy, store, request, now, out)
        elif args.action == "expire":
            expire_silence(policy, store, args.id, args.author, now, out)
        else:
            silences = store.listed()
            out.write(silences_json(silences, now) if args.output == "json" else render_silences(silences, now))
            out.write("\n")
    except SilenceError:
        raise
    except Exception as exc:
        raise aws_error(exc, f"silences in state table {resource_names(policy).state_table!r}") from None
    return 0
