"""Routing per rule through the real handlers: staging's policy pages Jira Service Management and a signed webhook
(the SOAR), notifications only the webhook; escalations and resolves follow the episode; a JSM acknowledgement comes
back through the ack receiver; JSM's 429 and 5xx are retried; no credential appears in any log line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from findings_router.entrypoints import receive_acks as ack_handler
from findings_router.entrypoints import route_findings as router_handler
from findings_router_local.aws_local import SqsEventSource
from findings_router_local.demo.operator import post_jsm
from findings_router_local.environment import (
    LOCAL_JSM_API_KEY,
    LOCAL_JSM_TOKEN,
    LOCAL_WEBHOOK_SECRET,
    LocalEnvironment,
)
from findings_router_local.fakes.jsm import Fault
from findings_router_local.fakes.webhook import Fault as WebhookFault
from findings_router_local.function_url import FunctionUrlServer
from tests.builders import CONFIG_DIR, asff, event, updated


@pytest.fixture
def stg(moto_endpoint: str, tmp_path: Path):
    with LocalEnvironment(
        CONFIG_DIR / "stg.yaml", endpoint=moto_endpoint, reset=True, workdir=tmp_path, fast_retries=True
    ) as local:
        local.new_router_runtime(pacer=None)
        local.new_ack_runtime()
        yield local


def deliver(local: LocalEnvironment, *raw: dict[str, Any]) -> None:
    entries = [{"Id": str(i), "MessageBody": json.dumps(event(f))} for i, f in enumerate(raw)]
    local.sqs.send_message_batch(QueueUrl=local.queue_url, Entries=entries)
    SqsEventSource(local.sqs, local.queue_url, router_handler.lambda_handler, batch_size=10).drain()


def test_pages_escalations_and_resolves_go_where_the_rule_said_and_jsm_acknowledges_back(stg, json_logs):
    assert stg.jsm is not None and stg.receiver is not None
    soar = stg.webhooks["soar"]
    stg.jsm.fail_next(Fault(429, retry_after="0"), Fault(502))  # JSM has a bad moment: retried, not lost
    soar.fail_next(WebhookFault(503), WebhookFault(429, retry_after="0"))  # so does the SOAR
    critical = asff(severity="CRITICAL", account="222233334444")
    high = asff(severity="HIGH", account="222233334444")
    deliver(stg, critical, high)
    [alert] = stg.jsm.all_alerts  # the page: one JSM alert (priority P1) ...
    assert alert.priority == "P1" and alert.status == "open"
    assert {i.type for i in soar.all_incidents} == {"finding.triggered"}  # ... and both at the SOAR
    assert len(soar.all_incidents) == 2
    assert stg.receiver.accepted == []  # nothing through PagerDuty: the rules name other targets
    assert [r.status for r in stg.jsm.requests][:3] == [429, 502, 202]
    assert [r.status for r in soar.requests][:3] == [503, 429, 200]

    # The HIGH one escalates to CRITICAL: its episode went to the SOAR; the page reaches the SOAR and, as the
    # critical rule says, JSM too.
    deliver(stg, updated(high, 10, Severity={"Label": "CRITICAL"}))
    assert len(stg.jsm.all_alerts) == 2
    assert len(soar.all_incidents) == 3 and any("~" in i.incident_key for i in soar.all_incidents)

    # The operator acknowledges the first alert in JSM: its webhook (with the token) reaches the ack receiver.
    with FunctionUrlServer(ack_handler.function_url_handler, stg.names.ack_function) as server:
        body = stg.jsm.operator_action(alert, "Acknowledge", "ada.lovelace@example.com")
        assert post_jsm(server.url + ack_handler.JSM_WEBHOOK_PATH, body, LOCAL_JSM_TOKEN) == (200, "acknowledged")
        assert post_jsm(server.url + ack_handler.JSM_WEBHOOK_PATH, body, "guessed")[0] == 401
    [state] = [i for i in stg.state_items() if i["pk"]["S"] == alert.alias]
    assert state["status"]["S"] == "acknowledged"
    assert state["acknowledged_by"]["S"] == "ada.lovelace@example.com"

    # Security Hub archives the critical finding: the episode's resolve goes to JSM and the SOAR, where it paged.
    deliver(stg, updated(critical, 20, RecordState="ARCHIVED"))
    assert stg.jsm.alerts[alert.alias].status == "closed"
    assert [i.status for i in soar.all_incidents if i.incident_key == alert.alias] == ["resolved"]

    records = json_logs()
    assert any(r.get("via") == "jsm" for r in records)  # the handlers' lines were read
    logged = json.dumps(records)
    for secret in (LOCAL_JSM_API_KEY, LOCAL_JSM_TOKEN, LOCAL_WEBHOOK_SECRET, LOCAL_WEBHOOK_SECRET[6:]):
        assert secret not in logged
