"""An operator acknowledges in PagerDuty: the deployed ack receiver takes it and the state shows it.

* `acknowledgements.mode: function_url`: a Webhooks v3 delivery signed with the subscription's secret, POSTed to the
  deployed Function URL, is answered 200 and acknowledges the episode; a forged one is answered 401 and changes
  nothing;
* `acknowledgements.mode: eventbridge`: the same action as PagerDuty's EventBridge integration delivers it (a V2
  message on the partner event bus) reaches the ack receiver through the deployed rule on that bus.

The incidents are the stand-in's, opened by the router in test_2; the webhook bodies are what the stand-in makes
of an operator's action (`PagerDutyReceiver.operator_action`), as the demo sends them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from findings_router.domain.acks import sign
from findings_router_local.demo.operator import as_partner_event
from findings_router_local.fakes.pagerduty import Incident, incident_webhook
from tests.e2e.harness.environments import Environment, environments
from tests.e2e.harness.localstack import ENDPOINT
from tests.e2e.harness.observe import dedup_states, wait_for
from tests.e2e.harness.session import Deployment

ALL = environments()
FUNCTION_URL = sorted(n for n, e in ALL.items() if e.policy.acknowledgements.mode == "function_url")
EVENTBRIDGE = sorted(n for n, e in ALL.items() if e.policy.acknowledgements.mode == "eventbridge")
ACK_TIMEOUT_SECONDS = 60
OPERATOR = "Ada Lovelace (L2 on call)"


def open_incidents(deployment: Deployment, env: Environment) -> list[Incident]:
    """The environment's open incidents at the stand-in whose episode is open in the state table."""
    states = dedup_states(deployment.aws, env.names.state_table)
    return [
        i
        for i in deployment.pagerduty.all_incidents
        if i.routing_key == env.routing_key
        and i.status == "triggered"
        and i.dedup_key in states
        and states[i.dedup_key].status == "open"
    ]


def post_webhook(url: str, body: dict[str, Any], secret: str) -> requests.Response:
    """A Webhooks v3 delivery as PagerDuty sends it (as findings_router_local.demo.operator.post_signed does), to
    LocalStack's gateway with the Function URL's host name (which needs no DNS that way)."""
    raw = json.dumps(body).encode()
    parts = urlsplit(url)
    headers = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign(raw, secret.encode()),
        "X-Webhook-Id": body["event"]["id"],
        "User-Agent": "PagerDuty-Webhook/V3.0",
    }
    return requests.post(
        f"{ENDPOINT}{parts.path.rstrip('/')}/webhooks/pagerduty", data=raw, headers=headers, timeout=30
    )


def function_url(deployment: Deployment, env: Environment) -> str:
    config = deployment.aws.client("lambda").get_function_url_config(FunctionName=env.names.ack_function)
    return str(config["FunctionUrl"])


@pytest.mark.parametrize("name", FUNCTION_URL)
def test_signed_webhook_acknowledges(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    assert env.signing_secret is not None
    incidents = open_incidents(deployment, env)
    assert incidents, f"{name}: no open incident to acknowledge (test_2 should have opened some)"
    incident = incidents[0]
    body = deployment.pagerduty.operator_action(incident, "acknowledge", OPERATOR)
    response = post_webhook(function_url(deployment, env), body, env.signing_secret)
    assert (response.status_code, response.json().get("outcome")) == (200, "acknowledged"), response.text
    state = dedup_states(deployment.aws, env.names.state_table)[incident.dedup_key]
    assert (state.status, state.acknowledged_by) == ("acknowledged", OPERATOR)


@pytest.mark.parametrize("name", FUNCTION_URL)
def test_forged_webhook_is_refused(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    incidents = open_incidents(deployment, env)
    assert incidents, f"{name}: no open incident left to try a forged resolve on"
    incident = incidents[-1]
    forged = incident_webhook(incident, "incident.resolved", "mallory")  # not from PagerDuty
    response = post_webhook(function_url(deployment, env), forged, "guessed-secret")
    assert response.status_code == 401, response.text
    assert dedup_states(deployment.aws, env.names.state_table)[incident.dedup_key].status == "open"


@pytest.mark.parametrize("name", EVENTBRIDGE)
def test_partner_bus_event_acknowledges(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    incidents = open_incidents(deployment, env)
    assert incidents, f"{name}: no open incident to acknowledge (test_2 should have opened some)"
    incident = incidents[0]
    message = as_partner_event(deployment.pagerduty.operator_action(incident, "acknowledge", OPERATOR), env.policy)
    bus = env.policy.acknowledgements.partner_event_source
    response = deployment.aws.client("events").put_events(
        Entries=[
            {
                "Source": message["source"],
                "DetailType": message["detail-type"],
                "Detail": json.dumps(message["detail"]),
                "EventBusName": bus,
            }
        ]
    )
    assert response["FailedEntryCount"] == 0, response["Entries"]
    state = wait_for(
        f"{name}: the ack receiver to acknowledge {incident.dedup_key} from the partner bus {bus}",
        lambda: dedup_states(deployment.aws, env.names.state_table)[incident.dedup_key],
        lambda s: s.status != "open",
        ACK_TIMEOUT_SECONDS,
        show=lambda s: f"status {s.status}",
    )
    assert (state.status, state.acknowledged_by) == ("acknowledged", OPERATOR)
