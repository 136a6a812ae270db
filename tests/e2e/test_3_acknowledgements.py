"""An operator acknowledges in PagerDuty or in Jira Service Management: the deployed ack receiver takes it and the
state shows it.

* `acknowledgements.mode: function_url`: a Webhooks v3 delivery signed with the subscription's secret, POSTed to the
  deployed Function URL, is answered 200 and acknowledges the episode; a forged one is answered 401 and changes
  nothing;
* `acknowledgements.mode: eventbridge`: the same action as PagerDuty's EventBridge integration delivers it (a V2
  message on the partner event bus) reaches the ack receiver through the deployed rule on that bus;
* `acknowledgements.jsm_token_secret`: JSM's outgoing webhook ("alert action data", unsigned) POSTed with the token
  header to the stack's `JsmWebhookUrl` (`<Function URL>webhooks/jsm`: with mode eventbridge the same function has a
  Function URL for it) is answered 200 and acknowledges the episode; without the token, or with another, 401 and
  nothing changes.

The incidents and alerts are the stand-ins', opened by the router in test_2; the bodies are what the stand-ins make
of an operator's action (`PagerDutyReceiver.operator_action`, `JsmReceiver.operator_action`), as the demo sends them.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from findings_router.domain.acks import sign
from findings_router_local.demo.operator import as_partner_event
from findings_router_local.fakes.jsm import Alert, JsmReceiver, alert_action_data
from findings_router_local.fakes.pagerduty import Incident, incident_webhook
from tests.e2e.harness.environments import Environment, environments
from tests.e2e.harness.findings import (
    CUSTOM_ACTION_FIXTURE,
    delivered,
    fixture_events,
    own_custom_action,
    put_entry,
    rehome,
)
from tests.e2e.harness.localstack import ENDPOINT
from tests.e2e.harness.observe import dedup_states, wait_for
from tests.e2e.harness.routing import WAVE_TIMEOUT_SECONDS, put_events, securityhub_updates, seen
from tests.e2e.harness.session import Deployment
from tests.e2e.harness.targets import recording_replayer

ALL = environments()
FUNCTION_URL = sorted(n for n, e in ALL.items() if e.policy.acknowledgements.mode == "function_url")
EVENTBRIDGE = sorted(n for n, e in ALL.items() if e.policy.acknowledgements.mode == "eventbridge")
JSM = sorted(n for n, e in ALL.items() if e.policy.acknowledgements.jsm_token_secret)
ACK_TIMEOUT_SECONDS = 60
OPERATOR = "Ada Lovelace (L2 on call)"
JSM_OPERATOR = "grace.hopper@example.com"
JSM_TOKEN_HEADER = "X-Findings-Router-Token"


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


def page_through_the_custom_action(deployment: Deployment, env: Environment) -> None:
    """An operator chooses the environment's custom action on findings it has not paged (the custom action fixture's
    findings, moved to a fresh id): the router pages them through the primary notifier (`default_notify`), as the
    policy's code says."""
    aws = deployment.aws
    event = rehome(fixture_events()[CUSTOM_ACTION_FIXTURE], env.policy.accounts[0])
    event = own_custom_action(event, env.outputs["CustomActionArn"])
    stamp = str(time.time_ns())
    for finding in event["detail"]["findings"]:
        finding["Id"] = f"{finding['Id']}/e2e-ack-{stamp}"
    replay, recording = recording_replayer(env)
    replay.store.items.update(dedup_states(aws, env.names.state_table))
    routed = list(replay.route(replay.normalize_document("custom action", delivered(event, aws.account, aws.region))))
    pages = recording.sent()["pagerduty"]
    assert [r.decision.outcome for r in routed if r.decision.outcome == "page"] and pages, (
        f"{env.name}: the policy pages nothing through the custom action: {[r.decision for r in routed]}"
    )
    before = seen(deployment, env)
    put_events(deployment, [put_entry(event)])
    wait_for(
        f"{env.name}: the router to page through the custom action at the PagerDuty stand-in",
        lambda: seen(deployment, env),
        lambda s: s.records > before.records and len(s.sent["pagerduty"]) >= len(before.sent["pagerduty"]) + len(pages),
        WAVE_TIMEOUT_SECONDS,
        show=lambda s: (
            f"{s.records - before.records} messages handled, "
            f"{len(s.sent['pagerduty']) - len(before.sent['pagerduty'])} of {len(pages)} PagerDuty events"
        ),
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
    """PagerDuty's action on an incident of the environment. Where the rules page elsewhere (staging: JSM) and what
    PagerDuty got is closed by now, an operator first pages through the custom action, which goes to PagerDuty."""
    env = deployment.environments[name]
    incidents = open_incidents(deployment, env)
    if not incidents and env.policy.notifiers:
        page_through_the_custom_action(deployment, env)
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


def post_jsm(url: str, body: dict[str, Any], token: str | None) -> requests.Response:
    """JSM's outgoing webhook as its integration sends it (as findings_router_local.demo.operator.post_jsm does: the
    token in a header, no signature), to LocalStack's gateway with the Function URL's host name."""
    parts = urlsplit(url)
    headers = {"Host": parts.netloc, "Content-Type": "application/json"}
    if token is not None:
        headers[JSM_TOKEN_HEADER] = token
    return requests.post(f"{ENDPOINT}{parts.path}", data=json.dumps(body).encode(), headers=headers, timeout=30)


def jsm_webhook_url(deployment: Deployment, env: Environment) -> str:
    """The stack's `JsmWebhookUrl` output: the ack receiver's Function URL and `webhooks/jsm`."""
    url = env.outputs.get("JsmWebhookUrl")
    assert url, f"{env.name}: no JsmWebhookUrl among the stack's outputs {sorted(env.outputs)}"
    assert url == function_url(deployment, env) + "webhooks/jsm", url
    return url


def open_alerts(deployment: Deployment, env: Environment) -> list[tuple[JsmReceiver, Alert]]:
    """The environment's open, unacknowledged JSM alerts (at its JSM notifiers' stand-ins) whose episode is open."""
    states = dedup_states(deployment.aws, env.names.state_table)
    return [
        (receiver, alert)
        for receiver in env.targets.values()
        if isinstance(receiver, JsmReceiver)
        for alert in receiver.all_alerts
        if alert.is_open and not alert.acknowledged and alert.alias in states and states[alert.alias].status == "open"
    ]


@pytest.mark.parametrize("name", JSM)
def test_jsm_acknowledgement_acknowledges(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    assert env.jsm_token is not None
    alerts = open_alerts(deployment, env)
    assert alerts, f"{name}: no open JSM alert to acknowledge (test_2 should have opened some)"
    jsm, alert = alerts[0]
    body = jsm.operator_action(alert, "Acknowledge", JSM_OPERATOR)
    response = post_jsm(jsm_webhook_url(deployment, env), body, env.jsm_token)
    assert (response.status_code, response.json().get("outcome")) == (200, "acknowledged"), response.text
    state = dedup_states(deployment.aws, env.names.state_table)[alert.alias]
    assert (state.status, state.acknowledged_by) == ("acknowledged", JSM_OPERATOR)
    # Security Hub is told where and by whom (the finding's note), before the answer.
    wanted = f"Acknowledged by {JSM_OPERATOR} at "
    notes = [(u.get("Note") or {}).get("Text") or u.get("Comment") or "" for u in securityhub_updates()]
    told = [n for n in notes if n.startswith(wanted) and f"in Jira Service Management alert #{alert.tiny_id}" in n]
    assert told, f"{name}: no Security Hub note of the JSM acknowledgement; notes: {notes[-5:]}"


@pytest.mark.parametrize("name", JSM)
def test_jsm_webhook_without_the_token_is_refused(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    alerts = open_alerts(deployment, env)
    assert alerts, f"{name}: no open JSM alert left to try a close without the token on"
    _, alert = alerts[-1]
    close = alert_action_data(alert, "Close", "mallory", time.time())  # not from JSM: the alert stays as it is
    url = jsm_webhook_url(deployment, env)
    for token in (None, "guessed-token"):
        response = post_jsm(url, close, token)
        assert (response.status_code, response.json().get("error")) == (401, "invalid token"), response.text
    assert dedup_states(deployment.aws, env.names.state_table)[alert.alias].status == "open"
