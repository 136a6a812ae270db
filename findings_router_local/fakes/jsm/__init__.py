"""A local stand-in for Jira Service Management Ops: the integration-events API (``/jsm/ops/integration/v2/alerts``)
on 127.0.0.1.

* `contract`: what JSM accepts (routes, `GenieKey`, create and action bodies: `validate_request`);
* `alerts`: what JSM makes of accepted requests (alerts by alias, request statuses) and the outgoing webhook's
  "alert action data" for a person's Acknowledge/Close;
* `receiver`: the HTTP server (`JsmReceiver`): contract checks, a rate limit, injected faults.
"""

from findings_router_local.fakes.jsm.alerts import Alert, RequestStatus, alert_action_data, render_alerts
from findings_router_local.fakes.jsm.contract import (
    ALERTS_PATH,
    PRIORITIES,
    Route,
    action_errors,
    create_errors,
    parse_route,
    validate_request,
)
from findings_router_local.fakes.jsm.receiver import JsmReceiver
from findings_router_local.fakes.service import Fault, ReceivedRequest

__all__ = [
    "ALERTS_PATH",
    "PRIORITIES",
    "Alert",
    "Fault",
    "JsmReceiver",
    "ReceivedRequest",
    "RequestStatus",
    "Route",
    "action_errors",
    "alert_action_data",
    "create_errors",
    "parse_route",
    "render_alerts",
    "validate_request",
]
