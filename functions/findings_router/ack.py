"""Acknowledgements flowing back from PagerDuty (Webhooks v3). Pure: no I/O; `now` is passed in.

* `verify_signature`: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 of the raw body with the
  subscription's secret; any matching v1 signature is accepted (several during secret rotation), compared in
  constant time; other versions are ignored.
* `parse_webhook`: the v3 body `{"event": {id, event_type, resource_type, occurred_at, agent, data: incident}}`.
* `apply_ack`: what an incident event does to our dedup state, and which Security Hub note it warrants.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from findings_router.dedup import KEY_PREFIX, DedupState, base_key

SIGNATURE_HEADER = "x-pagerduty-signature"
WEBHOOK_ID_HEADER = "x-webhook-id"
MAX_BODY_BYTES = 256 * 1024  # PagerDuty drops payloads above 256 KB; anything bigger is not from PagerDuty
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
    agent: str | None  # who did it (user summary), if a person did
    alert_keys: tuple[str, ...] = ()  # the incident's alerts' keys, when the delivery carries them

    @property
    def acted_on(self) -> bool:
        return self.event_type in ACTED_ON

    @property
    def dedup_key(self) -> str | None:
        """Our dedup key when the incident is one of ours (`fr1-…`, possibly with an escalation suffix).

        Incidents with grouped alerts have no incident_key; then their alerts' keys (our dedup_keys) say it."""
        for candidate in (self.incident_key, *self.alert_keys):
            if candidate and candidate.startswith(KEY_PREFIX):
                return base_key(candidate)
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
    agent = event.get("agent")
    agent_name = _str(agent.get("summary")) or _str(agent.get("id")) if isinstance(agent, Mapping) else None
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
    """`detail` of a `PagerDuty Webhook` event from the partner event bus (a V2 message) → `IncidentEvent`."""
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
    agent = entry.get("agent")
    alerts = incident.get("alerts")
    number = incident.get("incident_number")
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
        agent=_str(agent.get("summary"))
        if isinstance(agent, Mapping) and agent.get("type") == "user_reference"
        else None,
        alert_keys=tuple(
            k
            for a in (alerts if isinstance(alerts, list) else [])
            if isinstance(a, Mapping) and isinstance(k := a.get("alert_key"), str)
        ),
    )


@dataclass(frozen=True, slots=True)
class AckDecision:
    outcome: Literal["acknowledged", "unacknowledged", "resolved", "reopened", "noted", "no-op"]
    reason: str
    new_state: DedupState | None = None  # None: nothing to write
    note: str | None = None  # Security Hub note to add, if any
    workflow_resolved: bool = False  # also set Workflow.Status RESOLVED in Security Hub


def _who(event: IncidentEvent) -> str:
    return event.agent or "PagerDuty"


def _incident(event: IncidentEvent) -> str:
    number = f"#{event.incident_number}" if event.incident_number is not None else event.incident_id
    return f"PagerDuty incident {number}" + (f" ({event.incident_url})" if event.incident_url else "")


def _bumped(state: DedupState, event: IncidentEvent, **changes: Any) -> DedupState:
    """The next version of `state`, remembering the PagerDuty incident id."""
    return dataclasses.replace(
        state, version=state.version + 1, incident_id=state.incident_id or event.incident_id, **changes
    )


def apply_ack(state: DedupState, event: IncidentEvent, now_iso: str, resolve_workflow: bool) -> AckDecision:
    """What an incident event means for the episode in `state`."""
    kind = event.event_type
    if kind == "incident.acknowledged":
        if state.status != "open":
            return AckDecision("no-op", f"episode is {state.status}")
        new = _bumped(
            state,
            event,
            status="acknowledged",
            acknowledged_by=_who(event),
            acknowledged_at=event.occurred_at or now_iso,
        )
        note = f"Acknowledged by {_who(event)} at {event.occurred_at or now_iso} in {_incident(event)}."
        return AckDecision("acknowledged", f"by {_who(event)}", new, note)
    if kind == "incident.unacknowledged":
        if state.status != "acknowledged":
            return AckDecision("no-op", f"episode is {state.status}")
        new = _bumped(state, event, status="open", acknowledged_by=None, acknowledged_at=None)
        return AckDecision("unacknowledged", "acknowledgement timed out or was undone", new)
    if kind == "incident.resolved":
        if not state.is_open:
            # Security Hub resolved it first; PagerDuty's echo of our own resolve changes nothing.
            return AckDecision("no-op", f"episode {state.episode} already resolved ({state.resolved_by or 'unknown'})")
        new = _bumped(state, event, status="resolved", resolved_at=event.occurred_at or now_iso, resolved_by="operator")
        note = f"Resolved by {_who(event)} at {event.occurred_at or now_iso} in {_incident(event)}."
        return AckDecision("resolved", f"by {_who(event)}", new, note, workflow_resolved=resolve_workflow)
    if kind == "incident.reopened":
        if state.is_open or state.resolved_by != "operator":
            return AckDecision("no-op", "only an operator's resolve can be reopened from PagerDuty")
        new = _bumped(state, event, status="open", resolved_at=None, resolved_by=None)
        return AckDecision("reopened", f"by {_who(event)}", new, f"Reopened by {_who(event)} in {_incident(event)}.")
    if kind in ("incident.reassigned", "incident.escalated", "incident.triggered"):
        if state.incident_id:
            return AckDecision("no-op", kind.removeprefix("incident."))
        new = _bumped(state, event)  # remember the incident id for lookups
        return AckDecision("noted", "incident id recorded", new)
    return AckDecision("no-op", f"{kind} is not acted on")
