"""The notifier contract, run against every notifier: what the router, the ack receiver and the meta-alerts rely on.

Each channel is one entry of CHANNELS: how to build it over a scripted HTTP session, the vendor's published contract
for a request (its URL, headers and body: a signed webhook's signature is part of it), and the secret it is configured
with. The cases are the same for all: the status → retryable table (Alertmanager's Retrier), no secret in any error or
log line, every kind of notification valid against the contract for every fixture, the size limit, and the in-memory
twin sending exactly what the real integration sends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from findings_router.domain.alarms import alarm_notification, parse_alarm
from findings_router.domain.model import Finding, Severity
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.notifications import MetaAlert, Notification, NotifyContext, StormInfo, resolve
from findings_router.notify import DeliveryError, Notifier
from findings_router.notify.jsm.client import JsmNotifier
from findings_router.notify.jsm.recording import RecordingJsmNotifier
from findings_router.notify.pagerduty.client import PagerDutyNotifier
from findings_router.notify.pagerduty.events import MAX_EVENT_BYTES, event_bytes
from findings_router.notify.recording import RecordingNotifier
from findings_router.notify.retry import Retrier, RetryPolicy
from findings_router.notify.webhook.chat import SLACK_MAX_BYTES, TEAMS_MAX_BYTES
from findings_router.notify.webhook.client import Format, WebhookNotifier
from findings_router.notify.webhook.payload import MAX_BODY_BYTES as WEBHOOK_MAX_BYTES
from findings_router.notify.webhook.recording import RecordingWebhookNotifier
from findings_router_local.fakes import jsm as jsm_fake
from findings_router_local.fakes import webhook as webhook_fake
from findings_router_local.fakes.pagerduty import validate_event
from tests.builders import ALARM, FIXTURES, asff, load_fixture
from tests.support.http_fakes import FakeResponse, FakeTime, ScriptedSession

SECRET = "R0UT1NGKEYsecret0000000000000042"  # 32 base64 characters: also a valid whsec_ secret (24 bytes)
WHSEC = f"whsec_{SECRET}"
START = 1000.0  # FakeTime's clock at the start of every case


@dataclass(frozen=True)
class Sent:
    """One request as the notifier made it: a JSON body, or the exact bytes of a signed one (decoded into `body`)."""

    url: str
    headers: dict[str, str]
    raw: bytes | None
    body: Any

    @property
    def size(self) -> int:
        return len(self.raw) if self.raw is not None else event_bytes(self.body)


class WireSession(ScriptedSession):
    """A ScriptedSession that also takes bytes bodies (`data=`, what a signed webhook sends) and keeps every request's
    headers (`sent`). `calls` keeps recording (url, decoded body, timeout)."""

    def __init__(self, *script: Any) -> None:
        super().__init__(*script)
        self.sent: list[Sent] = []

    def post(self, url: str, json: Any = None, timeout: float | None = None, **kwargs: Any) -> Any:
        data = kwargs.pop("data", None)
        body = _json_loads(data) if data is not None else json
        self.sent.append(Sent(url, dict(kwargs.pop("headers", None) or {}), data, body))
        return super().post(url, json=body, timeout=timeout, **kwargs)


def _json_loads(data: bytes) -> Any:
    return json.loads(data)


@dataclass(frozen=True)
class Channel:
    name: str
    build: Callable[[ScriptedSession, FakeTime, RetryPolicy], Notifier]
    twin: Callable[[], Any]  # the in-memory twin, recording what it would send (`events`)
    validate: Callable[[Sent], list[str]]  # the vendor's published contract for one request; [] = valid
    accepted: FakeResponse
    max_bytes: int


def _retrier(channel: str, policy: RetryPolicy, t: FakeTime) -> Retrier:
    return Retrier(policy, channel=channel, sleep=t.sleep, clock=t.clock, wall_clock=t.clock)


def _pagerduty(session: ScriptedSession, t: FakeTime, policy: RetryPolicy) -> Notifier:
    retrier = _retrier("PagerDuty", policy, t)
    return PagerDutyNotifier("http://127.0.0.1:9/v2/enqueue", lambda: SECRET, retrier, session=session)


def _jsm(session: ScriptedSession, t: FakeTime, policy: RetryPolicy) -> Notifier:
    return JsmNotifier(
        "http://127.0.0.1:9", lambda: SECRET, _retrier("Jira Service Management", policy, t), session=session
    )


WEBHOOK_URLS: dict[Format, str] = {
    "standard": "http://127.0.0.1:9/hooks/findings-router",
    "slack": f"http://127.0.0.1:9/services/T0LOCAL/B0LOCAL/{SECRET}",  # the URL is the secret
    "teams": f"http://127.0.0.1:9/workflows/0f/triggers/manual/paths/invoke?api-version=1&sig={SECRET}",
}


def _webhook(format: Format) -> Callable[[ScriptedSession, FakeTime, RetryPolicy], Notifier]:
    def build(session: ScriptedSession, t: FakeTime, policy: RetryPolicy) -> Notifier:
        secret = (lambda: WHSEC) if format == "standard" else None
        retrier = _retrier(format, policy, t)
        return WebhookNotifier(WEBHOOK_URLS[format], secret, retrier, format=format, session=session, clock=t.clock)

    return build


def _signed(sent: Sent) -> list[str]:
    assert sent.raw is not None, "a standard webhook sends the exact bytes it signed"
    return webhook_fake.verify_signature(sent.headers, sent.raw, [WHSEC], now=START) + webhook_fake.validate_body(
        sent.body
    )


def _unsigned(check: Callable[[Any], list[str]]) -> Callable[[Sent], list[str]]:
    def validate(sent: Sent) -> list[str]:
        signed = [h for h in sent.headers if h.lower().startswith("webhook-")]
        return check(sent.body) + [f"a chat preset is not signed, yet sent {h}" for h in signed]

    return validate


CHANNELS = [
    Channel(
        "pagerduty",
        _pagerduty,
        lambda: RecordingNotifier(SECRET),
        lambda sent: validate_event(sent.body, {SECRET}),
        FakeResponse(202, {"status": "success", "message": "Event processed", "dedup_key": "k"}),
        MAX_EVENT_BYTES,
    ),
    Channel(
        "jsm",
        _jsm,
        RecordingJsmNotifier,
        lambda sent: jsm_fake.validate_request("POST", sent.url, sent.headers, sent.body, {SECRET}),
        FakeResponse(202, {"result": "Request will be processed", "took": 0.011, "requestId": "8d2b-4f1c"}),
        32 * 1024,  # JSM documents field limits, not a body size: they bound a body to about 25 KB
    ),
    Channel(
        "webhook",
        _webhook("standard"),
        lambda: RecordingWebhookNotifier("standard", clock=lambda: START),
        _signed,
        FakeResponse(200, {"accepted": True}),
        WEBHOOK_MAX_BYTES,
    ),
    Channel(
        "slack",
        _webhook("slack"),
        lambda: RecordingWebhookNotifier("slack", clock=lambda: START),
        _unsigned(webhook_fake.validate_slack),
        FakeResponse(200, "ok"),
        SLACK_MAX_BYTES,
    ),
    Channel(
        "teams",
        _webhook("teams"),
        lambda: RecordingWebhookNotifier("teams", clock=lambda: START),
        _unsigned(webhook_fake.validate_teams),
        FakeResponse(202, ""),
        TEAMS_MAX_BYTES,
    ),
]
POLICY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, budget_seconds=60, timeout_seconds=5)


@pytest.fixture(params=CHANNELS, ids=lambda c: c.name)
def channel(request: pytest.FixtureRequest) -> Channel:
    return request.param


def _page(finding: Finding) -> tuple[Notification, NotifyContext]:
    return (
        Notification("trigger", "fr1-abc", finding.severity, "high"),
        NotifyContext("prod", finding, "fr1-abc", "rule high", 1),
    )


def _every_kind(finding: Finding) -> list[tuple[Notification, NotifyContext]]:
    """A page, a notification, an escalation, a storm, a storm meta-alert, an alarm meta-alert and resolves."""
    context = NotifyContext("prod", finding, "fr1-abc", "rule", 2)
    storm = StormInfo("fr1-storm-x", "product=GuardDuty, account=111122223333", 11, 5, ("i-1", "i-2"))
    [alarm] = [alarm_notification(parse_alarm(ALARM), "page")]
    assert alarm is not None
    return [
        (Notification("trigger", "fr1-abc", finding.severity, "high"), context),
        (Notification("trigger", "fr1-abc", finding.severity, "low"), context),
        (Notification("trigger", "fr1-abc~4", Severity.CRITICAL, "high", escalated_from=Severity.HIGH), context),
        (Notification("trigger", storm.key, finding.severity, "high", storm=storm), context),
        (
            Notification(
                "trigger",
                "fr1-meta-storm-prod",
                finding.severity,
                "low",
                storm=storm,
                meta=MetaAlert("storm", storm.group),
            ),
            context,
        ),
        (alarm, NotifyContext("prod")),
        (resolve("fr1-abc", finding.severity), context),
        (resolve("fr1-abc~4"), NotifyContext("prod", dedup_key="fr1-abc")),  # a sibling resolve: no finding at hand
    ]


FIXTURE_FINDINGS = [
    f
    for path in sorted(FIXTURES.glob("*.json"))
    if path.name.startswith(("asff_", "ocsf_")) and "missing_required" not in path.name
    for f in normalize_event(load_fixture(path.name)).findings
]


# ------------------------------------------------------------------------------------------ the retry table


@pytest.mark.parametrize(
    ("answer", "retryable", "reason"),
    [
        (FakeResponse(400, {"message": "Event object is invalid"}), False, "rejected"),
        (FakeResponse(401), False, "rejected"),
        (FakeResponse(403), False, "rejected"),
        (FakeResponse(404), False, "rejected"),
        (FakeResponse(413), False, "rejected"),
        (FakeResponse(429), True, "rate-limited"),
        (FakeResponse(500), True, "unavailable"),
        (FakeResponse(502), True, "unavailable"),
        (FakeResponse(503), True, "unavailable"),
        (FakeResponse(504), True, "unavailable"),
        (requests.ConnectionError("refused"), True, "network"),
        (requests.Timeout("read timed out"), True, "network"),
    ],
    ids=lambda v: getattr(v, "status_code", None) or type(v).__name__ if not isinstance(v, bool | str) else str(v),
)
def test_each_answer_is_classified_retryable_or_not(channel: Channel, answer: Any, retryable: bool, reason: str):
    session, t = WireSession(*[answer] * POLICY.max_attempts), FakeTime(START)
    with pytest.raises(DeliveryError) as info:
        channel.build(session, t, POLICY).send(*_page(FIXTURE_FINDINGS[0]))
    assert info.value.retryable is retryable and info.value.reason == reason
    # Retryable answers are retried in line up to max_attempts; a refusal is sent once.
    assert len(session.calls) == (POLICY.max_attempts if retryable else 1)
    assert info.value.attempts == len(session.calls)


def test_a_retryable_failure_then_success_is_delivered(channel: Channel):
    session = WireSession(FakeResponse(503), requests.ConnectionError(), channel.accepted)
    result = channel.build(session, FakeTime(START), POLICY).send(*_page(FIXTURE_FINDINGS[0]))
    assert 200 <= result.status < 300 and len(session.calls) == 3
    assert session.calls[0][1] == session.calls[2][1]  # the same body each time: the service dedups on its key


# ------------------------------------------------------------------------------------------ secrets


@pytest.mark.parametrize(
    "answer",
    [
        FakeResponse(400, {"message": f"invalid routing key {SECRET}", "errors": [f"routing_key {SECRET} unknown"]}),
        FakeResponse(400, f"<html>bad key {SECRET}</html>"),
        FakeResponse(503, {"message": SECRET}),
        requests.ConnectionError(f"https://events.example/{SECRET}: connection refused"),
    ],
    ids=["json-error", "html-error", "5xx", "network"],
)
def test_no_secret_in_any_error_or_log_line(channel: Channel, answer: Any, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    session = WireSession(*[answer] * POLICY.max_attempts)
    with pytest.raises(DeliveryError) as info:
        channel.build(session, FakeTime(START), POLICY).send(*_page(FIXTURE_FINDINGS[0]))
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.args)
    assert all(SECRET not in record.getMessage() and SECRET not in str(record.__dict__) for record in caplog.records)


# ------------------------------------------------------------------------------------------ payloads


@pytest.mark.parametrize("finding", FIXTURE_FINDINGS, ids=lambda f: f.id[-24:])
def test_every_kind_of_notification_is_valid_against_the_vendors_contract(channel: Channel, finding: Finding):
    for notification, context in _every_kind(finding):
        session = WireSession(channel.accepted)
        channel.build(session, FakeTime(START), POLICY).send(notification, context)
        [sent] = session.sent
        assert channel.validate(sent) == [], (notification.kind, notification.key)


def test_an_oversized_finding_still_fits_the_vendors_size_limit(channel: Channel):
    tags = {f"tag{i}": "v" * 2000 for i in range(50)}
    resources = [
        {"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:eu-central-1:1:instance/i-{i}", "Tags": tags} for i in range(20)
    ]
    finding = normalize_asff(asff(Resources=resources, Title="t" * 5000, Description="d" * 100_000))
    session = WireSession(channel.accepted)
    channel.build(session, FakeTime(START), POLICY).send(*_page(finding))
    [sent] = session.sent
    assert sent.size <= channel.max_bytes and channel.validate(sent) == []


def test_the_twin_records_exactly_what_the_integration_sends(channel: Channel):
    finding = FIXTURE_FINDINGS[0]
    twin = channel.twin()
    for notification, context in _every_kind(finding):
        session = WireSession(channel.accepted)
        channel.build(session, FakeTime(START), POLICY).send(notification, context)
        twin.send(notification, context)
        assert twin.events[-1] == session.calls[0][1]


def test_the_twin_fails_on_demand_like_the_integration(channel: Channel):
    twin = channel.twin()
    twin.fail_with = DeliveryError("HTTP 503", retryable=True, reason="unavailable")
    with pytest.raises(DeliveryError):
        twin.send(*_page(FIXTURE_FINDINGS[0]))
    assert twin.events == []
