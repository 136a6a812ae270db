"""Silences: temporary, owned, audited quiet for matching findings, or for a whole environment. Pure: `now` is passed.

A silence (Alertmanager's semantics, with its known gap fixed) mutes **triggers**, never resolves: a finding it
matches while it is active is still tracked (its episode opens or stays open, its trigger is recorded as owed, not
sent: domain/episodes.py), so that when the silence ends or is expired, a finding still active that the policy still
pages does page (the sweep, service/sweep.py). A resolve is never silenced: an incident paged before the silence still
closes, and an episode that never paged because of a silence resolves without sending anything.

Every silence has an owner, a comment and an end (no open-ended silence; at most `silences.max_duration_hours`).
Its matchers are a policy `Match` (the same fields as a rule's `match`), matched by domain/policy.py's one
implementation (`compile_match`, `explain_match`); a silence of a whole environment has no matchers and says so
(`all_findings`), so that silencing everything is deliberate.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from findings_router.domain.model import Finding, FindingFormat, Resource, Severity
from findings_router.domain.policy import ConditionResult, Predicate, compile_match, explain_match
from findings_router.settings.schema import Match

SilenceState = Literal["pending", "active", "expired"]


class SilenceError(ValueError):
    """A silence that cannot be made as asked: a one-line reason for the person asking."""


# `Match` fields that take one value (`--match min_severity=HIGH`); `resource_tag` takes `resource_tag.KEY=VALUE`;
# every other field is a list, and repeating it (`--match account=1 --match account=2`) matches any of the values.
SCALAR_FIELDS = frozenset({"min_severity", "min_cvss", "exploit_available", "min_epss", "sample"})
TAG_FIELD = "resource_tag"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 time (`2026-11-21T18:00Z`, `…+01:00`; naive = UTC) → aware UTC datetime."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SilenceError(f"{value!r} is not a time (2026-11-21T18:00Z, or with an offset)") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def parse_duration(text: str) -> dt.timedelta:
    """`4h`, `90m`, `2d`, `1h30m` → timedelta (positive)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise SilenceError(f"{text!r} is not a duration: use e.g. 4h, 90m, 2d or 1h30m")
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    duration = dt.timedelta(days=days, hours=hours, minutes=minutes)
    if duration <= dt.timedelta(0):
        raise SilenceError(f"{text!r}: a silence must last a while")
    return duration


