"""The canary end to end through the real functions: canary function → Security Hub (moto) → its import event through
SQS → the real router handler → the canary's own service at the PagerDuty receiver (contract-checked) → the
receiver's signed webhook → the real ack receiver → the run's hops in the state table."""

from __future__ import annotations

import json
from typing import Any

from findings_router.entrypoints import route_findings as router_handler
from findings_router_local.aws_local import SqsEventSource
from findings_router_local.canary_local import run_canary_round
from findings_router_local.environment import LOCAL_CANARY_ROUTING_KEY, LocalEnvironment
from tests.integration.conftest import ROUTING_KEY, WEBHOOK_SECRET


def _deliver(local: LocalEnvironment):
    def deliver(events: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "MessageBody": json.dumps(e)} for i, e in enumerate(events)]
        local.sqs.send_message_batch(QueueUrl=local.queue_url, Entries=entries)
        SqsEventSource(local.sqs, local.queue_url, router_handler.lambda_handler, batch_size=10).drain()

    return deliver


def test_a_canary_round_completes_through_every_hop_and_pages_nobody_on_call(local: LocalEnvironment, json_logs):
    assert local.receiver is not None
    first = run_canary_round(local, local.receiver, _deliver(local), signing_secret=WEBHOOK_SECRET)
    assert first.paged and first.completed, first
    assert first.webhook == "signed webhook: 200 canary-completed"
    assert set(first.hops) == {"received", "delivered", "acknowledged", "total"}
    assert all(seconds >= 0 for seconds in first.hops.values())
    # Everything went to the canary's service (trigger, then resolve), nothing through on-call's routing key.
    keys = {e["routing_key"] for e in local.receiver.accepted}
    assert keys == {LOCAL_CANARY_ROUTING_KEY} and ROUTING_KEY not in keys
    [incident] = [i for i in local.receiver.all_incidents if i.dedup_key == first.incident_key]
    assert incident.status == "resolved"
    routed = [r for r in json_logs() if r.get("message") == "canary routed"]
    assert [r["outcome"] for r in routed] == ["paged"]

    second = run_canary_round(local, local.receiver, _deliver(local), signing_secret=WEBHOOK_SECRET)
    assert second.completed and second.run_id > first.run_id
    assert len([i for i in local.receiver.all_incidents if i.routing_key == LOCAL_CANARY_ROUTING_KEY]) == 2
    assert local.state_items() == []  # the run record is not a finding's episode


def test_a_canary_copy_delivered_again_pages_nothing_more(local: LocalEnvironment):
    assert local.receiver is not None
    round_ = run_canary_round(local, local.receiver, _deliver(local), signing_secret=WEBHOOK_SECRET)
    triggers = [e for e in local.receiver.accepted if e["event_action"] == "trigger"]
    import boto3

    stored = [
        f for f in boto3.client("securityhub").get_findings()["Findings"] if f["Id"] == "findings-router-canary/prod"
    ]
    from findings_router_local.demo.corpus import imported_event

    _deliver(local)([imported_event(stored[-1])])  # EventBridge delivers at least once
    # No second trigger; the copy only resolves the run's incident again (a no-op once it is closed).
    assert [e for e in local.receiver.accepted if e["event_action"] == "trigger"] == triggers
    assert round_.completed
    assert all(i.status == "resolved" for i in local.receiver.all_incidents)


def test_with_the_partner_event_bus_the_round_completes_at_the_ack_receiver_too(moto_endpoint, tmp_path):
    """stg's acknowledgements come on PagerDuty's partner event bus (V2 messages): the canary's last hop too."""
    from findings_router_local.environment import shipped_policy_data
    from tests.builders import CONFIG_DIR

    data = shipped_policy_data(CONFIG_DIR / "stg.yaml")
    data["canary"] = {"enabled": True, "routing_key_secret": "findings-router/stg/pagerduty-canary-routing-key"}
    with LocalEnvironment(data, endpoint=moto_endpoint, reset=True, workdir=tmp_path, fast_retries=True) as local:
        local.new_router_runtime()
        local.new_ack_runtime()
        assert local.receiver is not None
        round_ = run_canary_round(local, local.receiver, _deliver(local), signing_secret=None)
    assert round_.webhook == "partner bus: canary-completed"
    assert round_.completed and "acknowledged" in round_.hops
