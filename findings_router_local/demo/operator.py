"""How PagerDuty tells the ack receiver what an operator did: a signed Webhooks v3 delivery to the Function URL, or
the same action as a V2 message on the EventBridge partner event bus."""

from __future__ import annotations

import json
from typing import Any

from findings_router.domain.acks import sign
from findings_router.settings.schema import Policy


def post_signed(url: str, body: dict[str, Any], secret: str) -> tuple[int, str]:
    """POST a Webhooks v3 delivery as PagerDuty sends it, signed with `secret`: (HTTP status, outcome or error)."""
    import requests

    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign(raw, secret.encode()),
        "X-Webhook-Id": body["event"]["id"],
        "User-Agent": "PagerDuty-Webhook/V3.0",
    }
    response = requests.post(url, data=raw, headers=headers, timeout=10)
    outcome = response.json().get("outcome") or response.json().get("error", "")
    return response.status_code, str(outcome)


def post_jsm(url: str, body: dict[str, Any], token: str) -> tuple[int, str]:
    """POST JSM's outgoing-webhook "alert action data" with the integration's token header: (status, outcome)."""
    import requests

    headers = {"Content-Type": "application/json", "X-Findings-Router-Token": token}
    response = requests.post(url, data=json.dumps(body).encode(), headers=headers, timeout=10)
    answer = response.json()
    return response.status_code, str(answer.get("outcome") or answer.get("error", ""))


def as_partner_event(webhook: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """The same action as PagerDuty's EventBridge integration delivers it (a V2 message)."""
    event = webhook["event"]
    data = event["data"]
    v2_name = {
        "incident.triggered": "incident.trigger",
        "incident.acknowledged": "incident.acknowledge",
        "incident.resolved": "incident.resolve",
    }[event["event_type"]]
    return {
        "version": "0",
        "id": event["id"],
        "detail-type": "PagerDuty Webhook",
        "source": policy.acknowledgements.partner_event_source or "aws.partner/pagerduty.com/demo",
        "account": "111122223333",
        "time": event["occurred_at"],
        "region": "eu-central-1",
        "resources": [],
        "detail": {
            "event": v2_name,
            "id": event["id"],
            "created_on": event["occurred_at"],
            "log_entries": [{"created_at": event["occurred_at"], "agent": event["agent"]}],
            "incident": {
                "id": data["id"],
                "incident_number": data["number"],
                "html_url": data["html_url"],
                "incident_key": data["incident_key"],
                "status": data["status"],
                "title": data["title"],
                "alerts": [{"alert_key": data["incident_key"]}],
            },
        },
    }
