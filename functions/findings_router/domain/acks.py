"""Acknowledgements flowing back from PagerDuty (Webhooks v3, or V2 messages on EventBridge). Pure: no I/O.

* `verify_signature`: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 of the raw body with the
  subscription's secret; any matching v1 signature is accepted (several during secret rotation), compared in
  constant time; other versions are ignored.
* `parse_webhook`: the v3 body `{"event": {id, event_type, resource_type, occurred_at, agent, data: incident}}`;
  `parse_eventbridge_v2`: the V2 message PagerDuty's EventBridge integration puts on the partner event bus.
* `stale_reason`: replay protection. A signed body stays valid forever, so an event is accepted only within
  `MAX_EVENT_AGE` of its `occurred_at` (PagerDuty stops retrying after 48 h; the idempotency record lasts 72 h).
* `apply_ack`: what an incident event does to the episode in our dedup state, and what it leaves in the item's
  `outbox` (a Security Hub note, Events API resolves of sibling incidents) to be carried out after the write.

Episodes (tests/fixtures/pagerduty/FACTS.md §7): one dedup key lives through several episodes, and each episode has
its own PagerDuty incidents (a resolved alert never reopens: a later trigger with the same dedup_key opens a new
incident). An event is bound to the episode in the state only if its incident is not one of an earlier episode
(`past_incident_ids`) and, when its incident is not yet known, it did not occur before the episode opened.

Who resolved (FACTS.md §7): `agent` is who or what initiated the event; a person is a `user_reference`. Anything
else (a service, an integration such as "Events API V2", or null for automation) is PagerDuty resolving by itself:
an auto-resolve timeout, or an integration's resolve (our own Events API resolve among them). A merge resolves the
source incident with `resolve_reason: {"type": "merge_resolve_reason", "incident": <target>}` and the merging
person as agent; its alerts move to the target incident, so the episode goes on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from findings_router.domain.episodes import DedupState, parse_time
from findings_router.domain.keys import (
    CANARY_RECORD_PREFIX,
    KEY_PREFIX,
    SHADOW_PREFIX,
    SILENCE_PREFIX,
    base_key,
    is_shared_incident,
)
from findings_router.domain.model import Workflow

SIGNATURE_HEADER = "x-pagerduty-signature"


WEBHOOK_ID_HEADER = "x-webhook-id"


MAX_BODY_BYTES = 256 * 1024  # PagerDuty drops payloads above 256 KB; anything bigger is not from PagerDuty


# PagerDuty retries a webhook "for up to 48 hours" (FACTS.md §3); anything older is not a delivery but a replay of a
# captured body. It must stay below the idempotency record's lifetime (72 h), which would otherwise be the only guard.
MAX_EVENT_AGE = dt.timedelta(hours=50)


# PagerDuty's clock against the router's (both NTP-synchronised; PagerDuty stamps occurred_at with milliseconds):
# an unknown incident's event more than this before the episode opened belongs to an earlier episode.
CLOCK_SKEW = dt.timedelta(seconds=2)


MAX_INCIDENT_IDS = 20  # of one episode: its incident keys (escalations) and merge targets


USER_AGENT_TYPE = "user_reference"


MERGE_REASONS = frozenset({"merge_resolve_reason", "merged", "merge"})  # V3/REST object type; V2 string "merged"


ACTED_ON = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.reassigned",
        "incident.escalated",
        "incident.resolved",
        "incident.reopened",
    }
)


class WebhookError(ValueError):
    """A body that is not a PagerDuty v3 incident webhook (answered 400)."""


def verify_signature(raw_body: bytes, header: str | None, secrets: Iterable[bytes]) -> bool:
    if not header:
        return False
    offered = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    if not offered:
        return False
    valid = False
    candidates = [signature.encode("utf-8", "replace") for signature in offered]  # bytes: any header text compares
    for secret in secrets:
        expected = hmac.new(secret, raw_body, hashlib.sha256).hexdigest().encode()
        for signature in candidates:
            # Compare every candidate (no early exit) so timing says nothing about which part matched.
            valid |= hmac.compare_digest(expected, signature)
    return valid


def sign(raw_body: bytes, secret: bytes) -> str:
    """The header value PagerDuty would send (used by the demo's simulated operator and by tests)."""
    return "v1=" + hmac.new(secret, raw_body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class IncidentEvent:
    webhook_id: str
    event_type: str
    occurred_at: str
    incident_id: str
    incident_number: int | None
    incident_url: str | None
    incident_key: str | None
    status: str | None
    title: str
    agent: str | None  # who or what did it (the agent's summary: a person's name, "Events API V2", a service)
    alert_keys: tuple[str, ...] = ()  # the incident's alerts' keys, when the delivery carries them
    agent_type: str | None = None  # user_reference (a person), service_reference, …_integration_reference, None
    agent_channel: str | None = None  # V2 log entries only: website, api, timeout, auto, …
    merged: bool = False  # resolved because it was merged into another incident
    merged_into: str | None = None  # the target incident's id, when the delivery names it
    # What the incident is called where it lives, for notes: "PagerDuty incident", "Jira Service Management alert".
    kind: str = "PagerDuty incident"

    @property
    def acted_on(self) -> bool:
        return self.event_type in ACTED_ON

    @property
    def by_person(self) -> bool:
        return self.agent_type == USER_AGENT_TYPE

    @property
    def dedup_key(self) -> str | None:
        """Our dedup key when the incident is one of ours (`fr1-…`, possibly with an escalation suffix).

        Incidents with grouped alerts have no incident_key; then their alerts' keys (our dedup_keys) say it.
        Storm incidents (`fr1-storm-…`) belong to many findings and have no episode: not mapped (not ours to track)."""
        for candidate in (self.incident_key, *self.alert_keys):
            if candidate and is_finding_key(candidate):
                return base_key(candidate)
        return None


def is_finding_key(key: str) -> bool:
    """A dedup key of one finding's live episode (not a storm incident's, which is shared, nor the canary's record,
    a silence, or a shadow decision's episode)."""
    return (
        key.startswith(KEY_PREFIX)
        and not is_shared_incident(key)
        and not key.startswith((CANARY_RECORD_PREFIX, SILENCE_PREFIX, SHADOW_PREFIX))
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _agent(agent: Any) -> tuple[str | None, str | None]:
    """(summary, type) of an agent reference; (None, None) for null or anything else."""
    if not isinstance(agent, Mapping):
        return None, None
    return _str(agent.get("summary")) or _str(agent.get("id")), _str(agent.get("type"))


def _merge(reason: Any) -> tuple[bool, str | None]:
    """(merged, target incident id) from `resolve_reason`.

    V3 webhooks and REST: `{"type": "merge_resolve_reason", "incident": {id, type: incident_reference, …}}`;
    V2 webhooks document a string, `"merged"`; null otherwise."""
    if isinstance(reason, str):
        return reason in MERGE_REASONS, None
    if isinstance(reason, Mapping) and reason.get("type") in MERGE_REASONS:
        target = reason.get("incident")
        return True, _str(target.get("id")) if isinstance(target, Mapping) else None
    return False, None


def parse_webhook(body: Any, webhook_id: str | None = None) -> IncidentEvent:
    """A v3 webhook body (already JSON-decoded) → `IncidentEvent`. Raises `WebhookError`."""
    if not isinstance(body, Mapping) or not isinstance(body.get("event"), Mapping):
        raise WebhookError("body must be a JSON object with an `event` object")
    event = body["event"]
    event_type = _str(event.get("event_type"))
    if event_type is None:
        raise WebhookError("event.event_type is missing")
    data = event.get("data")
    if not isinstance(data, Mapping):
        raise WebhookError("event.data is missing")
    if event.get("resource_type") not in (None, "incident") or not event_type.startswith("incident."):
        raise WebhookError(f"not an incident event: {event_type}")
    incident_id = _str(data.get("id"))
    if incident_id is None:
        raise WebhookError("event.data.id (the incident id) is missing")
    agent_name, agent_type = _agent(event.get("agent"))
    merged, merged_into = _merge(data.get("resolve_reason"))
    number = data.get("number")
    return IncidentEvent(
        # The body's event id is covered by the signature; the X-Webhook-Id header is not, so a replayed body
        # with a fresh header must still count as the same delivery.
        webhook_id=_str(event.get("id")) or webhook_id or "",
        event_type=event_type,
        occurred_at=_str(event.get("occurred_at")) or "",
        incident_id=incident_id,
        incident_number=number if isinstance(number, int) else None,
        incident_url=_str(data.get("html_url")),
        incident_key=_str(data.get("incident_key")),
        status=_str(data.get("status")),
        title=_str(data.get("title")) or "",
        agent=agent_name,
        agent_type=agent_type,
        merged=merged,
        merged_into=merged_into,
    )


# PagerDuty's EventBridge integration delivers V2 webhook messages (`detail.event` like "incident.acknowledge").
V2_EVENT_TYPES = {
    "incident.trigger": "incident.triggered",
    "incident.acknowledge": "incident.acknowledged",
    "incident.unacknowledge": "incident.unacknowledged",
    "incident.resolve": "incident.resolved",
    "incident.assign": "incident.reassigned",
    "incident.escalate": "incident.escalated",
}


def parse_eventbridge_v2(detail: Any, event_id: str) -> IncidentEvent:
    """`detail` of a `PagerDuty Webhook` event from the partner event bus (a V2 message) → `IncidentEvent`.

    Who acted is the first log entry's `agent` (user, service or integration reference) and `channel.type`
    (`timeout` for an auto-resolve); the time is that entry's `created_at`."""
    if not isinstance(detail, Mapping):
        raise WebhookError("detail must be an object")
    name = _str(detail.get("event"))
    incident = detail.get("incident")
    if name is None or not isinstance(incident, Mapping):
        raise WebhookError("detail.event or detail.incident is missing")
    incident_id = _str(incident.get("id"))
    if incident_id is None:
        raise WebhookError("detail.incident.id is missing")
    entries = detail.get("log_entries")
    entry = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], Mapping) else {}
    agent_name, agent_type = _agent(entry.get("agent"))
    channel = entry.get("channel")
    alerts = incident.get("alerts")
    number = incident.get("incident_number")
    merged, merged_into = _merge(incident.get("resolve_reason"))
    return IncidentEvent(
        webhook_id=_str(detail.get("id")) or event_id,
        event_type=V2_EVENT_TYPES.get(name, name),
        occurred_at=_str(entry.get("created_at")) or _str(detail.get("created_on")) or "",
        incident_id=incident_id,
        incident_number=number if isinstance(number, int) else None,
        incident_url=_str(incident.get("html_url")),
        incident_key=_str(incident.get("incident_key")),
        status=_str(incident.get("status")),
        title=_str(incident.get("title")) or "",
        agent=agent_name,
        alert_keys=tuple(
            k
            for a in (alerts if isinstance(alerts, list) else [])
            if isinstance(a, Mapping) and isinstance(k := a.get("alert_key"), str)
        ),
        agent_type=agent_type,
        agent_channel=_str(channel.get("type")) if isinstance(channel, Mapping) else None,
        merged=merged,
        merged_into=merged_into,
    )


def stale_reason(event: IncidentEvent, now: dt.datetime) -> str | None:
    """Why an event is too old to act on (a replayed capture), or None. Such an event changes nothing."""
    occurred = parse_time(event.occurred_at)
    if occurred is None:
        return "occurred_at is missing or not a timestamp"
    if now - occurred > MAX_EVENT_AGE:
        hours = (now - occurred).total_seconds() / 3600
        return f"occurred {hours:.0f} h ago, beyond PagerDuty's 48 h of retries: a replay"
    return None


def earlier_episode(state: DedupState, event: IncidentEvent) -> str | None:
    """Why `event` belongs to an episode before the one in `state`, or None when it belongs to this one."""
    if event.incident_id in state.past_incident_ids:
        return f"incident {event.incident_id} belongs to an episode before episode {state.episode}"
    if event.incident_id in state.incident_ids or state.opened_at is None:
        return None
    occurred, opened = parse_time(event.occurred_at), parse_time(state.opened_at)
    if opened is None:
        return None
    if occurred is None:
        return (
            f"incident {event.incident_id} is unknown and its event has no time to place it in episode {state.episode}"
        )
    if occurred < opened - CLOCK_SKEW:
        return (
            f"incident {event.incident_id} is unknown and its event occurred at {event.occurred_at}, "
            f"before episode {state.episode} opened at {state.opened_at}: an earlier episode's incident"
        )
    return None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """Work recorded in the state item with the change that caused it, carried out after the write, then cleared.

    Stored as JSON `{"id", "note", "workflow", "resolve"}`: `id` is the webhook (event) id, so applying the same
    event twice never adds a second entry; `resolve` lists incident keys to resolve through the Events API."""

    id: str
    note: str | None = None
    workflow: Workflow | None = None
    resolve: tuple[str, ...] = ()

    def to_json(self) -> str:
        body = {"id": self.id, "note": self.note, "workflow": self.workflow, "resolve": list(self.resolve)}
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> OutboxEntry | None:
        """None for an entry that cannot be read (it is dropped, with a log line)."""
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            return None
        note, workflow, resolve = data.get("note"), data.get("workflow"), data.get("resolve") or []
        return cls(
            id=data["id"],
            note=note if isinstance(note, str) and note else None,
            workflow="RESOLVED" if workflow == "RESOLVED" else "NOTIFIED" if workflow == "NOTIFIED" else None,
            resolve=tuple(k for k in resolve if isinstance(k, str) and k) if isinstance(resolve, list) else (),
        )


def outbox_ids(state: DedupState) -> set[str]:
    return {entry.id for raw in state.outbox if (entry := OutboxEntry.from_json(raw)) is not None}


@dataclass(frozen=True, slots=True)
class AckDecision:
    outcome: Literal["acknowledged", "unacknowledged", "resolved", "reopened", "merged", "noted", "no-op"]
    reason: str
    new_state: DedupState | None = None  # None: nothing to write; else it carries `outbox_entry` in its outbox
    note: str | None = None  # Security Hub note to add, if any
    workflow_resolved: bool = False  # also set Workflow.Status RESOLVED in Security Hub
    resolve_keys: tuple[str, ...] = ()  # sibling incidents to resolve through the Events API
    outbox_entry: OutboxEntry | None = None


def _who(event: IncidentEvent) -> str:
    return event.agent or "PagerDuty"


def _incident(event: IncidentEvent) -> str:
    number = f"#{event.incident_number}" if event.incident_number is not None else event.incident_id
    return f"{event.kind} {number}" + (f" ({event.incident_url})" if event.incident_url else "")


def _how_automatic(event: IncidentEvent) -> str:
    """How PagerDuty resolved an incident without a person (REST `Channel`: `timeout`, `api`, `auto` …)."""
    kind = event.agent_type or ""
    if event.agent_channel == "timeout":
        return "its auto-resolve timeout"
    if "integration" in kind:
        return f"a resolve through the integration {event.agent}" if event.agent else "a resolve through an integration"
    if kind == "service_reference":
        return f"its service {event.agent} (auto-resolve timeout or an integration)" if event.agent else "its service"
    return "automation (no agent)"


def _next(state: DedupState, event: IncidentEvent, *, also: tuple[str, ...] = (), **changes: Any) -> DedupState:
    """The next version of `state`, with the event's incident (and `also`) among the episode's incidents."""
    ids = state.incident_ids
    for incident_id in (event.incident_id, *also):
        if incident_id not in ids and incident_id not in state.past_incident_ids:
            ids = (*ids, incident_id)
    ids = ids[-MAX_INCIDENT_IDS:]
    return dataclasses.replace(
        state, version=state.version + 1, incident_ids=ids, incident_id=ids[0] if ids else None, **changes
    )


def _entry_id(event: IncidentEvent) -> str:
    return event.webhook_id or f"{event.incident_id}/{event.event_type}/{event.occurred_at}"


def _with_work(
    outcome: Literal["acknowledged", "resolved", "reopened", "merged"],
    reason: str,
    new: DedupState,
    event: IncidentEvent,
    note: str | None,
    *,
    workflow_resolved: bool = False,
    resolve: tuple[str, ...] = (),
) -> AckDecision:
    """A decision whose note and resolves go into the outbox of `new`, as one entry keyed by the event id."""
    entry = None
    if note or resolve:
        entry = OutboxEntry(_entry_id(event), note, "RESOLVED" if workflow_resolved and note else None, resolve)
        new = dataclasses.replace(new, outbox=(*new.outbox, entry.to_json()))
    return AckDecision(outcome, reason, new, note, workflow_resolved, resolve, entry)


def sibling_keys(state: DedupState, event: IncidentEvent) -> tuple[str, ...]:
    """The episode's other incidents to resolve when one of them is resolved.

    Only episodes with several incidents of their own (escalations) have any; storm incidents are shared by many
    findings and never resolved per finding. When the delivery does not say which of our keys the incident carries
    (grouped alerts), every one is resolved: resolving an already resolved alert changes nothing."""
    own = [k for k in state.incident_keys if not is_shared_incident(k)]
    if len(state.targets) > 1:
        # Each of the episode's on-call targets holds its own incident of every key: all are resolved (at the one
        # where it was resolved, a no-op).
        return tuple(own)
    if len(own) < 2:
        return ()
    done = {k for k in (event.incident_key, *event.alert_keys) if k}
    return tuple(k for k in own if k not in done)


@dataclass(frozen=True, slots=True)
class _Delivery:
    """One incident event against the episode in `state`, as the handlers below see it."""

    state: DedupState
    event: IncidentEvent
    when: str  # when the event occurred (else when it arrived)
    resolve_workflow: bool
    notes: bool  # whether Security Hub notes are wanted

    def unchanged(self, reason: str) -> AckDecision:
        """Nothing happens to the episode; an open episode still learns the incident's id."""
        if self.state.is_open and self.event.incident_id not in self.state.incident_ids:
            return AckDecision(
                "noted", f"{reason}; incident {self.event.incident_id} recorded", _next(self.state, self.event)
            )
        return AckDecision("no-op", reason)

    def note(self, text: str) -> str | None:
        return text if self.notes else None


def _on_acknowledged(d: _Delivery) -> AckDecision:
    state, event = d.state, d.event
    if state.status != "open":
        return d.unchanged(f"episode is {state.status}")
    new = _next(state, event, status="acknowledged", acknowledged_by=_who(event), acknowledged_at=d.when)
    text = f"Acknowledged by {_who(event)} at {d.when} in {_incident(event)}."
    return _with_work("acknowledged", f"by {_who(event)}", new, event, d.note(text))


def _on_unacknowledged(d: _Delivery) -> AckDecision:
    if d.state.status != "acknowledged":
        return d.unchanged(f"episode is {d.state.status}")
    new = _next(d.state, d.event, status="open", acknowledged_by=None, acknowledged_at=None)
    return AckDecision("unacknowledged", "acknowledgement timed out or was undone", new)


def _on_resolved(d: _Delivery) -> AckDecision:
    state = d.state
    if not state.is_open:
        # Resolved already: by Security Hub (this is PagerDuty's echo of our own resolve), or by one of its
        # incidents (this is the echo of a sibling we resolved).
        return AckDecision("no-op", f"episode {state.episode} already resolved ({state.resolved_by or 'unknown'})")
    if d.event.merged:
        return _merged(state, d.event, d.when, d.notes)
    return _resolved(state, d.event, d.when, d.resolve_workflow, d.notes)


def _on_reopened(d: _Delivery) -> AckDecision:
    state, event = d.state, d.event
    if state.is_open:
        return d.unchanged("episode is open")
    if state.resolved_by not in ("operator", "pagerduty"):
        return AckDecision("no-op", "only a resolve in PagerDuty can be reopened from PagerDuty")
    new = _next(
        state,
        event,
        status="open",
        resolved_at=None,
        resolved_by=None,
        acknowledged_by=None,
        acknowledged_at=None,
    )
    text = f"Reopened by {_who(event)} at {d.when} in {_incident(event)}."
    return _with_work("reopened", f"by {_who(event)}", new, event, d.note(text))


def _on_other(d: _Delivery) -> AckDecision:
    """Reassigned, escalated, triggered: nothing changes, but an open episode learns the incident's id."""
    return d.unchanged(d.event.event_type.removeprefix("incident."))


# What each incident event does to the episode; any other event type is not acted on.
_HANDLERS: dict[str, Callable[[_Delivery], AckDecision]] = {
    "incident.acknowledged": _on_acknowledged,
    "incident.unacknowledged": _on_unacknowledged,
    "incident.resolved": _on_resolved,
    "incident.reopened": _on_reopened,
    "incident.reassigned": _on_other,
    "incident.escalated": _on_other,
    "incident.triggered": _on_other,
}


def apply_ack(
    state: DedupState, event: IncidentEvent, now_iso: str, resolve_workflow: bool, *, notes: bool = True
) -> AckDecision:
    """What an incident event means for the episode in `state` (`notes`: whether Security Hub notes are wanted)."""
    earlier = earlier_episode(state, event)
    if earlier is not None:
        return AckDecision("no-op", earlier)
    if _entry_id(event) in outbox_ids(state):
        # Applied already, its work still pending (a redelivery after a 5xx): the drain carries that out.
        return AckDecision("no-op", "already applied; its outbox entry is pending")
    handler = _HANDLERS.get(event.event_type)
    if handler is None:
        return AckDecision("no-op", f"{event.event_type} is not acted on")
    return handler(_Delivery(state, event, event.occurred_at or now_iso, resolve_workflow, notes))


def _merged(state: DedupState, event: IncidentEvent, when: str, notes: bool) -> AckDecision:
    """A merge resolves the source incident only because its alerts moved to the target: the episode goes on, and
    Security Hub's later resolution still resolves our alert (its dedup_key) inside the target incident."""
    target = event.merged_into
    new = _next(state, event, also=(target,) if target else ())
    into = f"PagerDuty incident {target}" if target else "another PagerDuty incident"
    text = (
        f"{_incident(event)} was merged into {into} by {_who(event)} at {when}; the alert moved there, "
        "so the finding stays open."
    )
    reason = f"merged into {target or 'an incident the delivery does not name'}"
    return _with_work("merged", reason, new, event, text if notes else None)


def _resolved(state: DedupState, event: IncidentEvent, when: str, resolve_workflow: bool, notes: bool) -> AckDecision:
    siblings = sibling_keys(state, event)
    also = f" Its {len(siblings)} other incident(s) in PagerDuty are resolved with it." if siblings else ""
    if len(state.targets) > 1:
        also = " Its incidents at the episode's other on-call services are resolved with it."
    service = event.kind.rsplit(" ", 1)[0]  # "PagerDuty", "Jira Service Management"
    if event.by_person:
        new = _next(state, event, status="resolved", resolved_at=when, resolved_by="operator")
        text = f"Resolved by {_who(event)} at {when} in {_incident(event)}.{also}"
        return _with_work(
            "resolved",
            f"by {_who(event)}",
            new,
            event,
            text if notes else None,
            workflow_resolved=resolve_workflow and notes,
            resolve=siblings,
        )
    # Nobody decided anything: never mark the finding RESOLVED in Security Hub for it.
    how = _how_automatic(event)
    new = _next(state, event, status="resolved", resolved_at=when, resolved_by="pagerduty")
    text = (
        f"Resolved automatically by {service} at {when} in {_incident(event)}, by {how}; no person resolved it, "
        f"so the finding's workflow is left as it is.{also}"
    )
    reason = f"automatically by {service}: {how}"
    return _with_work("resolved", reason, new, event, text if notes else None, resolve=siblings)


# ------------------------------------------------------------------------------------------ Jira Service Management

# JSM's outgoing webhook integration posts "alert action data" (tests/fixtures/jsm/README.md): the action → ours.
JSM_ACTIONS = {
    "Acknowledge": "incident.acknowledged",
    "UnAcknowledge": "incident.unacknowledged",
    "Close": "incident.resolved",
}
JSM_ALERT = "Jira Service Management alert"
# JSM's `source.type` of actions taken by people (the web and mobile apps, email, chat tools).
_JSM_PEOPLE = frozenset({"web", "mobile", "iOS", "Android", "email", "slack", "msteams", "chat"})


def parse_jsm_action(body: Any) -> IncidentEvent:
    """JSM's alert action data as an incident event: the alert's alias is our incident key. JSM sends no delivery id:
    (alertId, action, updatedAt) names the delivery, so a redelivery is recognized. Actions other than acknowledge,
    unacknowledge and close (Create, AddNote, …) are events nothing acts on."""
    if not isinstance(body, Mapping) or not isinstance(body.get("alert"), Mapping):
        raise WebhookError("not JSM alert action data: no `alert` object")
    alert, action = body["alert"], _str(body.get("action"))
    alert_id = _str(alert.get("alertId"))
    if action is None or alert_id is None:
        raise WebhookError("JSM alert action data without `action` or `alert.alertId`")
    updated = alert.get("updatedAt")
    source: Mapping[str, Any] = body["source"] if isinstance(body.get("source"), Mapping) else {}
    source_type = _str(source.get("type")) or ""
    person = source_type in _JSM_PEOPLE or source_type.lower() in _JSM_PEOPLE
    tiny = _str(alert.get("tinyId"))
    return IncidentEvent(
        webhook_id=f"jsm-{alert_id}-{action}-{updated}",
        event_type=JSM_ACTIONS.get(action, f"jsm.{action}"),
        occurred_at=_jsm_time(updated),
        incident_id=alert_id,
        incident_number=int(tiny) if tiny and tiny.isdigit() else None,
        incident_url=None,
        incident_key=_str(alert.get("alias")),
        status=None,
        title=_str(alert.get("message")) or "",
        agent=_str(alert.get("username")) or _str(source.get("name")),
        agent_type=USER_AGENT_TYPE if person else ("jsm_integration_reference" if source_type else None),
        kind=JSM_ALERT,
    )


def _jsm_time(value: Any) -> str:
    """JSM's `updatedAt` (nanoseconds since the epoch; `createdAt` is milliseconds) as ISO 8601."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return ""
    seconds = value / 1e9 if value > 1e14 else value / 1e3
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
