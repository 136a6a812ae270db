"""A local stand-in for PagerDuty: the Events API v2 (``POST /v2/enqueue``) on 127.0.0.1.

* `contract`: what PagerDuty accepts (`validate_event`), with the answers' documented shapes;
* `incidents`: what PagerDuty makes of accepted events (incidents, dedup, acknowledge/resolve) and the Webhooks v3
  body an operator's action produces;
* `receiver`: the HTTP server (`PagerDutyReceiver`): contract checks, a rate limit, injected faults.
"""

from findings_router_local.fakes.pagerduty.contract import (
    ENQUEUE_PATH,
    EVENT_ACTIONS,
    MAX_BODY_BYTES,
    SEVERITIES,
    validate_event,
)
from findings_router_local.fakes.pagerduty.incidents import Incident, incident_webhook, render_incidents
from findings_router_local.fakes.pagerduty.receiver import PagerDutyReceiver
from findings_router_local.fakes.service import Fault, ReceivedRequest

__all__ = [
    "ENQUEUE_PATH",
    "EVENT_ACTIONS",
    "MAX_BODY_BYTES",
    "SEVERITIES",
    "Fault",
    "Incident",
    "PagerDutyReceiver",
    "ReceivedRequest",
    "incident_webhook",
    "render_incidents",
    "validate_event",
]
