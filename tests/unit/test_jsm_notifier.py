"""The JSM Ops notifier: priority from severity and urgency, alias = incident key (URL-encoded in the close path),
field limits, the GenieKey read at each send, and JSM's answers classified without the key in any error or log line.
The shared contract (tests/contract/test_notifiers.py) runs the retry table and every kind of notification too."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import requests

from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.notifications import MetaAlert, Notification, NotifyContext, StormInfo, resolve
from findings_router.notify import DeliveryError
from findings_router.notify.jsm.alerts import (
    ALERTS_PATH,
    DETAILS_MAX_CHARS,
    build_request,
    close_path,
    details_chars,
    fit_details,
    jsm_priority,
    meta_priority,
)
from findings_router.notify.jsm.client import CHANNEL, DEFAULT_BASE_URL, JsmNotifier, classify
from findings_router.notify.jsm.recording import RecordingJsmNotifier
from findings_router.notify.retry import Retrier, RetryPolicy
from findings_router_local.fakes.jsm import create_errors, parse_route, validate_request
from tests.builders import FIXTURES, asff, load_fixture
from tests.support.http_fakes import FakeResponse, FakeTime, ScriptedSession

API_KEY = "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
BASE = "http://127.0.0.1:9"
POLICY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, budget_seconds=60, timeout_seconds=5)
ACCEPTED = FakeResponse(202, json.loads((FIXTURES / "jsm" / "response_202_accepted.json").read_text()))
[FINDING] = normalize_event(load_fixture("asff_guardduty_ssh_bruteforce.json")).findings
CONTEXT = NotifyContext("prod", FINDING, "fr1-abc", "rule high-and-critical", 2)


class HeaderSession(ScriptedSession):
    """Also keeps each request's headers."""

    def __init__(self, *script: Any) -> None:
        super().__init__(*script)
        self.headers: list[dict[str, str]] = []

    def post(self, url: str, json: Any = None, timeout: float | None = None, **kwargs: Any) -> Any:
        self.headers.append(dict(kwargs.pop("headers", None) or {}))
        return super().post(url, json=json, timeout=timeout, **kwargs)


def notifier(session: ScriptedSession, t: FakeTime | None = None, key: Any = None) -> JsmNotifier:
    t = t or FakeTime()
    retrier = Retrier(POLICY, channel=CHANNEL, sleep=t.sleep, clock=t.clock, wall_clock=t.clock)
    return JsmNotifier(BASE, key or (lambda: API_KEY), retrier, session=session)


def page(severity: Severity = Severity.HIGH, urgency: str = "high", key: str = "fr1-abc") -> Notification:
    return Notification("trigger", key, severity, urgency)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ priority


@pytest.mark.parametrize(
    ("severity", "high", "low"),
    [
        (Severity.CRITICAL, "P1", "P3"),
        (Severity.HIGH, "P2", "P3"),
        (Severity.MEDIUM, "P2", "P3"),
        (Severity.LOW, "P2", "P4"),
        (Severity.INFORMATIONAL, "P2", "P5"),
    ],
)
def test_priority_comes_from_severity_within_the_urgency_band(severity: Severity, high: str, low: str):
    assert jsm_priority(severity, "high") == high
    assert jsm_priority(severity, "low") == low


def test_a_low_urgency_notification_never_pages_and_a_page_always_does():
    for severity in Severity:
        assert jsm_priority(severity, "low") not in ("P1", "P2")
        assert jsm_priority(severity, "high") in ("P1", "P2")
    assert meta_priority("high") == "P1" and meta_priority("low") == "P3"


def test_the_alert_carries_the_priority_of_the_notification_not_of_the_finding():
    _, body = build_request(page(Severity.CRITICAL, "low"), CONTEXT)
    assert body["priority"] == "P3"
    escalated = Notification("trigger", "fr1-abc~4", Severity.CRITICAL, "high", escalated_from=Severity.HIGH)
    _, body = build_request(escalated, CONTEXT)
    assert body["priority"] == "P1" and body["alias"] == "fr1-abc~4"
    assert "[ESCALATED HIGH→CRITICAL]" in body["message"] and "escalated" in body["tags"]


# ------------------------------------------------------------------------------------------ alias and paths


def test_a_trigger_creates_an_alert_whose_alias_is_the_incident_key():
    path, body = build_request(page(), CONTEXT)
    assert path == ALERTS_PATH
    assert body["alias"] == "fr1-abc"
    assert body["entity"] == FINDING.primary_resource_id
    assert body["source"] == "findings-router-prod"
    assert create_errors(body) == {}


@pytest.mark.parametrize(
    ("alias", "encoded"),
    [
        ("fr1-abc", "fr1-abc"),
        ("fr1-abc~4", "fr1-abc~4"),
        ("fr1/a b?c#d&e=f%", "fr1%2Fa%20b%3Fc%23d%26e%3Df%25"),
        ("fr1-ü", "fr1-%C3%BC"),
    ],
)
def test_a_resolve_closes_by_alias_with_the_alias_url_encoded(alias: str, encoded: str):
    path, body = build_request(resolve(alias), NotifyContext("prod", dedup_key="fr1-abc"))
    assert path == f"{ALERTS_PATH}/{encoded}/close?identifierType=alias" == close_path(alias)
    assert body == {
        "source": "findings-router-prod",
        "user": "findings-router",
        "note": "Closed by findings-router (prod): the incident was resolved",
    }
    route = parse_route("POST", path)  # the stand-in reads the alias back
    assert not isinstance(route, str)
    assert (route.action, route.identifier, route.identifier_type) == ("close", alias, "alias")


