"""Issue 11 end to end: the real router and ack receiver handlers, moto's server, the local PagerDuty receiver and
the Security Hub stand-in (botocore's real BatchUpdateFindings requests over HTTP, checked against botocore's model).

Each test interleaves what SQS and PagerDuty can do to one problem: two copies in flight, a container killed after
PagerDuty's 202, redeliveries, out-of-order copies, a person resolving in Security Hub, late webhooks of an earlier
episode, a Security Hub outage during an acknowledgement. The checks are what the operator lives with: every
problem pages exactly once per episode (escalations aside), resolves exactly once, and nothing stays open.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from findings_router.bootstrap import RuntimeEnv, build_ack_receiver, build_router
from findings_router.domain.acks import sign
from findings_router.entrypoints import receive_acks as ack_handler
from findings_router.entrypoints import route_findings as router_handler
from findings_router_local.environment import LocalEnvironment
from findings_router_local.fakes.pagerduty import Incident, incident_webhook
from findings_router_local.function_url import FunctionUrlServer
from findings_router_local.securityhub_local import BAD_GATEWAY, SecurityHubStandIn
from tests.builders import FakeLambdaContext, asff, control, event, sqs_event, updated
from tests.integration.conftest import WEBHOOK_SECRET, age_pending
from tests.support.faults import InterruptibleStore


@pytest.fixture
def field(local: LocalEnvironment, backoff: list[float]) -> Iterator[Field]:
    with SecurityHubStandIn() as hub:
        os.environ.update(hub.environment())  # the handlers' own boto3 clients reach the stand-in
        try:
            # Built from the environment as in Lambda (their boto3 clients reach the stand-in), the router's state
            # table behind a fault injector.
            env = RuntimeEnv.from_environ()
            store = InterruptibleStore(local.real_store())
            router_handler.install(build_router(env, store=store, pacer=None))
            ack_handler.install(build_ack_receiver(env))
            with FunctionUrlServer(ack_handler.function_url_handler) as server:
                yield Field(local, hub, server.url + ack_handler.WEBHOOK_PATH, store)
        finally:
            for name in hub.environment():
                os.environ.pop(name, None)


class Field:
    def __init__(
        self, local: LocalEnvironment, hub: SecurityHubStandIn, webhook_url: str, store: InterruptibleStore
    ) -> None:
        self.local = local
        self.hub = hub
        self.webhook_url = webhook_url
        self.store = store

    # ------------------------------------------------------------------------------------------ Security Hub

    def imported(self, finding: dict[str, Any]) -> dict[str, Any]:
        """Security Hub holds this version of the finding and emits its Imported event."""
        self.hub.put_finding(finding)
        return event(finding)

    def echoes(self) -> list[dict[str, Any]]:
        return self.hub.take_echoes()

    # ------------------------------------------------------------------------------------------ SQS → router

    def deliver(self, *events: dict[str, Any], killed_after_202: bool = False) -> dict[str, Any]:
        """One receive of these messages by one invocation; optionally the container dies right after PagerDuty
        accepted the page (before the write that confirms it)."""
        assert events, "nothing to deliver"
        if killed_after_202:
            self.store.arm(lambda state: not state.pending and state.status == "open")
        try:
            return router_handler.lambda_handler(sqs_event(*events), FakeLambdaContext())
        finally:
            self.store.disarm()

    # ------------------------------------------------------------------------------------------ PagerDuty

    def incidents(self, finding_key: str) -> list[Incident]:
        return [i for i in self.local.receiver.all_incidents if i.dedup_key.split("~")[0] == finding_key]

    def open_incidents(self) -> list[Incident]:
        return [i for i in self.local.receiver.all_incidents if i.is_open]

    def webhook(self, body: dict[str, Any]) -> requests.Response:
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Id": body["event"]["id"],
            "X-PagerDuty-Signature": sign(raw, WEBHOOK_SECRET.encode()),
            "User-Agent": "PagerDuty-Webhook/V3.0",
        }
        return requests.post(self.webhook_url, data=raw, headers=headers, timeout=10)

    def key_of(self, finding: dict[str, Any]) -> str:
        items = [i for i in self.local.state_items() if finding["Id"] in [m["S"] for m in i["members"]["L"]]]
        if not items:
            items = [i for i in self.local.state_items() if i["finding_id"]["S"] == finding["Id"]]
        [item] = items
        return str(item["pk"]["S"])

    def state(self, key: str) -> dict[str, Any]:
        [item] = [i for i in self.local.state_items() if i["pk"]["S"] == key]
        return item


def test_killed_after_the_page_then_archived_then_late_copies_page_once_and_resolve_once(field: Field) -> None:
    """Two copies of a new finding in flight; the first invocation dies after PagerDuty's 202; Security Hub archives
    the finding within the visibility timeout; then the second copy and the first one's redelivery arrive."""
    finding = asff(severity="HIGH")
    copy = field.imported(finding)
    assert len(field.deliver(copy, killed_after_202=True)["batchItemFailures"]) == 1
    archived = field.imported(updated(finding, 3, RecordState="ARCHIVED"))
    assert field.deliver(archived) == {"batchItemFailures": []}
    assert field.deliver(copy) == {"batchItemFailures": []}  # the second copy
    age_pending(field.local)
    assert field.deliver(copy) == {"batchItemFailures": []}  # the killed invocation's message, after the timeout
    key = field.key_of(finding)
    [incident] = field.incidents(key)
    assert incident.status == "resolved"
    assert incident.log == ["trigger", "resolve"]
    assert field.state(key)["status"]["S"] == "resolved" and field.state(key)["pending"]["L"] == []
    assert field.hub.workflow(finding["Id"]) != "NOTIFIED"  # never NOTIFIED on a finding Security Hub archived
    assert field.open_incidents() == []


