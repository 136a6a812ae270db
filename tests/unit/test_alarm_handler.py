"""Meta-alerts: the router's own CloudWatch alarms page once per alarm episode and resolve on OK."""

from __future__ import annotations

import json

import pytest

from findings_router.domain.alarms import AlarmChange, alarm_notification, parse_alarm
from findings_router.domain.keys import meta_dedup_key
from findings_router.domain.notifications import NotifyContext
from findings_router.notify.pagerduty.events import build_event
from findings_router_local.fakes.pagerduty import validate_event
from tests.builders import ALARM

KEY = "R" * 32


def alarm_body(change: AlarmChange, environment: str, routing_key: str, mode: str = "page") -> dict | None:
    """The Events v2 body the meta-alert function sends for an alarm change (None: it sends nothing)."""
    notification = alarm_notification(change, mode)
    return None if notification is None else build_event(notification, NotifyContext(environment), routing_key)


def test_alarm_triggers_a_critical_meta_alert():
    body = alarm_body(parse_alarm(json.dumps(ALARM)), "prod", KEY)
    assert body is not None and validate_event(body) == []
    assert body["event_action"] == "trigger"
    assert body["payload"]["severity"] == "critical"
    assert "findings-router itself" in body["payload"]["summary"]
    assert body["dedup_key"] == meta_dedup_key(ALARM["AlarmArn"])


def test_repeated_alarm_notifications_share_one_dedup_key_and_ok_resolves_it():
    first = alarm_body(parse_alarm(ALARM), "prod", KEY)
    again = alarm_body(parse_alarm(dict(ALARM, NewStateReason="still")), "prod", KEY)
    ok = alarm_body(parse_alarm(dict(ALARM, NewStateValue="OK")), "prod", KEY)
    assert first and again and ok
    assert first["dedup_key"] == again["dedup_key"] == ok["dedup_key"]
    assert ok["event_action"] == "resolve" and validate_event(ok) == []


def test_insufficient_data_does_nothing():
    assert alarm_body(parse_alarm(dict(ALARM, NewStateValue="INSUFFICIENT_DATA")), "prod", KEY) is None


def test_an_environment_that_only_wants_notifications_gets_a_low_urgency_meta_alert_and_off_sends_nothing():
    notify = alarm_body(parse_alarm(ALARM), "dev", KEY, mode="notify")
    assert notify is not None and notify["payload"]["severity"] == "warning"
    assert alarm_body(parse_alarm(ALARM), "dev", KEY, mode="off") is None
    assert alarm_body(parse_alarm(dict(ALARM, NewStateValue="OK")), "dev", KEY, mode="off") is None


@pytest.mark.parametrize("message", ["{}", "[]", '{"AlarmName": "x"}'])
def test_non_alarm_messages_are_rejected(message):
    with pytest.raises(ValueError):
        parse_alarm(message)
