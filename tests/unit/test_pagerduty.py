"""PagerDuty Events v2: the events we build meet the contract and carry what an operator needs; retries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import requests

from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.notifications import Send
from findings_router.notify import DeliveryError
from findings_router.notify.pagerduty.client import PagerDutyNotifier
from findings_router.notify.pagerduty.events import NotifyContext, build_event, console_url
from findings_router.notify.retry import retry_after_seconds
from findings_router_local.pagerduty_receiver import validate_event
from tests.builders import asff, load_fixture

KEY = "R0UT1NGKEY0000000000000000000001"
CTX = NotifyContext("prod", "fr1-abc", "rule high-and-critical", 1)


def _trigger(finding, severity=None, urgency="high", escalated_from=None):
    send = Send("trigger", "fr1-abc", severity or finding.severity, urgency, escalated_from)
    return build_event(send, finding, CTX, KEY)


@pytest.mark.parametrize(
    "fixture",
    [
        "asff_guardduty_ssh_bruteforce.json",
        "asff_inspector_log4j.json",
        "asff_control_s3_failed.json",
        "asff_macie_sensitive_data.json",
        "asff_third_party_prowler.json",
        "ocsf_guardduty_detection.json",
        "ocsf_inspector_vulnerability.json",
    ],
)
def test_built_events_meet_the_events_v2_contract(fixture):
    for finding in normalize_event(load_fixture(fixture)).findings:
        body = _trigger(finding)
        assert validate_event(body) == []
        assert validate_event(build_event(Send("resolve", "fr1-abc", finding.severity, "low"), finding, CTX, KEY)) == []


def test_page_has_what_an_operator_needs_at_night():
    [finding] = normalize_event(load_fixture("asff_inspector_log4j.json")).findings
    body = _trigger(finding)
    payload = body["payload"]
    details = payload["custom_details"]
    assert body["dedup_key"] == "fr1-abc"
    assert payload["severity"] == "critical"
    assert "CVE-2021-44228" in payload["summary"] or "log4j" in payload["summary"]
    assert "10.0 CVSS" in payload["summary"]
    assert details["account"] == "111122223333" and details["region"] == "eu-central-1"
    assert details["cve_ids"] == ["CVE-2021-44228"]
    assert details["max_cvss"] == 10.0
    assert details["remediation"]
    assert details["resources"][0]["id"] == finding.resources[0].id
    assert details["security_hub_console"] == console_url(finding)
    assert body["links"][0]["href"] == console_url(finding)


def test_console_link_points_at_the_finding_itself():
    [finding] = normalize_event(load_fixture("asff_control_s3_failed.json")).findings
    url = console_url(finding)
    assert url.startswith(
        "https://eu-central-1.console.aws.amazon.com/securityhub/home?region=eu-central-1#/findings?search="
    )
    # The finding id, percent-encoded twice as the console expects inside its search parameter.
    assert requests.utils.unquote(requests.utils.unquote(url)).endswith(f"EQUALS\\:{finding.id}")
    body = _trigger(finding)
    texts = [link["text"] for link in body["links"]]
    assert texts[:2] == ["This finding in Security Hub", "Control S3.8"]


def test_summary_is_cut_to_pagerdutys_limit():
    finding = normalize_asff(asff(Title="x" * 5000, Description="y" * 10_000))
    body = _trigger(finding)
    assert len(body["payload"]["summary"]) == 1024
    assert validate_event(body) == []
    assert len(json.dumps(body)) < 512 * 1024


@pytest.mark.parametrize(
    ("severity", "urgency", "expected"),
    [
        (Severity.CRITICAL, "high", "critical"),
        (Severity.HIGH, "high", "error"),
        (Severity.LOW, "high", "error"),
        (Severity.CRITICAL, "low", "warning"),
        (Severity.MEDIUM, "low", "warning"),
        (Severity.LOW, "low", "info"),
        (Severity.INFORMATIONAL, "low", "info"),
    ],
)
def test_severity_mapping_keeps_pages_high_and_notifications_low(severity, urgency, expected):
    body = _trigger(normalize_asff(asff(severity=severity.value)), urgency=urgency)
    assert body["payload"]["severity"] == expected


def test_escalation_is_visible_in_the_summary():
    body = _trigger(normalize_asff(asff(severity="CRITICAL")), escalated_from=Severity.HIGH)
    assert body["payload"]["summary"].startswith("[prod] [ESCALATED HIGH→CRITICAL] CRITICAL")


# ------------------------------------------------------------------------------------------ retries


@dataclass
class FakeResponse:
    status_code: int
    body: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)

    def json(self):
        return self.body

    @property
    def text(self):
        return json.dumps(self.body)


class ScriptedSession:
    """Answers each post with the next scripted response (or raises it)."""

    def __init__(self, *script):
        self.script = list(script)
        self.calls = []

    def post(self, url, json=None, timeout=None):
        self.calls.append((url, json, timeout))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class FakeTime:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def _notifier(session, t, **kw):
    return PagerDutyNotifier(
        "http://127.0.0.1:9/v2/enqueue",
        lambda: KEY,
        session=session,
        sleep=t.sleep,
        clock=t.clock,
        wall_clock=t.clock,
        **kw,
    )


ACCEPTED = FakeResponse(202, {"status": "success", "dedup_key": "fr1-abc"})


def test_retries_5xx_and_timeouts_with_bounded_jittered_backoff():
    t = FakeTime()
    session = ScriptedSession(FakeResponse(500), requests.Timeout(), requests.ConnectionError(), ACCEPTED)
    result = _notifier(session, t, max_attempts=5, base_delay=1.0, max_delay=8.0).post({"x": 1})
    assert result.attempts == 4 and result.status == 202
    assert len(t.sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(t.sleeps, [1.0, 2.0, 4.0], strict=True))


def test_honours_retry_after_on_429():
    t = FakeTime()
    session = ScriptedSession(FakeResponse(429, headers={"Retry-After": "7"}), ACCEPTED)
    _notifier(session, t, budget_seconds=60).post({"x": 1})
    assert t.sleeps == [7.0]


def test_retry_after_beyond_the_budget_gives_up_at_once():
    t = FakeTime()
    session = ScriptedSession(FakeResponse(429, headers={"Retry-After": "120"}))
    with pytest.raises(DeliveryError) as info:
        _notifier(session, t, budget_seconds=30).post({"x": 1})
    assert not info.value.permanent
    assert t.sleeps == []
    assert "exceeds the time budget" in str(info.value)


def test_never_outlives_the_lambda_invocation():
    t = FakeTime()
    remaining = {"s": 12.0}
    session = ScriptedSession(*[FakeResponse(503)] * 20)
    notifier = _notifier(
        session,
        t,
        max_attempts=10,
        base_delay=2.0,
        budget_seconds=300,
        remaining_seconds=lambda: remaining["s"] - (t.now - 1000),
    )
    with pytest.raises(DeliveryError):
        notifier.post({"x": 1})
    assert t.now - 1000 <= 12.0 - 5.0  # 5 s are kept to write state and answer the batch
    assert all(timeout <= 5.0 for _, _, timeout in session.calls)


def test_gives_up_after_max_attempts_as_a_transient_error():
    t = FakeTime()
    session = ScriptedSession(*[FakeResponse(502)] * 3)
    with pytest.raises(DeliveryError) as info:
        _notifier(session, t, max_attempts=3, base_delay=0.01).post({"x": 1})
    assert not info.value.permanent and info.value.attempts == 3


def test_400_is_permanent_and_carries_pagerdutys_reason():
    t = FakeTime()
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": ["'payload.summary' is missing"]}
    session = ScriptedSession(FakeResponse(400, body))
    with pytest.raises(DeliveryError) as info:
        _notifier(session, t).post({"x": 1})
    assert info.value.permanent and info.value.status == 400
    assert "'payload.summary' is missing" in str(info.value)
    assert len(session.calls) == 1


def test_retry_after_parsing():
    assert retry_after_seconds("5", 0) == 5.0
    assert retry_after_seconds(None, 0) is None
    assert retry_after_seconds("soon", 0) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