def test_a_trigger_without_its_finding_is_a_programming_error():
    with pytest.raises(ValueError, match="needs the finding"):
        build_request(page(), NotifyContext("prod"))


# ------------------------------------------------------------------------------------------ field limits


def test_every_field_stays_within_jsms_limits_for_a_huge_finding():
    tags = {f"tag{i}": "v" * 2000 for i in range(50)}
    resources = [{"Type": "AwsEc2Instance", "Id": "arn:" + "x" * 3000 + str(i), "Tags": tags} for i in range(40)]
    finding = normalize_asff(
        asff(Resources=resources, Title="t" * 5000, Description="d" * 100_000, ProductName="Very Long " * 20)
    )
    _, body = build_request(page(), NotifyContext("prod", finding, "fr1-abc", "r" * 5000, 1))
    assert len(body["message"]) <= 130 and body["message"].endswith("…")
    assert len(body["description"]) <= 15000
    assert len(body["entity"]) <= 512
    assert all(isinstance(v, str) for v in body["details"].values())
    assert details_chars(body["details"]) <= DETAILS_MAX_CHARS
    assert len(body["tags"]) <= 20 and all(len(t) <= 50 and " " not in t for t in body["tags"])
    assert create_errors(body) == {}
    assert {"environment", "finding_id", "dedup_key"} <= set(body["details"])


def test_details_are_strings_and_the_essentials_survive_the_8000_character_budget():
    details = {f"k{i:02d}": "v" * 900 for i in range(30)} | {"finding_id": "f" * 400, "environment": "prod"}
    fitted = fit_details(details)
    assert details_chars(fitted) <= DETAILS_MAX_CHARS
    assert fitted["finding_id"] == "f" * 400 and fitted["environment"] == "prod" and "truncated" in fitted
    assert fit_details({"a": "b"}) == {"a": "b"}


def test_storm_and_meta_alerts():
    storm = StormInfo("fr1-storm-x", "product=GuardDuty, account=111122223333", 11, 5, ("i-1", "i-2"))
    _, body = build_request(Notification("trigger", storm.key, Severity.HIGH, "high", storm=storm), CONTEXT)
    assert body["message"].startswith("[prod] STORM: 11+ new HIGH findings in 5 min")
    assert (body["priority"], body["alias"], body["entity"]) == ("P2", "fr1-storm-x", storm.group)
    assert "kind:storm" in body["tags"] and body["details"]["sample_resources"] == "i-1; i-2"
    meta = Notification(
        "trigger", "fr1-meta-storm-prod", Severity.HIGH, "low", storm=storm, meta=MetaAlert("storm", storm.group)
    )
    _, body = build_request(meta, CONTEXT)
    assert body["priority"] == "P3" and "finding storm" in body["message"] and "kind:meta-alert" in body["tags"]
    alarm = MetaAlert(
        "alarm", "fr1-prod-dlq-not-empty", "Threshold Crossed", "DLQ", "111122223333", "eu-central-1", "t"
    )
    _, body = build_request(
        Notification("trigger", "fr1-meta-x", Severity.CRITICAL, "high", meta=alarm), NotifyContext("prod")
    )
    assert body["priority"] == "P1" and body["entity"] == "findings-router-prod"
    assert body["details"]["alarm"] == "fr1-prod-dlq-not-empty" and create_errors(body) == {}


# ------------------------------------------------------------------------------------------ sending


def test_sends_the_genie_key_read_at_each_send_and_returns_the_alias():
    keys = iter(["key-one", "key-two"])
    session = HeaderSession(ACCEPTED, ACCEPTED)
    jsm = notifier(session, key=lambda: next(keys))
    result = jsm.send(page(), CONTEXT)
    assert (result.status, result.attempts, result.key) == (202, 1, "fr1-abc")
    assert jsm.last_request_id == "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"
    jsm.send(resolve("fr1-abc"), CONTEXT)
    assert [h["Authorization"] for h in session.headers] == ["GenieKey key-one", "GenieKey key-two"]
    assert [url for url, _, _ in session.calls] == [
        f"{BASE}{ALERTS_PATH}",
        f"{BASE}{ALERTS_PATH}/fr1-abc/close?identifierType=alias",
    ]
    for (url, body, _), headers in zip(session.calls, session.headers, strict=True):
        assert validate_request("POST", url, headers, body, {"key-one", "key-two"}) == []


