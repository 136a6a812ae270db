"""findings-router's own alarms reach on-call: the dead-letter alarm → its KMS-encrypted SNS topic → the deployed
meta-alerts Lambda → PagerDuty, opened on ALARM and resolved on OK (one incident per alarm).

The alarm is set with `SetAlarmState`: the alarms evaluate 5-minute periods, too slow for this run, so the metric
→ alarm step is not exercised here (docs/e2e.md).
"""

from __future__ import annotations

import pytest

from findings_router.domain.alarms import AlarmChange, alarm_notification
from findings_router.domain.keys import meta_dedup_key
from findings_router.domain.notifications import NotifyContext
from findings_router.notify.pagerduty.events import build_event
from tests.e2e.harness.environments import environments
from tests.e2e.harness.observe import alarms, wait_for
from tests.e2e.harness.session import Deployment

ENVIRONMENTS = sorted(n for n, e in environments().items() if e.policy.monitoring.meta_alerts != "off")
META_ALERT_TIMEOUT_SECONDS = 60


def meta_events(deployment: Deployment, routing_key: str, key: str) -> list[tuple[str, str]]:
    return [
        (e["event_action"], (e.get("payload") or {}).get("severity", ""))
        for e in deployment.pagerduty.accepted
        if e.get("routing_key") == routing_key and e.get("dedup_key") == key
    ]


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_a_fresh_deploy_pages_nobody(deployment: Deployment, name: str) -> None:
    """New alarms go from INSUFFICIENT_DATA to OK at deploy; each such change reaches the meta-alert function, which
    sends a resolve for an incident that was never opened (PagerDuty drops it). Alarms that treat missing data as
    breaching (canary-missing, no-findings) go to ALARM at their first evaluation, before anything could emit their
    metric: this run found that they paged on-call at every fresh production deploy. Now such a "no data yet" alarm
    is told at low urgency (`warning`); nothing may page."""
    env = deployment.environments[name]
    by_name = alarms(deployment.aws, env.names.alarm_prefix)
    by_key = {meta_dedup_key(a["AlarmArn"]): n for n, a in by_name.items()}
    triggers = [
        e for e in deployment.pagerduty.accepted if e["event_action"] == "trigger" and e.get("dedup_key") in by_key
    ]
    breaching = {n for n, a in by_name.items() if a.get("TreatMissingData") == "breaching"}
    other = sorted({by_key[e["dedup_key"]] for e in triggers} - breaching)
    assert not other, f"{name}: a fresh deploy paged on-call for alarm(s) {other}"
    paged = sorted({by_key[e["dedup_key"]] for e in triggers if e["payload"]["severity"] != "warning"})
    assert not paged, f"{name}: a fresh deploy paged (not low urgency) for alarm(s) {paged}"


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_dead_letter_alarm_pages_then_resolves(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    alarm = alarms(deployment.aws, env.names.alarm_prefix)[f"{env.names.alarm_prefix}-dead-letters"]
    key = meta_dedup_key(alarm["AlarmArn"])
    routing_key = env.meta_alert_routing_key
    change = AlarmChange(alarm["AlarmName"], alarm["AlarmArn"], "ALARM", "e2e", "", "", "", "")
    notification = alarm_notification(change, env.policy.monitoring.meta_alerts)
    assert notification is not None
    expected = build_event(notification, NotifyContext(env.policy.environment), routing_key)
    before = meta_events(deployment, routing_key, key)
    cloudwatch = deployment.aws.client("cloudwatch")

    cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="ALARM", StateReason="e2e: dead letters")
    events = wait_for(
        f"{name}: a trigger for alarm {alarm['AlarmName']} (dedup key {key}) at the stand-in",
        lambda: meta_events(deployment, routing_key, key)[len(before) :],
        lambda got: ("trigger", expected["payload"]["severity"]) in got,
        META_ALERT_TIMEOUT_SECONDS,
    )
    assert events == [("trigger", expected["payload"]["severity"])]
    incident = deployment.pagerduty.incidents[key]
    assert alarm["AlarmName"] in incident.summary and incident.status == "triggered"

    cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue="OK", StateReason="e2e: drained")
    wait_for(
        f"{name}: the resolve of alarm {alarm['AlarmName']} at the stand-in",
        lambda: deployment.pagerduty.incidents[key].status,
        lambda status: status == "resolved",
        META_ALERT_TIMEOUT_SECONDS,
    )