def test_a_person_resolving_in_security_hub_then_a_late_copy_neither_pages_nor_sets_notified(field: Field) -> None:
    finding = control("S3.8", severity="CRITICAL")
    copy = field.imported(finding)
    assert field.deliver(copy) == {"batchItemFailures": []}
    assert field.hub.workflow(finding["Id"]) == "NOTIFIED"  # written back through botocore
    assert field.deliver(*field.echoes()) == {"batchItemFailures": []}  # the write-back's echo pages nobody
    # A person fixes the bucket policy and sets RESOLVED in the console (BatchUpdateFindings: UpdatedAt unchanged).
    field.hub.client().batch_update_findings(
        FindingIdentifiers=[{"Id": finding["Id"], "ProductArn": finding["ProductArn"]}],
        Workflow={"Status": "RESOLVED"},
        Note={"Text": "Public access block re-enabled (CHG-4711)", "UpdatedBy": "ada"},
    )
    assert field.deliver(*field.echoes()) == {"batchItemFailures": []}
    assert field.deliver(copy) == {"batchItemFailures": []}  # an older copy, redelivered late
    key = field.key_of(finding)
    [incident] = field.incidents(key)
    assert incident.log == ["trigger", "resolve"]
    assert field.hub.workflow(finding["Id"]) == "RESOLVED"  # not overwritten with NOTIFIED
    assert field.echoes() == []  # nothing was written back for the late copy
    assert field.open_incidents() == []


def test_acknowledgements_bind_to_their_episode_and_an_escalated_episode_resolves_together(field: Field) -> None:
    finding = asff(severity="HIGH")
    assert field.deliver(field.imported(finding)) == {"batchItemFailures": []}
    escalated = updated(finding, 5, Severity={"Label": "CRITICAL"})
    assert field.deliver(field.imported(escalated)) == {"batchItemFailures": []}
    key = field.key_of(finding)
    first, second = field.incidents(key)
    assert (first.severity, second.severity) == ("error", "critical")

    # The operator acknowledges the first page while Security Hub has a bad moment: PagerDuty is told to retry
    # (503), and its redelivery lands the note exactly once.
    ack = field.local.receiver.operator_action(first, "acknowledge", "Ada Lovelace (L2)")
    field.hub.fail_for(10, BAD_GATEWAY)
    assert field.webhook(ack).status_code == 503
    field.hub.clear_faults()
    assert field.webhook(ack).status_code == 200
    assert field.webhook(ack).status_code == 200  # PagerDuty delivers at least once
    notes = [n for n in field.hub.notes(finding["Id"]) if n.startswith("Acknowledged by Ada")]
    assert len(notes) == 1

    # Episode 1's "resolved" for the first incident, generated now but delivered late (after episode 2 opened).
    late = incident_webhook(first, "incident.resolved", None)
    # The operator resolves the escalation; the ack receiver resolves its sibling through the Events API.
    resolve = field.local.receiver.operator_action(second, "resolve", "Ada Lovelace (L2)")
    assert field.webhook(resolve).status_code == 200
    assert [i.status for i in field.incidents(key)] == ["resolved", "resolved"]
    assert field.state(key)["resolved_by"]["S"] == "operator"

    # Security Hub archives it, then the provider reports the problem again: episode 2, one new page.
    assert field.deliver(field.imported(updated(finding, 10, RecordState="ARCHIVED"))) == {"batchItemFailures": []}
    assert field.deliver(field.imported(updated(finding, 20, Severity={"Label": "HIGH"}))) == {"batchItemFailures": []}
    assert len(field.incidents(key)) == 3
    assert field.state(key)["episode"]["N"] == "2" and field.state(key)["status"]["S"] == "open"

    # The late webhook of episode 1 changes nothing in episode 2: no state change, no note.
    before = (field.state(key), field.hub.notes(finding["Id"]))
    answer = field.webhook(late)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "no-op")
    assert (field.state(key), field.hub.notes(finding["Id"])) == before

    # Security Hub resolves episode 2: one resolve, nothing left open.
    assert field.deliver(field.imported(updated(finding, 30, RecordState="ARCHIVED"))) == {"batchItemFailures": []}
    assert [i.status for i in field.incidents(key)] == ["resolved", "resolved", "resolved"]
    assert field.deliver(*field.echoes()) == {"batchItemFailures": []}
    assert len(field.incidents(key)) == 3
    assert field.open_incidents() == []