def test_the_base_url_defaults_to_atlassians_gateway_and_tolerates_a_trailing_slash():
    assert DEFAULT_BASE_URL == "https://api.atlassian.com"
    session = ScriptedSession(ACCEPTED)
    retrier = Retrier(POLICY, channel=CHANNEL)
    JsmNotifier(BASE + "/", lambda: API_KEY, retrier, session=session).send(page(), CONTEXT)
    assert session.calls[0][0] == f"{BASE}{ALERTS_PATH}"


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, None),
        (202, None),
        (400, (False, "rejected")),
        (401, (False, "rejected")),
        (403, (False, "rejected")),
        (404, (False, "rejected")),
        (422, (False, "rejected")),
        (429, (True, "rate-limited")),
        (500, (True, "unavailable")),
        (502, (True, "unavailable")),
        (503, (True, "unavailable")),
        (504, (True, "unavailable")),
    ],
)
def test_retry_table(status: int, verdict: Any):
    assert classify(status) == verdict


def test_429_waits_what_retry_after_asks_then_delivers():
    t = FakeTime()
    session = ScriptedSession(FakeResponse(429, {"message": "slow down"}, {"Retry-After": "7"}), ACCEPTED)
    result = notifier(session, t).send(page(), CONTEXT)
    assert result.attempts == 2 and t.sleeps == [7.0]
    assert session.calls[0][1] == session.calls[1][1]


def test_a_5xx_is_retried_and_a_refusal_is_not():
    session = ScriptedSession(FakeResponse(503), FakeResponse(502), ACCEPTED)
    assert notifier(session).send(page(), CONTEXT).attempts == 3
    session = ScriptedSession(FakeResponse(400, {"message": "bad"}), ACCEPTED)
    with pytest.raises(DeliveryError) as info:
        notifier(session).send(page(), CONTEXT)
    assert (info.value.retryable, info.value.status, len(session.calls)) == (False, 400, 1)


def test_a_422_names_each_refused_field_and_its_reason():
    answer = FakeResponse(422, json.loads((FIXTURES / "jsm" / "response_422_unprocessable.json").read_text()))
    with pytest.raises(DeliveryError) as info:
        notifier(ScriptedSession(answer)).send(page(), CONTEXT)
    assert str(info.value) == (
        "Jira Service Management refused the request (422): Request body is not processable. "
        "Please check the errors.: message: Message can not be empty."
    )


@pytest.mark.parametrize(
    "answer",
    [
        FakeResponse(401, {"message": f"Key {API_KEY} could not authenticate", "took": 0.0, "requestId": "r"}),
        FakeResponse(422, {"message": "bad", "errors": {"Authorization": f"GenieKey {API_KEY} is invalid"}}),
        FakeResponse(403, f"<html>{API_KEY}</html>"),
        FakeResponse(503, {"message": API_KEY}),
        requests.ConnectionError(f"https://api.atlassian.com/?key={API_KEY}"),
    ],
    ids=["401", "422-map", "403-html", "503", "network"],
)
def test_the_api_key_is_in_no_error_and_no_log_line(answer: Any, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeliveryError) as info:
        notifier(ScriptedSession(*[answer] * POLICY.max_attempts)).send(page(), CONTEXT)
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value.args)
    assert all(API_KEY not in r.getMessage() and API_KEY not in str(r.__dict__) for r in caplog.records)
    if isinstance(answer, FakeResponse) and answer.status_code in (401, 403):
        assert "refused the API key" in str(info.value)


def test_the_twin_records_the_requests_it_would_send():
    twin = RecordingJsmNotifier()
    twin.send(page(), CONTEXT)
    twin.send(resolve("fr1-abc"), CONTEXT)
    assert [p for p, _ in twin.requests] == [ALERTS_PATH, close_path("fr1-abc")]
    assert twin.resolved == ["fr1-abc"] and twin.channel == "Jira Service Management"


def test_the_stand_ins_contract_refuses_what_jsm_refuses():
    _, good = build_request(page(), CONTEXT)
    auth = {"Authorization": f"GenieKey {API_KEY}"}
    url = f"{BASE}{ALERTS_PATH}"
    assert validate_request("POST", url, auth, good, {API_KEY}) == []
    bad = {
        **good,
        "message": "m" * 131,
        "priority": "P6",
        "details": {"count": 3},
        "tags": ["t"] * 21,
        "alias": "a" * 513,
        "colour": "red",
    }
    problems = validate_request("POST", url, auth, bad, {API_KEY})
    for field in ("message", "priority", "details", "tags", "alias", "colour"):
        assert any(p.startswith(f"{field}:") for p in problems), field
    assert validate_request("POST", url, {"Authorization": "Bearer x"}, good) == [
        "Authorization must be 'GenieKey <api key>'"
    ]
    assert validate_request("POST", url, {"Authorization": "GenieKey other"}, good, {API_KEY}) == [
        "Could not authenticate"
    ]
    assert validate_request("POST", f"{BASE}{ALERTS_PATH}/fr1-abc/resolve", auth, {}) == [
        f"No route for POST {ALERTS_PATH}/fr1-abc/resolve"
    ]
    assert validate_request("POST", f"{BASE}{ALERTS_PATH}/fr1-abc/close?identifierType=name", auth, {}) != []
    assert validate_request("POST", f"{BASE}{close_path('fr1-abc')}", auth, {"note": 3, "x": 1}) == [
        "x: unknown field",
        "note: note must be a string",
    ]
