"""Meta-alerts end to end: CloudWatch alarm notifications (via SNS) page once per alarm and resolve on OK."""

from __future__ import annotations

import json

from findings_router.entrypoints import page_alarms as alarm_handler
from findings_router_local.environment import LOCAL_META_ROUTING_KEY
from tests.builders import ALARM, FakeLambdaContext
from tests.integration.conftest import ROUTING_KEY


def sns(*messages: dict) -> dict:
    return {
        "Records": [
            {"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": json.dumps(m), "Subject": None}}
            for m in messages
        ]
    }


def test_an_alarm_pages_once_however_often_it_notifies_and_resolves_on_ok(local):
    alarm_handler.install(None)
    try:
        assert alarm_handler.lambda_handler(sns(ALARM), FakeLambdaContext()) == {"sent": 1}
        alarm_handler.lambda_handler(sns(dict(ALARM, NewStateReason="still above")), FakeLambdaContext())
        assert local.receiver.notifications == 1
        [incident] = local.receiver.all_incidents
        assert incident.severity == "critical" and "findings-router itself" in incident.summary
        # Production's meta-alerts go to their own PagerDuty service, never through the findings' routing key.
        assert local.receiver.accepted[0]["routing_key"] == LOCAL_META_ROUTING_KEY != ROUTING_KEY
        alarm_handler.lambda_handler(sns(dict(ALARM, NewStateValue="OK")), FakeLambdaContext())
        assert incident.status == "resolved"
        # Not an alarm (e.g. the subscription confirmation text): ignored, nothing sent.
        assert alarm_handler.lambda_handler({"Records": [{"Sns": {"Message": "hello"}}]}, FakeLambdaContext()) == {
            "sent": 0
        }
    finally:
        alarm_handler.install(None)
