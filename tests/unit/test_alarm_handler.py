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


NEVER_HAD_DATA = dict(
    ALARM,
    AlarmName="findings-router-prod-canary-missing",
    OldStateValue="INSUFFICIENT_DATA",
    NewStateReason="Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated "
    "as [Breaching].",
)


def test_an_absence_alarm_of_a_fresh_deployment_tells_at_low_urgency_and_pages_once_its_metric_was_seen():
    """`make e2e` found it: a fresh production deploy paged on-call (canary-missing, no-findings) before its first
    canary could complete. Straight from INSUFFICIENT_DATA with no datapoint ever, it is a low-urgency meta-alert that
    says so; after the metric was seen (OK → ALARM), its absence pages."""
    fresh = alarm_notification(parse_alarm(NEVER_HAD_DATA), "page")
    assert fresh is not None and fresh.urgency == "low" and fresh.meta is not None
    assert fresh.meta.reason.startswith("no data yet since the alarm was created")
    stopped = alarm_notification(parse_alarm(dict(NEVER_HAD_DATA, OldStateValue="OK")), "page")
    assert stopped is not None and stopped.urgency == "high"
    # Only missing data is forgiven: a real threshold crossing straight after creation still pages.
    crossed = alarm_notification(parse_alarm(dict(ALARM, OldStateValue="INSUFFICIENT_DATA")), "page")
    assert crossed is not None and crossed.urgency == "high"
