"""One canary round on this machine, through the real functions: the canary function imports the synthetic finding
into moto's Security Hub; Security Hub's "Findings - Imported" event goes through SQS to the router, which pages the
canary's service at the PagerDuty receiver; the receiver's webhook about that incident goes back to the ack receiver
(signed to its Function URL, or on the partner bus); the state table then holds the run's hops.

Used by the demo and the integration tests (`make e2e` drives the same round in LocalStack)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from findings_router.domain.canary import incident_key
from findings_router_local.aws_local import LambdaContext
from findings_router_local.demo.corpus import imported_event
from findings_router_local.demo.operator import as_partner_event, post_signed
from findings_router_local.environment import LocalEnvironment
from findings_router_local.fakes.pagerduty import PagerDutyReceiver, incident_webhook
from findings_router_local.function_url import FunctionUrlServer


@dataclass
class CanaryRound:
    environment: str
    run_id: str
    incident_key: str
    paged: bool  # the canary's service got a trigger for this run
    webhook: str  # how the last hop was delivered, and its answer
    hops: dict[str, float] = field(default_factory=dict)  # seconds per hop, as recorded in the state table

    @property
    def completed(self) -> bool:
        return "total" in self.hops and ("acknowledged" in self.hops or self.webhook == "none")

    def describe(self) -> str:
        """`imported → received 0.012 s → delivered 0.004 s → acknowledged 0.003 s (time to page 0.016 s)`."""
        parts = ["imported"] + [
            f"{hop} {self.hops[hop]:.3f} s" for hop in ("received", "delivered", "acknowledged") if hop in self.hops
        ]
        to_page = self.hops.get("received", 0.0) + self.hops.get("delivered", 0.0)
        return " → ".join(parts) + f" (time to page {to_page:.3f} s)"


def run_canary_round(
    local: LocalEnvironment,
    receiver: PagerDutyReceiver,
    deliver: Callable[[list[dict[str, Any]]], None],
    *,
    signing_secret: str | None,
    context: LambdaContext | None = None,
) -> CanaryRound:
    """One round; `deliver` sends events through the queue to the router (as the demo or a test drives it)."""
    import boto3

    from findings_router.adapters.canary_log import DynamoCanaryLog
    from findings_router.entrypoints import run_canary

    policy = local.policy
    context = context or LambdaContext(function_name=local.names.canary_function, clock=time.monotonic)
    run_canary.install(None)  # built from the environment: moto's Security Hub
    try:
        started = run_canary.lambda_handler({}, context)
    finally:
        run_canary.install(None)
    securityhub: Any = boto3.client("securityhub")
    stored = [f for f in securityhub.get_findings()["Findings"] if f["Id"] == started["finding_id"]]
    deliver([imported_event(stored[-1])])  # Security Hub emits the import as an EventBridge event
    key = incident_key(policy.environment, started["run_id"])
    incidents = [i for i in receiver.all_incidents if i.dedup_key == key]
    webhook = "none"
    if incidents and policy.acknowledgements.mode != "none":
        webhook = _send_webhook(local, incidents[-1], signing_secret, context)
    run = DynamoCanaryLog(local.table, local.dynamodb).latest(policy.environment)
    hops = run.hop_seconds() if run is not None and run.run_id == started["run_id"] else {}
    return CanaryRound(policy.environment, started["run_id"], key, bool(incidents), webhook, hops)


def _send_webhook(local: LocalEnvironment, incident: Any, signing_secret: str | None, context: LambdaContext) -> str:
    """PagerDuty tells the canary service's webhook subscription about the new incident."""
    from findings_router.entrypoints import receive_acks as ack_handler

    body = incident_webhook(incident, "incident.triggered", None)
    if local.policy.acknowledgements.mode == "eventbridge":
        result = ack_handler.eventbridge_handler(as_partner_event(body, local.policy), context)
        return f"partner bus: {result.get('outcome')}"
    with FunctionUrlServer(ack_handler.function_url_handler, local.names.ack_function) as server:
        status, outcome = post_signed(server.url + ack_handler.WEBHOOK_PATH, body, signing_secret or "")
    return f"signed webhook: {status} {outcome}"