def match_from_pairs(pairs: Sequence[str]) -> Match:
    """`field=value` strings (the CLI's `--match`) → one policy `Match`, validated as a rule's `match` is."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise SilenceError(f"--match {pair!r}: expected FIELD=VALUE (e.g. account=111122223333)")
        if name.startswith(f"{TAG_FIELD}."):
            values.setdefault(TAG_FIELD, {})[name.removeprefix(f"{TAG_FIELD}.")] = value
        elif name == TAG_FIELD or name not in Match.model_fields:
            fields = ", ".join([*(f for f in Match.model_fields if f != TAG_FIELD), f"{TAG_FIELD}.KEY"])
            raise SilenceError(f"--match {pair!r}: no match field {name!r} (one of: {fields})")
        elif name in SCALAR_FIELDS:
            if name in values:
                raise SilenceError(f"--match {name}: give it once (it takes one value)")
            values[name] = value
        else:
            values.setdefault(name, []).append(value)
    try:
        return Match.model_validate(values)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError: one line per problem
        problems = getattr(exc, "errors", None)
        if callable(problems):
            text = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in problems())
            raise SilenceError(f"--match: {text}") from None
        raise SilenceError(f"--match: {exc}") from None


def match_pairs(match: Match | None) -> list[str]:
    """A `Match` as the `field=value` pairs that make it (the inverse of `match_from_pairs`)."""
    if match is None:
        return []
    pairs: list[str] = []
    for name, value in match.model_dump(mode="json", exclude_none=True).items():
        if isinstance(value, dict):
            pairs.extend(f"{name}.{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            pairs.extend(f"{name}={v}" for v in value)
        else:
            pairs.append(f"{name}={str(value).lower() if isinstance(value, bool) else value}")
    return pairs


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence of one environment. `ends_at` is when it stops muting: the planned end, or when it was expired
    (`expired_at`, by `expired_by`)."""

    id: str
    environment: str
    match: Match | None  # None only for a silence of every finding (`all_findings`)
    all_findings: bool
    starts_at: dt.datetime
    ends_at: dt.datetime
    created_by: str
    comment: str
    created_at: dt.datetime
    expired_at: dt.datetime | None = None
    expired_by: str | None = None
    version: int = 1

    def state(self, now: dt.datetime) -> SilenceState:
        if now >= self.ends_at:
            return "expired"
        return "active" if now >= self.starts_at else "pending"

    def is_active(self, now: dt.datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    @property
    def until(self) -> str:
        """When it ends, as states record it (`silenced_until`)."""
        return _iso(self.ends_at)

    @property
    def matchers(self) -> str:
        """For people: `account=111122223333 severity=HIGH`, or `all findings`."""
        return "all findings" if self.all_findings else " ".join(match_pairs(self.match))

    def applies_to(self, finding: Finding, predicate: Predicate | None = None) -> bool:
        if self.all_findings:
            return True
        test = predicate if predicate is not None else compile_match(self.match) if self.match else None
        return test is not None and bool(test(finding))

    def to_dict(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """The JSON form: what `silence list --output json` prints and `replay`/`explain --silences` read."""
        out: dict[str, Any] = {
            "id": self.id,
            "environment": self.environment,
            "matchers": None if self.match is None else self.match.model_dump(mode="json", exclude_none=True),
            "all": self.all_findings,
            "starts_at": _iso(self.starts_at),
            "ends_at": _iso(self.ends_at),
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": _iso(self.created_at),
            "expired_at": _iso(self.expired_at) if self.expired_at else None,
            "expired_by": self.expired_by,
        }
        if now is not None:
            out["state"] = self.state(now)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Silence:
        try:
            matchers = data.get("matchers")
            return cls(
                id=str(data["id"]),
                environment=str(data["environment"]),
                match=Match.model_validate(matchers) if matchers else None,
                all_findings=bool(data.get("all", False)),
                starts_at=parse_time(data["starts_at"]),
                ends_at=parse_time(data["ends_at"]),
                created_by=str(data["created_by"]),
                comment=str(data["comment"]),
                created_at=parse_time(data.get("created_at") or data["starts_at"]),
                expired_at=parse_time(data["expired_at"]) if data.get("expired_at") else None,
                expired_by=data.get("expired_by"),
                version=int(data.get("version", 1)),
            )
        except KeyError as exc:
            raise SilenceError(f"a silence without {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise SilenceError(f"silence {data.get('id', '?')}: {exc}") from None


MIN_COMMENT = 3  # characters: "why" must say something


def new_silence(
    *,
    silence_id: str,
    environment: str,
    match: Match | None,
    all_findings: bool,
    now: dt.datetime,
    created_by: str,
    comment: str,
    max_duration: dt.timedelta,
    duration: dt.timedelta | None = None,
    until: dt.datetime | None = None,
    starts_at: dt.datetime | None = None,
) -> Silence:
    """A new silence, checked: matchers or `all_findings` (not both, not neither), an owner and a comment, and an end
    (a `duration` from the start, or `until`) after the start, no later than `max_duration` after it."""
    if all_findings and match is not None:
        raise SilenceError("--all silences every finding: give no --match with it")
    if not all_findings and match is None:
        raise SilenceError("say what to silence: --match FIELD=VALUE (repeatable), or --all for every finding")
    if not created_by.strip():
        raise SilenceError("a silence needs an owner (--author)")
    if len(comment.strip()) < MIN_COMMENT:
        raise SilenceError("a silence needs a comment saying why (--comment): a ticket, a change, an incident")
    if (duration is None) == (until is None):
        raise SilenceError("give its end: --duration (e.g. 4h) or --until (a time)")
    start = starts_at or now
    end = start + duration if duration is not None else until
    assert end is not None
    if end <= start:
        raise SilenceError(f"it would end ({_iso(end)}) before it starts ({_iso(start)})")
    if end <= now:
        raise SilenceError(f"it would end ({_iso(end)}) in the past")
    if end - start > max_duration:
        hours = max_duration.total_seconds() / 3600
        raise SilenceError(
            f"{_hours(end - start)} is longer than silences.max_duration_hours ({hours:g} h): no silence is "
            "open-ended; add a new one when it ends if it must go on"
        )
    return Silence(
        id=silence_id,
        environment=environment,
        match=match,
        all_findings=all_findings,
        starts_at=start,
        ends_at=end,
        created_by=created_by.strip(),
        comment=comment.strip(),
        created_at=now,
    )


def _hours(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} days"


def expire(silence: Silence, now: dt.datetime, by: str) -> Silence:
    """The silence ended now by `by` (`silence expire`); one already ended cannot be expired again."""
    if silence.state(now) == "expired":
        raise SilenceError(f"silence {silence.id} already ended at {_iso(silence.ends_at)}")
    end = max(now, silence.starts_at) if silence.state(now) == "pending" else now
    return Silence(
        id=silence.id,
        environment=silence.environment,
        match=silence.match,
        all_findings=silence.all_findings,
        starts_at=min(silence.starts_at, end),
        ends_at=end,
        created_by=silence.created_by,
        comment=silence.comment,
        created_at=silence.created_at,
        expired_at=now,
        expired_by=by.strip() or "unknown",
        version=silence.version + 1,
    )


def describe(silence: Silence, now: dt.datetime | None = None) -> str:
    """One audit line: `silence 3f2a9c0d1e4b (all findings) from … until … by alice: "stop paging now"`."""
    state = f" [{silence.state(now)}]" if now is not None else ""
    expired = f", expired by {silence.expired_by} at {_iso(silence.expired_at)}" if silence.expired_at else ""
    return (
        f"silence {silence.id}{state} ({silence.matchers}) from {_iso(silence.starts_at)} until "
        f"{_iso(silence.ends_at)} by {silence.created_by}{expired}: {silence.comment!r}"
    )


@dataclass(frozen=True, slots=True)
class SilenceCheck:
    """One silence against one finding at one moment (`findings-router explain`)."""

    silence: Silence
    state: SilenceState
    conditions: tuple[ConditionResult, ...]  # () for a silence of every finding
    matched: bool  # every condition held (whatever the state)

    @property
    def silences(self) -> bool:
        return self.matched and self.state == "active"


@dataclass
class CompiledSilences:
    """The silences of one environment, their matchers compiled once (they run for each trigger about to be sent).

    `matching` picks, of the active silences that match, the one that ends last: the episode then waits for it."""

    silences: tuple[Silence, ...] = ()
    _predicates: dict[str, Predicate] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for s in self.silences:
            if s.match is not None and not s.all_findings:
                self._predicates[s.id] = compile_match(s.match)

    def matching(self, finding: Finding, now: dt.datetime) -> Silence | None:
        if finding.custom_action is not None:
            return None  # an operator sent it by hand with the environment's custom action: an explicit request
        found = [s for s in self.silences if s.is_active(now) and s.applies_to(finding, self._predicates.get(s.id))]
        return max(found, key=lambda s: (s.ends_at, s.id)) if found else None

    def active_ids(self, now: dt.datetime) -> frozenset[str]:
        return frozenset(s.id for s in self.silences if s.is_active(now))

    def explain(self, finding: Finding, now: dt.datetime) -> list[SilenceCheck]:
        """Every silence against `finding`, condition by condition (the same tests `matching` uses)."""
        out = []
        for s in self.silences:
            conditions = () if s.all_findings or s.match is None else tuple(explain_match(s.match, finding))
            matched = s.all_findings or (bool(conditions) and all(c.matched for c in conditions))
            out.append(SilenceCheck(s, s.state(now), conditions, matched))
        return out


def silences_from_json(text: str) -> list[Silence]:
    """`silence list --output json` output (a JSON array, or an object with `silences`) → silences."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SilenceError(f"not JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("silences", [])
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise SilenceError("expected a JSON array of silences, as `findings-router silence list --output json` prints")
    return [Silence.from_dict(d) for d in data]


# ------------------------------------------------------------------------------------------ the finding held back

# What a silenced episode keeps of its finding, to page with when the silence ends (the sweep re-evaluates the policy
# against it and builds the page from it): every field the policy matches and the integrations show, the
# description and resources clipped. Written only while a page is owed, cleared once it is delivered.
SNAPSHOT_DESCRIPTION = 4000
SNAPSHOT_RESOURCES = 20
_SNAPSHOT_VERSION = 1


def finding_snapshot(finding: Finding) -> str:
    resources = [
        {"type": r.type, "id": r.id, "region": r.region, "tags": [list(t) for t in r.tags]}
        for r in finding.resources[:SNAPSHOT_RESOURCES]
    ]
    data: dict[str, Any] = {
        "v": _SNAPSHOT_VERSION,
        "format": finding.format.value,
        "id": finding.id,
        "product_arn": finding.product_arn,
        "product_name": finding.product_name,
        "company_name": finding.company_name,
        "generator_id": finding.generator_id,
        "control_id": finding.control_id,
        "account": finding.account,
        "region": finding.region,
        "title": finding.title,
        "description": finding.description[:SNAPSHOT_DESCRIPTION],
        "severity": finding.severity.value,
        "severity_score": finding.severity_score,
        "types": list(finding.types),
        "resources": resources,
        "cve_ids": list(finding.cve_ids),
        "max_cvss": finding.max_cvss,
        "workflow_status": finding.workflow_status,
        "record_state": finding.record_state,
        "compliance_status": finding.compliance_status,
        "first_observed_at": finding.first_observed_at,
        "last_observed_at": finding.last_observed_at,
        "updated_at": finding.updated_at,
        "source_url": finding.source_url,
        "remediation_text": finding.remediation_text,
        "remediation_url": finding.remediation_url,
        "sample": finding.sample,
        "exploit_available": finding.exploit_available,
        "fix_available": finding.fix_available,
        "max_epss": finding.max_epss,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def finding_from_snapshot(text: str) -> Finding:
    data = json.loads(text)
    resources = tuple(
        Resource(r["type"], r["id"], r.get("region"), tuple((str(k), str(v)) for k, v in r.get("tags", [])))
        for r in data.get("resources", [])
    )
    return Finding(
        format=FindingFormat(data["format"]),
        id=data["id"],
        product_arn=data["product_arn"],
        product_name=data.get("product_name", ""),
        company_name=data.get("company_name", ""),
        generator_id=data.get("generator_id", ""),
        control_id=data.get("control_id"),
        account=data["account"],
        region=data.get("region", ""),
        title=data.get("title", ""),
        description=data.get("description", ""),
        severity=Severity(data["severity"]),
        severity_score=float(data.get("severity_score", 0.0)),
        types=tuple(data.get("types", [])),
        resources=resources,
        cve_ids=tuple(data.get("cve_ids", [])),
        max_cvss=data.get("max_cvss"),
        workflow_status=data.get("workflow_status"),
        record_state=data.get("record_state"),
        compliance_status=data.get("compliance_status"),
        first_observed_at=data.get("first_observed_at"),
        last_observed_at=data.get("last_observed_at"),
        updated_at=data.get("updated_at"),
        source_url=data.get("source_url"),
        remediation_text=data.get("remediation_text"),
        remediation_url=data.get("remediation_url"),
        sample=bool(data.get("sample", False)),
        exploit_available=data.get("exploit_available"),
        fix_available=data.get("fix_available"),
        max_epss=data.get("max_epss"),
    )


def active_silences(silences: Iterable[Silence], now: dt.datetime) -> list[Silence]:
    return [s for s in silences if s.is_active(now)]
