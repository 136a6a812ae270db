"""A local stand-in for a team's webhook endpoint on 127.0.0.1: a signed findings-router webhook receiver (Standard
Webhooks, docs/webhook-schema.md), a Slack incoming webhook, or a Microsoft Teams Workflows webhook.

* `contract`: the checks (`verify_signature`, `validate_body`, `validate_slack`, `validate_teams`);
* `receiver`: the HTTP server (`WebhookReceiver`): verification, incidents by key, deduplication by `webhook-id`,
  injected faults.
"""

from findings_router_local.fakes.service import Fault, ReceivedRequest
from findings_router_local.fakes.webhook.contract import (
    MAX_BODY_BYTES,
    TYPES,
    validate_body,
    validate_slack,
    validate_teams,
    verify_signature,
)
from findings_router_local.fakes.webhook.receiver import Incident, WebhookReceiver

__all__ = [
    "MAX_BODY_BYTES",
    "TYPES",
    "Fault",
    "Incident",
    "ReceivedRequest",
    "WebhookReceiver",
    "validate_body",
    "validate_slack",
    "validate_teams",
    "verify_signature",
]
