"""What PagerDuty makes of accepted events: incidents (one alert is one incident here), deduplicated per routing key
and dedup_key, acknowledged and resolved by events or by an operator; and the Webhooks v3 body that an operator's
action makes PagerDuty send."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from findings_router_local.tables import clip, render_table


@dataclass
class Incident:
    """What PagerDuty would make of the events (one alert == one incident here)."""

    number: int
    dedup_key: str
    routing_key: str
    status: str
    severity: str
    summary: str
    source: str
    custom_details: dict[str, Any]
    links: list[Any]
    trigger_count: int
    created_at: float
    log: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """True while triggered or acknowledged."""
        return self.status != "resolved"


class IncidentBook:
    """Every incident opened from valid events, in order. Not thread-safe: the receiver calls it under its lock."""

    def __init__(self) -> None:
        self.by_dedup_key: dict[str, Incident] = {}  # the current incident of each dedup_key
        self.all: list[Incident] = []
        self.notifications = 0  # how many times a human would have been notified (new incidents)
        self._open: dict[tuple[str, str], Incident] = {}

    def clear(self) -> None:
        self.by_dedup_key.clear()
        self.all.clear()
        self.notifications = 0
        self._open.clear()

    def apply(self, event: dict[str, Any], now: float) -> str:
        """Apply one valid event received at `now` and return its dedup_key (generated when the event has none)."""
        routing_key: str = event["routing_key"]
        action: str = event["event_action"]
        dedup_key: str = event.get("dedup_key") or uuid.uuid4().hex
        current = self._open.get((routing_key, dedup_key))
        if current is not None and not current.is_open:
            current = None
        if action == "trigger":
            if current is not None:
                current.trigger_count += 1
                current.log.append("trigger (deduplicated)")
                return dedup_key
            payload: dict[str, Any] = event["payload"]
            incident = Incident(
                number=len(self.all) + 1,
                dedup_key=dedup_key,
                routing_key=routing_key,
                status="triggered",
                severity=payload["severity"],
                summary=payload["summary"],
                source=payload["source"],
                custom_details=dict(payload.get("custom_details") or {}),
                links=list(event.get("links") or []),
                trigger_count=1,
                created_at=now,
                log=["trigger"],
            )
            self._open[(routing_key, dedup_key)] = incident
            self.by_dedup_key[dedup_key] = incident
            self.all.append(incident)
            self.notifications += 1
        elif current is not None:  # acknowledge/resolve without an open incident are dropped
            current.status = "acknowledged" if action == "acknowledge" else "resolved"
            current.log.append(action)
        return dedup_key

    @staticmethod
    def operator_action(incident: Incident, action: str, agent: str) -> dict[str, Any]:
        """An operator acknowledges or resolves `incident` in the PagerDuty app; returns the webhook PagerDuty sends."""
        event_type = {"acknowledge": "incident.acknowledged", "resolve": "incident.resolved"}[action]
        incident.status = "acknowledged" if action == "acknowledge" else "resolved"
        incident.log.append(f"{action} by {agent}")
        return incident_webhook(incident, event_type, agent)


# --------------------------------------------------------------------------- webhooks


def incident_webhook(incident: Incident, event_type: str, agent: str | None) -> dict[str, Any]:
    """A Webhooks v3 body for `incident` (shape: PagerDuty developer docs, webhooks overview)."""
    incident_id = f"PDEMO{incident.number:04d}"
    base = "https://demo.pagerduty.invalid"
    user = (
        {"html_url": f"{base}/users/PDEMOU1", "id": "PDEMOU1", "self": None, "summary": agent, "type": "user_reference"}
        if agent
        else None
    )
    return {
        "event": {
            "id": uuid.uuid4().hex[:26].upper(),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "agent": user,
            "client": None,
            "data": {
                "id": incident_id,
                "type": "incident",
                "self": None,
                "html_url": f"{base}/incidents/{incident_id}",
                "number": incident.number,
                "status": incident.status,
                "incident_key": incident.dedup_key,
                "title": incident.summary,
                "urgency": "high" if incident.severity in ("critical", "error") else "low",
            },
        }
    }


# --------------------------------------------------------------------------- rendering


def render_incidents(incidents: list[Incident]) -> str:
    """Plain-text table: #, status, severity, triggers, dedup_key, summary."""
    rows = [
        (
            str(i.number),
            i.status,
            i.severity,
            str(i.trigger_count),
            i.dedup_key,
            clip(i.summary, 60),
        )
        for i in incidents
    ]
    return render_table(("#", "status", "severity", "triggers", "dedup_key", "summary"), rows, "(no incidents)")
