"""What JSM Ops makes of accepted requests: alerts, deduplicated by alias while open, acknowledged, closed and noted
by requests or by a person; the asynchronous request statuses; and the outgoing-webhook "alert action data" that a
person's action makes JSM send.

Alias semantics (Opsgenie, carried over by JSM): a create whose alias names an *open* alert only increments its count;
after a close, the same alias opens a new alert ("an alias is only unique among open alerts").
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from findings_router_local.fakes.jsm.contract import Route
from findings_router_local.tables import clip, render_table

# The example integration of Atlassian's "Alert action data" page.
INTEGRATION_ID = "37c8f316-17c6-49d7-899b-9c7e540c048d"
INTEGRATION_NAME = "findings-router acknowledgements"

_ACTION_NAMES = {"close": "Close", "acknowledge": "Acknowledge", "unacknowledge": "UnAcknowledge", "notes": "AddNote"}


@dataclass
class Alert:
    """One JSM alert, as the accepted requests made it."""

    alert_id: str
    tiny_id: str
    alias: str
    message: str
    priority: str
    description: str
    details: dict[str, str]
    tags: list[str]
    entity: str
    source: str
    user: str
    created_at: float  # unix seconds
    updated_at: float
    status: str = "open"  # open | closed
    acknowledged: bool = False
    count: int = 1
    notes: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass
class RequestStatus:
    """What `GET …/alerts/requests/{requestId}` reports once JSM processed an accepted request."""

    request_id: str
    action: str
    success: bool
    status: str
    alert_id: str | None
    alias: str | None
    processed_at: float


class AlertBook:
    """Every alert opened from valid requests, in order. Not thread-safe: the receiver calls it under its lock."""

    def __init__(self) -> None:
        self.by_alias: dict[str, Alert] = {}  # the current (latest) alert of each alias
        self.all: list[Alert] = []
        self.notifications = 0  # how many times a responder would have been notified (new alerts)
        self.statuses: dict[str, RequestStatus] = {}

    def clear(self) -> None:
        self.by_alias.clear()
        self.all.clear()
        self.notifications = 0
        self.statuses.clear()

    def _find(self, route: Route) -> Alert | None:
        if route.identifier_type == "alias":
            alert = self.by_alias.get(route.identifier)
            return alert if alert is not None and alert.is_open else None
        attribute = "alert_id" if route.identifier_type == "id" else "tiny_id"
        return next((a for a in reversed(self.all) if getattr(a, attribute) == route.identifier), None)

    def create(self, body: dict[str, Any], now: float, request_id: str) -> Alert:
        """Apply one valid create received at `now`."""
        alias = body.get("alias") or str(uuid.uuid4())
        current = self.by_alias.get(alias)
        if current is not None and current.is_open:
            current.count += 1
            current.updated_at = now
            current.log.append("create (deduplicated: count+1)")
            self._status(request_id, "Create", True, "Alert is deduplicated", current, now)
            return current
        alert = Alert(
            alert_id=str(uuid.uuid4()),
            tiny_id=str(len(self.all) + 1),
            alias=alias,
            message=body["message"],
            priority=body.get("priority", "P3"),
            description=body.get("description", ""),
            details=dict(body.get("details") or {}),
            tags=list(body.get("tags") or []),
            entity=body.get("entity", ""),
            source=body.get("source", ""),
            user=body.get("user", ""),
            created_at=now,
            updated_at=now,
            log=["create"],
        )
        self.by_alias[alias] = alert
        self.all.append(alert)
        self.notifications += 1
        self._status(request_id, "Create", True, "Created alert", alert, now)
        return alert

    def act(self, route: Route, body: dict[str, Any], now: float, request_id: str) -> RequestStatus:
        """Apply one valid alert action; an unknown alert fails only in the request's status (JSM answered 202)."""
        name = _ACTION_NAMES[route.action]
        alert = self._find(route)
        if alert is None:
            return self._status(request_id, name, False, "Alert does not exist", None, now, route.identifier)
        _apply(alert, route.action, body.get("note"), f"by {body.get('user') or body.get('source') or 'API'}")
        alert.updated_at = now
        return self._status(request_id, name, True, f"{name} alert", alert, now)

    def _status(
        self,
        request_id: str,
        action: str,
        success: bool,
        status: str,
        alert: Alert | None,
        now: float,
        alias: str | None = None,
    ) -> RequestStatus:
        result = RequestStatus(
            request_id,
            action,
            success,
            status,
            alert.alert_id if alert else None,
            alert.alias if alert else alias,
            now,
        )
        self.statuses[request_id] = result
        return result

    def operator_action(
        self, alert: Alert, action: str, user: str, now: float, note: str | None = None
    ) -> dict[str, Any]:
        """A person acts on `alert` in JSM ("Acknowledge", "UnAcknowledge", "Close" or "AddNote"): the alert changes,
        and JSM's outgoing Webhook integration posts the "alert action data" returned here."""
        route_action = {v: k for k, v in _ACTION_NAMES.items()}[action]
        _apply(alert, route_action, note, f"by {user}")
        alert.updated_at = now
        return alert_action_data(alert, action, user, now, note=note)


def _apply(alert: Alert, action: str, note: str | None, who: str) -> None:
    if action == "close":
        alert.status = "closed"
    elif action == "acknowledge":
        alert.acknowledged = True
    elif action == "unacknowledge":
        alert.acknowledged = False
    if note:
        alert.notes.append(note)
    alert.log.append(f"{action} {who}")


def alert_action_data(
    alert: Alert, action: str, user: str, now: float, *, note: str | None = None, source_type: str = "web"
) -> dict[str, Any]:
    """The JSON body of JSM's outgoing webhook for `action` on `alert` by `user` (shape: Atlassian support, "Alert
    action data": `createdAt` in milliseconds, `updatedAt` in nanoseconds, the user's name in `alert.username`)."""
    data: dict[str, Any] = {
        "source": {"name": "", "type": source_type},
        "alert": {
            "updatedAt": int(now * 1_000_000_000),
            "tags": list(alert.tags),
            "message": alert.message,
            "username": user,
            "alertId": alert.alert_id,
            "source": alert.source,
            "alias": alert.alias,
            "tinyId": alert.tiny_id,
            "createdAt": int(alert.created_at * 1000),
            "userId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"jsm-user:{user}")),
            "entity": alert.entity,
        },
        "action": action,
        "integrationId": INTEGRATION_ID,
        "integrationName": INTEGRATION_NAME,
    }
    if note is not None:
        data["alert"]["note"] = note
    return data


def render_alerts(alerts: list[Alert]) -> str:
    """Plain-text table: tiny id, status, priority, count, alias, message."""
    rows = [
        (
            a.tiny_id,
            a.status + (" (acked)" if a.acknowledged and a.is_open else ""),
            a.priority,
            str(a.count),
            a.alias,
            clip(a.message, 60),
        )
        for a in alerts
    ]
    return render_table(("#", "status", "priority", "count", "alias", "message"), rows, "(no alerts)")
