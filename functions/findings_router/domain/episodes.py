"""Dedup keys and the per-key episode state machine. Pure: no I/O, `now` is passed in.

One item per dedup key records the current *episode* (one open→resolved life of a problem). Given the prior
state and a finding with its policy decision, `decide` returns what to send and the state to write (or none).

* Active finding, no open episode → new episode: page/notify.
* Active finding, open episode, severity rises (or notify → page) → escalate: a new incident at the higher
  severity (its own PagerDuty dedup key, `<key>~<rank>`, because PagerDuty folds a trigger on an open alert into
  that alert without notifying anyone again).
* Active finding, open episode, nothing new → duplicate; the item is only touched every `touch_interval` to keep
  its TTL ahead of Security Hub's 12–24 h re-sends (a write per repeat would cost more than it tells).
* Resolved in Security Hub (archived, PASSED, RESOLVED/SUPPRESSED) with an open episode → resolve every incident of
  the episode, once. A later active finding for the key opens a new episode.

Order (EventBridge → SQS has none; crashes, retries and redrives reorder further): the state keeps the newest finding
time it reflects (`observed_at`). An active copy that is not newer changes nothing; a resolution that is not older is
applied, and is remembered even when nothing was open. Triggers are written ahead (`pending`) and confirmed after
PagerDuty accepted them, so a crash in between is healed by the next copy, or resolved by a resolution.

Silences (domain/silences.py) sit between the policy decision and the send, as Alertmanager mutes before its dedup
step: a trigger a silence holds back (a new episode's, an escalation's) is recorded as owed (`silenced`), not sent and
not counted as sent, so the episode still owes it; once no silence holds it, the next copy of the finding or the sweep
(`decide_owed`) delivers it, written ahead like any trigger. A trigger already recorded ahead (`pending`) is never
silenced (it may have reached PagerDuty), and resolves never are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from findings_router.domain.keys import incident_key, is_shared_incident, member_ref
from findings_router.domain.model import SEVERITY_RANK, Finding, Severity
from findings_router.domain.notifications import FoldedResources, Notification
from findings_router.domain.policy import PolicyDecision, merge_targets
from findings_router.domain.silences import Silence, finding_snapshot
from findings_router.settings.schema import Dedup

Outcome = Literal["page", "notify", "drop", "resolve", "duplicate"]


EpisodeStatus = Literal["open", "acknowledged", "resolved"]


# Who ended an episode: Security Hub (archived, PASSED, RESOLVED/SUPPRESSED), an operator in PagerDuty, or PagerDuty
# itself (auto-resolve timeout, a resolve through an integration): never an operator's decision.
ResolvedBy = Literal["securityhub", "operator", "pagerduty"]


MAX_MEMBERS = 20  # findings folded into one key: one per enabled standard, plus re-created ids


# A folded vulnerability episode (dedup.fold_vulnerabilities; docs/dedup.md "Folding vulnerabilities") tracks up to
# this many open findings: the first ones seen, a slot freeing when one resolves. It resolves when the findings it
# tracks have all resolved; a finding beyond the cap that is still active opens a new episode on its next copy.
# With the resolution memory and the resource list a full item stays around 25 KB (DynamoDB allows 400 KB).
MAX_FOLDED_MEMBERS = 200


# Findings of a folded episode that resolved, remembered (as "<member_ref> <time>", the newest last) so that a late
# active copy of one of them joins nothing and pages nobody.
MAX_MEMBER_RESOLUTIONS = 200


MAX_AFFECTED = 25  # resource ids a folded episode lists (the page shows fewer); `affected_count` counts them all


_AFFECTED_ID_MAX = 512  # characters of one listed resource id (an ARN may be 2048)


@dataclass(frozen=True, slots=True)
class DedupState:
    key: str
    status: EpisodeStatus
    episode: int
    action: Literal["page", "notify"]
    severity: Severity
    incident_keys: tuple[str, ...]
    members: tuple[str, ...]
    finding_id: str
    product_arn: str
    title: str
    first_seen: str
    last_seen: str
    last_notified_at: str
    seen_count: int
    notify_count: int
    version: int
    expires_at: int
    account: str = ""
    finding_format: str = "asff"
    resolved_at: str | None = None
    resolved_by: ResolvedBy | None = None
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    incident_id: str | None = None
    # The newest finding time (ASFF UpdatedAt, OCSF finding_info.modified_time) this state reflects: an active copy
    # that is not newer changes nothing (docs/dedup.md, "Order").
    observed_at: str | None = None
    # Incident keys recorded before their trigger was confirmed delivered (write-ahead): a retry re-sends them, and a
    # resolution arriving meanwhile resolves them, so a crash after PagerDuty's 202 neither loses nor orphans a page.
    pending: tuple[str, ...] = ()
    # When the invocation that recorded `pending` started sending them; None once it gave up (delivery failed) or
    # for older items. Another copy leaves a trigger alone while this is recent: it may still be in flight.
    pending_since: str | None = None
    # When this episode opened: on-call events that occurred before it belong to an earlier episode.
    opened_at: str | None = None
    # PagerDuty incident ids of this episode (one per incident key, learned from webhooks) and of earlier ones.
    incident_ids: tuple[str, ...] = ()
    past_incident_ids: tuple[str, ...] = ()
    # Security Hub reported the problem gone after PagerDuty's resolve (by `resolved_by`): a later failure pages again.
    securityhub_agrees: bool = False
    # The ack receiver's work recorded but not yet done (JSON: {"id", "note", "workflow", "resolve"}: a Security Hub
    # note and sibling resolves), keyed by webhook id: retried until it lands (service/acknowledge.py).
    outbox: tuple[str, ...] = ()
    # The notifiers this episode went to (policy names: its first page's, and each escalation's deciding rule's),
    # where its escalations and resolve go; () is the primary `notifier` (and every item before routing per rule).
    targets: tuple[str, ...] = ()
    # Folded vulnerability keys only (dedup.fold_vulnerabilities): the findings of the key that resolved, as
    # "<member_ref> <finding time>" (across episodes), and the episode's affected resources: the first
    # MAX_AFFECTED ids, in the order seen, and how many there were.
    member_resolutions: tuple[str, ...] = ()
    affected: tuple[str, ...] = ()
    affected_count: int = 0
    # Silences (domain/silences.py): the incident keys of this episode a silence held back (decided and recorded,
    # never sent: owed), the silence holding them and when it ends, and the finding as last seen, to page with once
    # it ends (the sweep). `incident_keys` holds only what was sent (or recorded ahead to be sent). Cleared when the
    # owed triggers are delivered or cancelled and when the episode resolves.
    silenced: tuple[str, ...] = ()
    silenced_by: str | None = None
    silenced_until: str | None = None
    silenced_finding: str | None = None
    # What decided the episode's last trigger: a rule's name, `default_action`, `custom_action` (shadow-report).
    rule: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    @property
    def owes(self) -> bool:
        """An open episode with triggers a silence held back: the sweep looks at it (the state table's time index)."""
        return self.is_open and bool(self.silenced)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str
    key: str
    notifications: tuple[Notification, ...] = ()
    new_state: DedupState | None = None  # None: nothing to write
    # The version the first write (`pending_state` if set, else `new_state`) expects; None: the item must not exist.
    expected_version: int | None = None
    # Write-ahead: when set, this state (the triggers in `pending`) is written before `notifications`, and `new_state`
    # (pending cleared, one version later) after them.
    pending_state: DedupState | None = None
    opens_episode: bool = False  # a new episode's first trigger (what storm counting counts)
    in_flight: bool = False  # another invocation is sending this key's trigger: try this copy again later
    silenced_by: str | None = None  # the silence that held this decision's triggers back (recorded as owed)


# The last `now` formatted, and how: an invocation routes every finding with the same `now` object, and decide()
# formats it for every finding (an identity check, so a different `now` is always formatted afresh).
_LAST_ISO: list[tuple[dt.datetime | None, str]] = [(None, "")]


def _iso(now: dt.datetime) -> str:
    last = _LAST_ISO[0]
    if last[0] is now:
        return last[1]
    iso = now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    _LAST_ISO[0] = (now, iso)
    return iso


def _parse_iso(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _expiry(now: dt.datetime, days: int) -> int:
    return int(now.timestamp()) + days * 86400


def _with_member(members: tuple[str, ...], finding_id: str) -> tuple[str, ...]:
    if finding_id in members:
        return members
    return (*members, finding_id)[-MAX_MEMBERS:]


@dataclass(frozen=True, slots=True)
class _Fold:
    """What a folded vulnerability key's decision needs: the finding's stand-in in the resolution memory, and that
    memory without it (an active copy newer than its resolution: it is active again)."""

    ref: str
    resolutions: tuple[str, ...]


def _resolution_at(resolutions: tuple[str, ...], ref: str) -> str | None:
    """When the finding `ref` was last seen resolved ("" when that copy had no time); None: not remembered."""
    for entry in resolutions:
        if entry.startswith(ref) and (len(entry) == len(ref) or entry[len(ref)] == " "):
            return entry[len(ref) + 1 :]
    return None


def _without_resolution(resolutions: tuple[str, ...], ref: str) -> tuple[str, ...]:
    if _resolution_at(resolutions, ref) is None:
        return resolutions
    return tuple(e for e in resolutions if e.split(" ", 1)[0] != ref)


def _with_resolution(resolutions: tuple[str, ...], ref: str, at: str) -> tuple[str, ...]:
    kept = _without_resolution(resolutions, ref)
    return (*kept, f"{ref} {at}" if at else ref)[-MAX_MEMBER_RESOLUTIONS:]


def _with_folded_member(members: tuple[str, ...], finding_id: str) -> tuple[str, ...]:
    """The first MAX_FOLDED_MEMBERS findings are tracked; later ones are not (until a tracked one resolves)."""
    if finding_id in members or len(members) >= MAX_FOLDED_MEMBERS:
        return members
    return (*members, finding_id)


def _with_affected(state: DedupState, finding: Finding) -> tuple[tuple[str, ...], int]:
    """The episode's affected resources with the primary resource of a newly tracked finding: listed while there is
    room, counted always (a resource beyond the list that two findings share is counted twice)."""
    resource = finding.primary_resource_id[:_AFFECTED_ID_MAX]
    if resource in state.affected:
        return state.affected, state.affected_count
    if len(state.affected) < MAX_AFFECTED:
        return (*state.affected, resource), max(state.affected_count, len(state.affected)) + 1
    return state.affected, state.affected_count + 1


def _joined(state: DedupState, finding: Finding, fold: _Fold | None) -> dict[str, Any]:
    """The fields of `state` that change when `finding` is seen active: its members, and for a folded key the
    affected resources (when it becomes tracked) and the resolution memory (it is active again)."""
    if fold is None:
        return {"members": _with_member(state.members, finding.id)}
    members = _with_folded_member(state.members, finding.id)
    changes: dict[str, Any] = {"members": members, "member_resolutions": fold.resolutions}
    if members != state.members:
        changes["affected"], changes["affected_count"] = _with_affected(state, finding)
    return changes


def finding_time(finding: Finding) -> dt.datetime | None:
    """When the provider last changed the finding (ASFF UpdatedAt, OCSF finding_info.modified_time), or None.

    BatchUpdateFindings (people, tools, our own write-back) does not change it: an echo carries the time of the copy
    it echoes, and a resolution set that way carries the time of the active copy before it."""
    return parse_time(finding.updated_at)


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO 8601 timestamp (`…Z`, `…+00:00`, naive = UTC) → aware UTC datetime; None if it is not a usable one."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not a time, or at the edge of datetime's range: no usable order
        return None


def _time_iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _newest(current: str | None, known: dt.datetime | None, seen: dt.datetime | None) -> str | None:
    """The later of the stored observed time (`current`, parsed: `known`) and `seen`, as stored."""
    if seen is None:
        return current
    return _time_iso(seen) if known is None or seen > known else current


MAX_PAST_INCIDENTS = 10


def _write_ahead(new: DedupState, triggers: tuple[str, ...], now_iso: str) -> tuple[DedupState, DedupState]:
    """(state to write before sending, state to write after)."""
    before = dataclasses.replace(
        new, pending=tuple(k for k in triggers if not is_shared_incident(k)), pending_since=now_iso
    )
    after = dataclasses.replace(new, pending=(), pending_since=None, version=new.version + 1)
    return before, after


def decide(
    finding: Finding,
    policy: PolicyDecision,
    state: DedupState | None,
    key: str,
    now: dt.datetime,
    cfg: Dedup,
    in_flight_seconds: float = 120.0,
    *,
    folded: bool = False,
    silence: Silence | None = None,
) -> Decision:
    """The whole dedup decision for one finding. The caller writes `pending_state` (if any) conditionally, sends
    `notifications`, then writes `new_state` conditionally.

    `in_flight_seconds`: how long an invocation may still be sending a recorded trigger (the function's timeout);
    a trigger recorded more recently than that is another invocation's, still in flight.

    `folded`: `key` is a folded vulnerability key (`keys.folded_vulnerability`), which many findings share: their
    order is kept per finding, not per key (the finding times of different findings say nothing about each other),
    an episode resolves when its last tracked finding does, and it records the affected resources. The caller
    knows it from the finding and the policy, as it knows the key; the state does not record it.

    `silence`: the active silence that matches the finding, if any (the caller looks it up when a trigger is about
    to be sent or the episode owes one). A new trigger is then held back, recorded as owed, and nothing is sent;
    resolutions ignore it. Without one, an episode's owed triggers are delivered (if the policy still pages)."""
    now_iso = _iso(now)
    state = _alive(state, now)
    seen = finding_time(finding)
    known = parse_time(state.observed_at if state is not None else None)
    if finding.is_resolved:
        if folded:
            return _folded_resolution(finding, state, key, now, now_iso, cfg, seen, known)
        return _decide_resolution(finding, state, key, now, now_iso, cfg, seen, known)
    state = _owes_again(state, policy)
    decision = _active(finding, policy, state, key, now, cfg, in_flight_seconds, folded, seen, known, silence)
    return decision if silence is None else _silenced(decision, state, silence, finding)


def _owes_again(state: DedupState | None, policy: PolicyDecision) -> DedupState | None:
    """An open episode that sent nothing and owes nothing (a silence held its page back, then the policy stopped
    paging it and the page was let go) owes its first page again as soon as the policy pages the finding again:
    without this, the open episode would make every later copy a duplicate, and the problem would never page."""
    if (
        state is None
        or not state.is_open
        or state.episode == 0
        or state.incident_keys
        or state.silenced
        or state.pending
        or policy.action == "drop"
    ):
        return state
    return dataclasses.replace(state, silenced=(state.key,))


def _alive(state: DedupState | None, now: dt.datetime) -> DedupState | None:
    """A TTL'd item may still be readable for up to 48 h after expiry: treat it as absent. What it reflected is
    older than anything DynamoDB still keeps; only its counters and earlier incidents carry over."""
    if state is None or state.expires_at >= now.timestamp():
        return state
    return dataclasses.replace(
        state,
        status="resolved",
        observed_at=None,
        pending=(),
        member_resolutions=(),
        affected=(),
        affected_count=0,
        **_UNSILENCED,
    )


# The fields of a state that say nothing is held back by a silence.
_UNSILENCED: dict[str, Any] = {"silenced": (), "silenced_by": None, "silenced_until": None, "silenced_finding": None}


def _active(
    finding: Finding,
    policy: PolicyDecision,
    state: DedupState | None,
    key: str,
    now: dt.datetime,
    cfg: Dedup,
    in_flight_seconds: float,
    folded: bool,
    seen: dt.datetime | None,
    known: dt.datetime | None,
    silence: Silence | None,
) -> Decision:
    """An active copy of the finding (`decide`)."""
    now_iso = _iso(now)
    observed = _newest(state.observed_at if state is not None else None, known, seen)
    custom_action = finding.custom_action is not None
    fold = _fold(finding, state, seen, custom_action) if folded else None
    if folded and fold is None:
        # A late copy of a finding of this key that has resolved since (order per finding, not per key).
        return Decision("duplicate", "not newer than its own resolution: already resolved", key)

    if state is not None and state.is_open and state.pending:
        return _deliver_pending(state, key, now, now_iso, observed, in_flight_seconds, finding, fold)

    if state is not None and state.owes and silence is None:
        # No silence holds the episode's owed triggers back any more (it ended or was expired, or an operator sent
        # the finding by hand): deliver them, whatever this copy's time, if the policy still pages or notifies it.
        return _deliver_owed(finding, policy, state, key, now, cfg, observed, fold)

    # A custom action event is an explicit request, not a copy: exempt. A folded key orders per finding (above).
    if (
        not folded
        and state is not None
        and known is not None
        and seen is not None
        and seen <= known
        and not custom_action
    ):
        return _not_newer(finding, state, key)

    if policy.action == "drop":
        return Decision("drop", policy.reason, key)

    if (
        state is not None
        and state.resolved_by in ("operator", "pagerduty")
        and not state.securityhub_agrees
        and not state.is_open
        and finding.severity.rank <= state.severity.rank
        and not custom_action  # an operator asking again, explicitly, is a new page
    ):
        # The incident was resolved in PagerDuty (by an operator, or automatically) while Security Hub still reports
        # the finding (and our own write-back re-emits it): that is not a new problem. Only a rise in severity, or
        # Security Hub itself reporting the finding resolved and then failing again, opens a new episode.
        return Decision(
            "duplicate",
            f"resolved in PagerDuty ({state.resolved_by}) in episode {state.episode}; still active in Security Hub",
            key,
        )
    if state is None or not state.is_open:
        return _open_episode(finding, policy, policy.action, state, key, now, now_iso, cfg, observed, fold)
    return _while_open(finding, policy, state, key, now, now_iso, cfg, observed, fold)


def _silence_mark(silence: Silence, finding: Finding) -> dict[str, Any]:
    return {"silenced_by": silence.id, "silenced_until": silence.until, "silenced_finding": finding_snapshot(finding)}


def _silenced(decision: Decision, state: DedupState | None, silence: Silence, finding: Finding) -> Decision:
    """`decision` with what `silence` holds back: a new trigger (a new episode's, an escalation's, a notification
    upgraded to a page) is recorded as owed instead of written ahead and sent; an episode already owing keeps its
    marker on the silence that holds it now. Recorded triggers (`pending`) and everything else pass unchanged."""
    if decision.pending_state is not None and decision.new_state is not None and (state is None or not state.pending):
        new, triggers = decision.new_state, decision.pending_state.pending
        if state is not None and state.silenced and not state.incident_keys:
            # Nothing of this episode was sent yet: its one owed trigger will carry the new severity.
            owed = state.silenced
        else:
            owed = tuple(dict.fromkeys((*(state.silenced if state is not None else ()), *triggers)))
        held = dataclasses.replace(
            new,
            incident_keys=tuple(k for k in new.incident_keys if k not in triggers),
            silenced=owed,
            pending=(),
            pending_since=None,
            version=(decision.expected_version or 0) + 1,
            # Not sent: the counts and times of what was sent stay as they were.
            notify_count=state.notify_count if state is not None else 0,
            last_notified_at=state.last_notified_at if state is not None else new.last_notified_at,
            **_silence_mark(silence, finding),
        )
        reason = f"{decision.reason}; silenced by {silence.id} until {silence.until}: held back, owed until then"
        return Decision("drop", reason, decision.key, (), held, decision.expected_version, silenced_by=silence.id)
    if state is None or not state.owes:
        return decision
    if decision.new_state is not None:
        new = dataclasses.replace(decision.new_state, **_silence_mark(silence, finding))
        return dataclasses.replace(decision, new_state=new, silenced_by=silence.id)
    if (state.silenced_by, state.silenced_until) == (silence.id, silence.until):
        return dataclasses.replace(decision, silenced_by=silence.id)
    # Held back now by another silence (or this one extended): the sweep waits for that one.
    moved = dataclasses.replace(state, **_silence_mark(silence, finding), version=state.version + 1)
    return dataclasses.replace(decision, new_state=moved, expected_version=state.version, silenced_by=silence.id)


def _deliver_owed(
    finding: Finding,
    policy: PolicyDecision,
    state: DedupState,
    key: str,
    now: dt.datetime,
    cfg: Dedup,
    observed: str | None,
    fold: _Fold | None,
    *,
    join: bool = True,
) -> Decision:
    """The episode owes triggers a silence held back and none holds them now: deliver them (written ahead like any
    trigger: the owed keys stay recorded until the send is confirmed, so a crash or a failed delivery leaves them to
    the next copy or sweep), or, when the policy no longer pages or notifies the finding, let them go."""
    now_iso = _iso(now)
    joined = _joined(state, finding, fold) if join else {}
    if policy.action == "drop":
        let_go = dataclasses.replace(
            state, **joined, **_UNSILENCED, version=state.version + 1, observed_at=observed, last_seen=now_iso
        )
        reason = (
            f"{policy.reason}: the {state.action} held back by silence {state.silenced_by} is not sent (the policy "
            "no longer pages or notifies this finding)"
        )
        return Decision("drop", reason, key, (), let_go, state.version)
    sent_page = bool(state.incident_keys) and state.action == "page"
    action: Literal["page", "notify"] = "page" if policy.action == "page" or sent_page else "notify"
    severity = finding.severity if finding.severity.rank > state.severity.rank else state.severity
    owed = tuple(k for k in state.silenced if not is_shared_incident(k))
    urgency: Literal["high", "low"] = policy.urgency if action == policy.action else "high"
    new = dataclasses.replace(
        state,
        **joined,
        **_UNSILENCED,
        action=action,
        severity=severity,
        incident_keys=tuple(dict.fromkeys((*state.incident_keys, *owed))),
        last_seen=now_iso,
        last_notified_at=now_iso,
        notify_count=state.notify_count + 1,
        version=state.version + 1,
        expires_at=_expiry(now, cfg.ttl_days),
        observed_at=observed,
        targets=merge_targets(state.targets, policy.notify),
        rule=policy.rule or state.rule,
    )
    # Written ahead with the marker kept: until confirmed, the episode is still the sweep's to finish.
    before = dataclasses.replace(
        new,
        pending=owed,
        pending_since=now_iso,
        silenced=state.silenced,
        silenced_by=state.silenced_by,
        silenced_until=state.silenced_until,
        silenced_finding=state.silenced_finding,
    )
    after = dataclasses.replace(new, version=state.version + 2)
    sends = tuple(Notification("trigger", k, severity, urgency) for k in owed)
    reason = f"{policy.reason}; silence {state.silenced_by} no longer holds it: the {action} it held back, sent now"
    return Decision(action, reason, key, sends, after, state.version, before, opens_episode=not state.incident_keys)


def decide_owed(
    snapshot: Finding,
    policy: PolicyDecision,
    state: DedupState,
    now: dt.datetime,
    cfg: Dedup,
    in_flight_seconds: float = 120.0,
    *,
    silence: Silence | None = None,
) -> Decision:
    """The sweep's decision for an episode the time index lists as owing triggers (service/sweep.py): deliver what
    is owed (or recorded ahead and not confirmed) when no silence holds it, against the current policy's decision
    for the finding as last seen (`snapshot`); keep the marker on the silence that holds it now; or nothing, when
    the episode has ended or owes nothing (the index lags the table)."""
    key = state.key
    now_iso = _iso(now)
    alive = _alive(state, now)
    if alive is None or not alive.is_open or not (alive.silenced or alive.pending):
        return Decision("duplicate", "nothing owed: the episode ended or its triggers were delivered", key)
    if alive.pending:
        return _deliver_pending(alive, key, now, now_iso, alive.observed_at, in_flight_seconds, snapshot, None)
    if silence is not None:
        if (alive.silenced_by, alive.silenced_until) == (silence.id, silence.until):
            return Decision(
                "drop", f"still silenced by {silence.id} until {silence.until}", key, silenced_by=silence.id
            )
        moved = dataclasses.replace(
            alive, silenced_by=silence.id, silenced_until=silence.until, version=alive.version + 1
        )
        reason = f"{policy.reason}; silenced by {silence.id} until {silence.until}: held back, owed until then"
        return Decision("drop", reason, key, (), moved, alive.version, silenced_by=silence.id)
    return _deliver_owed(snapshot, policy, alive, key, now, cfg, alive.observed_at, None, join=False)


def _fold(finding: Finding, state: DedupState | None, seen: dt.datetime | None, custom_action: bool) -> _Fold | None:
    """An active copy of a folded key's finding: its resolution memory entry is dropped when it is newer than that
    resolution (active again); None when it is not (a late copy: changes nothing)."""
    ref = member_ref(finding.id)
    resolutions = state.member_resolutions if state is not None else ()
    resolved_at = _resolution_at(resolutions, ref)
    if resolved_at is not None:
        last = parse_time(resolved_at)
        if seen is not None and last is not None and seen <= last and not custom_action:
            return None
        resolutions = _without_resolution(resolutions, ref)
    return _Fold(ref, resolutions)


def _deliver_pending(
    state: DedupState,
    key: str,
    now: dt.datetime,
    now_iso: str,
    observed: str | None,
    in_flight_seconds: float,
    finding: Finding,
    fold: _Fold | None,
) -> Decision:
    """An active copy while the open episode has a trigger recorded but not confirmed delivered. A finding joining a
    folded episode is recorded in the same write (and the trigger then lists its resource too)."""
    recorded = parse_time(state.pending_since)
    if recorded is not None and (now - recorded).total_seconds() < in_flight_seconds:
        # Another invocation recorded it moments ago and may be sending it now. This copy is tried again later
        # (not dropped): by then the trigger is confirmed (a duplicate) or, if that invocation died, delivered.
        return Decision("duplicate", f"{state.action} of episode {state.episode} is being sent", key, in_flight=True)
    # A trigger was recorded but its delivery never confirmed (a crash, a timeout): deliver it now. PagerDuty
    # folds a repeated trigger of an open alert into that alert, so a page that did go out is not doubled.
    urgency: Literal["high", "low"] = "high" if state.action == "page" else "low"
    sends = tuple(Notification("trigger", ik, state.severity, urgency) for ik in state.pending)
    joined = _joined(state, finding, fold) if fold is not None else {}
    # Owed triggers recorded ahead by the sweep (or a copy) are owed no more once delivered.
    owed = tuple(k for k in state.silenced if k not in state.pending)
    new = dataclasses.replace(
        state,
        **joined,
        **({"silenced": owed} if owed else _UNSILENCED),
        pending=(),
        pending_since=None,
        version=state.version + 1,
        observed_at=observed,
        last_notified_at=now_iso,
    )
    return Decision(
        state.action,
        f"delivering the recorded {state.action} of episode {state.episode}",
        key,
        sends,
        new,
        state.version,
    )


def _not_newer(finding: Finding, state: DedupState, key: str) -> Decision:
    """An active copy not newer than what the state reflects: a re-send, an echo of a write-back (same UpdatedAt), or
    an older copy arriving late (SQS has no order; crashes, retries and redrives reorder further). Changes nothing,
    except that a new finding id of a folded control joins the open episode."""
    if state.is_open and finding.id not in state.members:
        new = dataclasses.replace(state, members=_with_member(state.members, finding.id), version=state.version + 1)
        return Decision("duplicate", f"episode {state.episode} already {state.status}", key, (), new, state.version)
    why = "already resolved" if not state.is_open else f"episode {state.episode} already {state.status}"
    return Decision("duplicate", f"not newer than the state ({state.observed_at}): {why}", key)


def repeat_decision(finding: Finding, state: DedupState | None, key: str, now: dt.datetime) -> Decision | None:
    """The decision `decide` makes for a plain repeat, or None when `decide` must be asked (the router's fast path).

    A plain repeat: an active copy, not a custom action event, not newer than what a live stored state reflects
    (`observed_at`), for a key that is not a folded vulnerability key (the caller checks that: those order per
    finding), whose episode is resolved, or open with nothing recorded ahead (`pending`), nothing owed (`silenced`),
    something sent (or episode 0) and the finding already a member. `decide` then returns `_not_newer`'s duplicate,
    which writes and sends nothing, whatever the policy decision and whatever silence is in effect: so the caller
    needs neither for it (tests/property/test_repeat_fast_path.py checks this against `decide`)."""
    if (
        state is None
        or finding.custom_action is not None
        or finding.is_resolved
        or state.expires_at < now.timestamp()  # `_alive`: an expired item is treated as absent
    ):
        return None
    if state.is_open and (
        state.pending  # `_deliver_pending`
        or state.silenced  # `_deliver_owed` or `_silenced`
        or (state.episode != 0 and not state.incident_keys)  # `_owes_again`, if the policy pages it again
        or finding.id not in state.members  # `_not_newer` records the new member
    ):
        return None
    observed = state.observed_at
    known = parse_time(observed)
    if known is None:
        return None
    updated = finding.updated_at
    if updated != observed:  # the same text is the same time (a re-send carries its copy's time as it was stored)
        seen = parse_time(updated)
        if seen is None or seen > known:
            return None
    return _not_newer(finding, state, key)


def dropped_unseen(finding: Finding, policy: PolicyDecision, state: DedupState | None, key: str) -> Decision | None:
    """The decision `decide` makes for an active copy the policy drops when nothing is stored for its key (folded or
    not, whatever silence is in effect): the policy's drop, nothing written; None when `decide` must be asked."""
    if state is not None or policy.action != "drop" or finding.is_resolved:
        return None
    return Decision("drop", policy.reason, key)


def _open_episode(
    finding: Finding,
    policy: PolicyDecision,
    action: Literal["page", "notify"],
    state: DedupState | None,
    key: str,
    now: dt.datetime,
    now_iso: str,
    cfg: Dedup,
    observed: str | None,
    fold: _Fold | None = None,
) -> Decision:
    """A page or notification (`action`) with no open episode: a new episode, its trigger written ahead."""
    episode = state.episode + 1 if state else 1
    folded: dict[str, Any] = {}
    if fold is not None:
        folded = {
            "member_resolutions": fold.resolutions,
            "affected": (finding.primary_resource_id[:_AFFECTED_ID_MAX],),
            "affected_count": 1,
        }
    new = DedupState(
        key=key,
        status="open",
        episode=episode,
        action=action,
        severity=finding.severity,
        incident_keys=(key,),
        members=(finding.id,),
        finding_id=finding.id,
        product_arn=finding.product_arn,
        title=finding.title[:200],
        first_seen=now_iso if state is None else state.first_seen,
        last_seen=now_iso,
        last_notified_at=now_iso,
        seen_count=(state.seen_count if state else 0) + 1,
        notify_count=(state.notify_count if state else 0) + 1,
        version=(state.version if state else 0) + 1,
        expires_at=_expiry(now, cfg.ttl_days),
        account=finding.account,
        finding_format=finding.format.value,
        observed_at=observed,
        opened_at=now_iso,
        targets=policy.notify,
        rule=policy.rule or None,
        past_incident_ids=((*state.past_incident_ids, *state.incident_ids)[-MAX_PAST_INCIDENTS:] if state else ()),
        **folded,
    )
    reason = policy.reason if state is None or state.episode == 0 else f"{policy.reason}; episode {episode} (reopened)"
    send = Notification("trigger", key, finding.severity, policy.urgency)
    expected = state.version if state else None
    before, after = _write_ahead(new, (key,), now_iso)
    return Decision(action, reason, key, (send,), after, expected, before, opens_episode=True)


def _while_open(
    finding: Finding,
    policy: PolicyDecision,
    state: DedupState,
    key: str,
    now: dt.datetime,
    now_iso: str,
    cfg: Dedup,
    observed: str | None,
    fold: _Fold | None = None,
) -> Decision:
    """A newer active copy while the episode is open: an escalation when the severity rises (or notify becomes page),
    else a duplicate that only touches the item now and then. For a folded key, any finding of the key (a new one
    joins the episode: recorded, nothing sent, unless it raises the severity)."""
    rises = SEVERITY_RANK[finding.severity] > SEVERITY_RANK[state.severity]
    upgrade = policy.action == "page" and state.action == "notify"
    if rises or upgrade:
        severity = finding.severity if rises else state.severity
        ikey = incident_key(key, severity, escalated=True) + ("p" if upgrade else "")
        if ikey in state.incident_keys or ikey in state.silenced:  # already sent (a re-sent finding), or owed
            return Decision("duplicate", "escalation already sent", key)
        new = dataclasses.replace(
            state,
            **_joined(state, finding, fold),
            action="page" if upgrade else state.action,
            severity=severity,
            incident_keys=(*state.incident_keys, ikey),
            last_seen=now_iso,
            last_notified_at=now_iso,
            seen_count=state.seen_count + 1,
            notify_count=state.notify_count + 1,
            version=state.version + 1,
            expires_at=_expiry(now, cfg.ttl_days),
            observed_at=observed,
            # Where the episode went, and where the rule deciding now sends: a notification to a chat channel that
            # becomes a page reaches the rule's on-call targets too, and the resolve all of them.
            targets=merge_targets(state.targets, policy.notify),
            rule=policy.rule or state.rule,
        )
        why = f"severity raised {state.severity.value}→{finding.severity.value}" if rises else "notify upgraded to page"
        send = Notification("trigger", ikey, severity, policy.urgency, escalated_from=state.severity)
        before, after = _write_ahead(new, (ikey,), now_iso)
        return Decision(new.action, f"{policy.reason}; {why}", key, (send,), after, state.version, before)

    joined = _joined(state, finding, fold)
    changed = any(getattr(state, name) != value for name, value in joined.items())
    stale = now - _parse_iso(state.last_seen) >= dt.timedelta(hours=cfg.touch_interval_hours)
    if changed or stale:
        new = dataclasses.replace(
            state,
            **joined,
            last_seen=now_iso,
            seen_count=state.seen_count + 1,
            version=state.version + 1,
            expires_at=_expiry(now, cfg.ttl_days),
            observed_at=observed,
        )
        return Decision("duplicate", f"episode {state.episode} already {state.status}", key, (), new, state.version)
    return Decision("duplicate", f"episode {state.episode} already {state.status}", key)


def _decide_resolution(
    finding: Finding,
    state: DedupState | None,
    key: str,
    now: dt.datetime,
    now_iso: str,
    cfg: Dedup,
    seen: dt.datetime | None,
    known: dt.datetime | None,
) -> Decision:
    why = _resolution_reason(finding)
    if state is not None and seen is not None and known is not None and seen < known:
        # A resolution older than what the state reflects (a late copy, a redrive): the finding was active
        # again after it.
        return Decision("duplicate", f"{why}, but older than the state ({state.observed_at})", key)
    if state is None:
        return _remember_resolution(finding, key, now, now_iso, cfg, seen)
    observed = _newest(state.observed_at, known, seen)
    if not state.is_open:
        if state.resolved_by in ("operator", "pagerduty") and not state.securityhub_agrees:
            # Now Security Hub agrees it is gone: a later failure is a new problem again. Who resolved it stays
            # recorded (the runbook's "who resolved this?" must not read "securityhub" for an operator's resolve).
            new = dataclasses.replace(
                state, securityhub_agrees=True, version=state.version + 1, last_seen=now_iso, observed_at=observed
            )
            return Decision(
                "duplicate",
                f"{why}; episode {state.episode} was resolved in PagerDuty ({state.resolved_by})",
                key,
                (),
                new,
                state.version,
            )
        return _resolved_again(why, state, key, now, now_iso, cfg, observed)
    remaining = tuple(m for m in state.members if m != finding.id)
    if remaining and finding.record_state == "ARCHIVED" and finding.compliance_status != "PASSED":
        # An archived copy (e.g. the legacy per-standard finding after consolidation was switched on) while
        # other findings of the same problem are still live: the problem is not fixed.
        new = dataclasses.replace(state, members=remaining, version=state.version + 1, last_seen=now_iso)
        return Decision(
            "duplicate", f"{why}; {len(remaining)} other finding(s) still open", key, (), new, state.version
        )
    return _resolve_episode(why, state, key, now, now_iso, cfg, observed)


def _remember_resolution(
    finding: Finding,
    key: str,
    now: dt.datetime,
    now_iso: str,
    cfg: Dedup,
    seen: dt.datetime | None,
    member_resolutions: tuple[str, ...] = (),
) -> Decision:
    """A resolution with nothing stored: remember it for a while, so that an older active copy still in flight (two
    copies of a new finding, a crashed attempt, a redrive) does not page a problem Security Hub reports gone."""
    memory = DedupState(
        key=key,
        status="resolved",
        episode=0,
        action="notify",
        severity=finding.severity,
        incident_keys=(),
        members=(),
        finding_id=finding.id,
        product_arn=finding.product_arn,
        title=finding.title[:200],
        first_seen=now_iso,
        last_seen=now_iso,
        last_notified_at=now_iso,
        seen_count=1,
        notify_count=0,
        version=1,
        expires_at=_expiry(now, cfg.resolution_memory_days),
        account=finding.account,
        finding_format=finding.format.value,
        resolved_at=now_iso,
        resolved_by="securityhub",
        observed_at=_time_iso(seen) if seen else None,
        member_resolutions=member_resolutions,
    )
    return Decision("drop", f"{_resolution_reason(finding)}; nothing was open", key, (), memory, None)


def _resolved_again(
    why: str, state: DedupState, key: str, now: dt.datetime, now_iso: str, cfg: Dedup, observed: str | None
) -> Decision:
    """A resolution of an episode Security Hub already resolved."""
    stale = now - _parse_iso(state.last_seen) >= dt.timedelta(hours=cfg.touch_interval_hours)
    if observed != state.observed_at and stale:
        # Keep the time moving (an active copy older than this resolution must not reopen the problem) and the
        # item alive, but only once per touch interval: passing controls are re-sent every 12-24 h.
        lifetime = cfg.resolution_memory_days if state.episode == 0 else cfg.ttl_days
        new = dataclasses.replace(
            state,
            version=state.version + 1,
            observed_at=observed,
            last_seen=now_iso,
            seen_count=state.seen_count + 1,
            expires_at=max(state.expires_at, _expiry(now, lifetime)),
        )
        return Decision("duplicate", f"{why}; episode {state.episode} already resolved", key, (), new, state.version)
    return Decision("duplicate", f"{why}; episode {state.episode} already resolved", key)


def _resolve_episode(
    why: str,
    state: DedupState,
    key: str,
    now: dt.datetime,
    now_iso: str,
    cfg: Dedup,
    observed: str | None,
    member_resolutions: tuple[str, ...] | None = None,
) -> Decision:
    """Security Hub reports the open episode's problem gone: resolve every incident of the episode, once. What a
    silence held back was never sent: it is not resolved, only forgotten."""
    if state.silenced and not state.incident_keys:
        why = f"{why}; it never paged (held back by silence {state.silenced_by}): nothing to resolve"
    new = dataclasses.replace(
        state,
        **_UNSILENCED,
        status="resolved",
        members=(),
        pending=(),
        pending_since=None,
        resolved_at=now_iso,
        resolved_by="securityhub",
        last_seen=now_iso,
        seen_count=state.seen_count + 1,
        version=state.version + 1,
        expires_at=_expiry(now, cfg.ttl_days),
        observed_at=observed,
        member_resolutions=state.member_resolutions if member_resolutions is None else member_resolutions,
    )
    # Every incident of the episode, pending ones included: a trigger recorded but never confirmed may have reached
    # PagerDuty; resolving an alert that does not exist is harmless.
    sends = tuple(
        Notification("resolve", ik, state.severity, "low") for ik in state.incident_keys if not is_shared_incident(ik)
    )
    return Decision("resolve", why, key, sends, new, state.version)


def _folded_resolution(
    finding: Finding,
    state: DedupState | None,
    key: str,
    now: dt.datetime,
    now_iso: str,
    cfg: Dedup,
    seen: dt.datetime | None,
    known: dt.datetime | None,
) -> Decision:
    """A resolution of one finding of a folded vulnerability key (archived, RESOLVED, SUPPRESSED, whoever set it).

    The finding is remembered as resolved (its own time: the key's `observed_at` is about other findings and says
    nothing about this one's order), and leaves the episode's tracked findings; the episode resolves with the last of
    them. A finding the episode does not track (one beyond MAX_FOLDED_MEMBERS, or one the policy dropped) is only
    remembered."""
    why = _resolution_reason(finding)
    ref = member_ref(finding.id)
    at = _time_iso(seen) if seen is not None else ""
    if state is None:
        return _remember_resolution(finding, key, now, now_iso, cfg, seen, (f"{ref} {at}" if at else ref,))
    before = _resolution_at(state.member_resolutions, ref)
    # Already remembered as resolved at this time or later (a re-send, an older copy): nothing new about it.
    already = before is not None and (not at or before >= at)
    resolutions = state.member_resolutions if already else _with_resolution(state.member_resolutions, ref, at)
    observed = _newest(state.observed_at, known, seen)
    tracked = finding.id in state.members
    remaining = tuple(m for m in state.members if m != finding.id)
    if state.is_open:
        if (tracked and not remaining) or not state.members:
            return _resolve_episode(
                f"{why}; the last open finding of the episode", state, key, now, now_iso, cfg, observed, resolutions
            )
        if already and not tracked:
            return Decision("duplicate", f"{why}; already recorded, {len(state.members)} finding(s) still open", key)
        new = dataclasses.replace(
            state,
            members=remaining,
            member_resolutions=resolutions,
            version=state.version + 1,
            last_seen=now_iso,
            observed_at=observed,
        )
        return Decision(
            "duplicate", f"{why}; {len(remaining)} other finding(s) still open", key, (), new, state.version
        )
    if state.resolved_by in ("operator", "pagerduty") and not state.securityhub_agrees:
        # Resolved in PagerDuty while findings were still open: Security Hub agrees once the last tracked one resolves
        # (then a later failure is a new problem again, as for any key).
        reason = f"{why}; episode {state.episode} was resolved in PagerDuty ({state.resolved_by})"
        if already and not tracked:
            return Decision("duplicate", reason, key)
        new = dataclasses.replace(
            state,
            members=remaining,
            member_resolutions=resolutions,
            securityhub_agrees=not remaining,
            version=state.version + 1,
            last_seen=now_iso,
            observed_at=observed,
        )
        more = f"; {len(remaining)} other finding(s) still open" if remaining else ""
        return Decision("duplicate", reason + more, key, (), new, state.version)
    if not already:
        new = dataclasses.replace(
            state,
            member_resolutions=resolutions,
            version=state.version + 1,
            last_seen=now_iso,
            seen_count=state.seen_count + 1,
            observed_at=observed,
        )
        return Decision("duplicate", f"{why}; episode {state.episode} already resolved", key, (), new, state.version)
    return _resolved_again(why, state, key, now, now_iso, cfg, observed)


def folded_resources(
    state: DedupState, vulnerability: str, fold: Literal["cve_account", "cve_resource"], environment: str
) -> FoldedResources:
    """What a notification of the folded episode `state` says about its resources (NotifyContext.folded)."""
    return FoldedResources(
        vulnerability=vulnerability,
        fold=fold,
        resources=state.affected,
        count=max(state.affected_count, len(state.affected)),
        open_findings=len(state.members),
        findings_capped=len(state.members) >= MAX_FOLDED_MEMBERS,
        command=f"findings-router cve {vulnerability} --env {environment}",
    )


def _resolution_reason(finding: Finding) -> str:
    if finding.record_state == "ARCHIVED":
        return "archived in Security Hub"
    if finding.compliance_status == "PASSED":
        return "compliance PASSED"
    return f"workflow {finding.workflow_status}"
