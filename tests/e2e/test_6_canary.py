"""The canary, deployed: the canary function imports its synthetic finding (the Security Hub stub emits the
"Findings - Imported" event), the deployed rule and router page the canary's own service at the stand-in (never
on-call's key), PagerDuty's webhook about that incident goes back signed to the deployed Function URL, and the run's
hops land in the state table. Time to page per hop is printed with the run's phases.
"""

from __future__ import annotations

import json

import pytest

from findings_router.adapters.canary_log import DynamoCanaryLog
from findings_router.domain.canary import incident_key
from findings_router_local.fakes.pagerduty import incident_webhook
from tests.e2e.harness.environments import environments, routing_key_for
from tests.e2e.harness.observe import wait_for
from tests.e2e.harness.session import Deployment
from tests.e2e.test_3_acknowledgements import function_url, post_webhook

CANARIES = sorted(n for n, e in environments().items() if e.policy.canary_enabled)
CANARY_TIMEOUT_SECONDS = 60


@pytest.mark.parametrize("name", CANARIES)
def test_a_canary_run_completes_through_the_deployed_path(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    policy = env.policy
    assert policy.canary.routing_key_secret is not None
    canary_key = routing_key_for(policy.canary.routing_key_secret)
    response = deployment.aws.client("lambda").invoke(FunctionName=env.names.canary_function)
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    key = incident_key(name, payload["run_id"])

    def sent() -> list[tuple[str, str]]:
        return [(e["event_action"], e["routing_key"]) for e in deployment.pagerduty.accepted if e["dedup_key"] == key]

    events = wait_for(
        f"{name}: the router to page the canary's service about run {payload['run_id']}",
        sent,
        lambda got: ("resolve", canary_key) in got,
        CANARY_TIMEOUT_SECONDS,
    )
    assert events == [("trigger", canary_key), ("resolve", canary_key)]  # never on-call's key
    [incident] = [i for i in deployment.pagerduty.all_incidents if i.dedup_key == key]
    assert env.signing_secret is not None  # production acknowledges through the Function URL
    answer = post_webhook(
        function_url(deployment, env), incident_webhook(incident, "incident.triggered", None), env.signing_secret
    )
    assert (answer.status_code, answer.json().get("outcome")) == (200, "canary-completed"), answer.text
    run = DynamoCanaryLog(env.names.state_table, deployment.aws.client("dynamodb")).latest(name)
    assert run is not None and run.run_id == payload["run_id"]
    hops = run.hop_seconds()
    assert set(hops) == {"received", "delivered", "acknowledged", "total"}, hops
    for hop, seconds in hops.items():
        deployment.phases.record(f"  canary {name}: {hop}", seconds)
