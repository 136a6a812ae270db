"""`JsmNotifier` against the local JSM Ops stand-in over real HTTP (127.0.0.1): page, dedup by alias, close, a new
alert after the close, retries on 429 and 5xx, no retry on a refusal, hangs and dropped connections; and the
stand-in itself: its contract checks, its rate limit, and the outgoing webhook's alert action data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_event
from findings_router.domain.notifications import Notification, NotifyContext, resolve
from findings_router.notify import DeliveryError
from findings_router.notify.jsm.client import CHANNEL, JsmNotifier
from findings_router.notify.retry import Retrier, RetryPolicy
from findings_router_local.fakes.jsm import ALERTS_PATH, Fault, JsmReceiver, render_alerts
from tests.builders import FIXTURES, load_fixture

pytestmark = pytest.mark.integration

API_KEY = "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f"
KEY = "fr1-51b3ee29247fa504b3f1bcafcabfd3be8a540eca"
POLICY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, budget_seconds=20, timeout_seconds=2)
[FINDING] = normalize_event(load_fixture("asff_guardduty_ssh_bruteforce.json")).findings
CONTEXT = NotifyContext("prod", FINDING, KEY, "rule high-and-critical", 1)
PAGE = Notification("trigger", KEY, Severity.HIGH, "high")


@pytest.fixture
def receiver() -> Iterator[JsmReceiver]:
    with JsmReceiver(api_keys={API_KEY}) as jsm:
        yield jsm


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_notifier(receiver: JsmReceiver, sleeps: list[float]) -> Callable[..., JsmNotifier]:
    def make(key: str = API_KEY, policy: RetryPolicy = POLICY) -> JsmNotifier:
        return JsmNotifier(receiver.base_url, lambda: key, Retrier(policy, channel=CHANNEL, sleep=sleeps.append))

    return make


def test_binds_loopback_and_stops():
    with JsmReceiver() as jsm:
        assert jsm.url.startswith("http://127.0.0.1:") and jsm.url.endswith(ALERTS_PATH)
        url = jsm.url
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={}, timeout=2)


def test_a_page_opens_an_alert_keyed_by_the_incident_key(receiver: JsmReceiver, make_notifier: Any):
    jsm = make_notifier()
    result = jsm.send(PAGE, CONTEXT)
    assert (result.status, result.attempts, result.key) == (202, 1, KEY)
    alert = receiver.alerts[KEY]
    assert (alert.status, alert.priority, alert.count, alert.tiny_id) == ("open", "P2", 1, "1")
    assert alert.message.startswith("[prod] HIGH GuardDuty:") and alert.entity == FINDING.primary_resource_id
    assert alert.details["finding_id"] == FINDING.id and alert.source == "findings-router-prod"
    [request] = receiver.requests
    assert request.headers["Authorization"] == f"GenieKey {API_KEY}" and request.status == 202
    assert jsm.last_request_id == request.request_id
    status = receiver.request_status(request.request_id or "")
    assert status is not None and (status.action, status.success, status.alias) == ("Create", True, KEY)
    assert "P2" in render_alerts(receiver.all_alerts)


def test_the_same_alias_while_open_counts_then_close_then_a_new_alert(receiver: JsmReceiver, make_notifier: Any):
    jsm = make_notifier()
    jsm.send(PAGE, CONTEXT)
    jsm.send(PAGE, CONTEXT)
    assert receiver.alerts[KEY].count == 2 and receiver.notifications == 1
    assert jsm.send(resolve(KEY, Severity.HIGH), CONTEXT).status == 202
    first = receiver.alerts[KEY]
    assert first.status == "closed" and first.log[-1] == "close by findings-router"
    assert first.notes == ["Closed by findings-router (prod): rule high-and-critical"]
    jsm.send(PAGE, CONTEXT)
    assert receiver.notifications == 2 and [a.status for a in receiver.all_alerts] == ["closed", "open"]
    assert receiver.alerts[KEY].tiny_id == "2"


def test_an_alias_with_reserved_characters_is_closed_by_its_encoded_path(receiver: JsmReceiver, make_notifier: Any):
    odd = "fr1-odd/key?x=1#y ~4"
    jsm = make_notifier()
    jsm.send(Notification("trigger", odd, Severity.CRITICAL, "high"), CONTEXT)
    jsm.send(resolve(odd), NotifyContext("prod", dedup_key=KEY))
    assert receiver.alerts[odd].status == "closed" and receiver.alerts[odd].priority == "P1"
    assert receiver.requests[1].path == f"{ALERTS_PATH}/fr1-odd%2Fkey%3Fx%3D1%23y%20~4/close?identifierType=alias"


def test_closing_an_alias_with_no_open_alert_is_accepted_and_fails_only_in_its_request_status(
    receiver: JsmReceiver, make_notifier: Any
):
    jsm = make_notifier()
    assert jsm.send(resolve("fr1-never-opened"), NotifyContext("prod")).status == 202
    status = receiver.request_status(receiver.requests[0].request_id or "")
    assert status is not None and (status.success, status.status) == (False, "Alert does not exist")


def test_429_then_success_waits_what_retry_after_asks(receiver: JsmReceiver, make_notifier: Any, sleeps: list[float]):
    receiver.fail_next(Fault(429, retry_after="3"))
    result = make_notifier().send(PAGE, CONTEXT)
    assert result.attempts == 2 and sleeps == [3.0]
    assert [r.status for r in receiver.requests] == [429, 202] and receiver.notifications == 1


def test_5xx_is_retried_until_it_passes_or_the_attempts_run_out(receiver: JsmReceiver, make_notifier: Any):
    receiver.fail_next(Fault(500), Fault(503, retry_after="0"))
    assert make_notifier().send(PAGE, CONTEXT).attempts == 3
    receiver.reset()
    receiver.fail_for(3, Fault(502))
    with pytest.raises(DeliveryError) as info:
        make_notifier().send(PAGE, CONTEXT)
    assert (info.value.retryable, info.value.status, info.value.attempts) == (True, 502, 3)
    assert len(receiver.requests) == 3 and receiver.alerts == {}


@pytest.mark.parametrize("status", [400, 422])
def test_a_refusal_is_not_retried(receiver: JsmReceiver, make_notifier: Any, status: int):
    receiver.fail_next(Fault(status))
    with pytest.raises(DeliveryError) as info:
        make_notifier().send(PAGE, CONTEXT)
    assert (info.value.retryable, info.value.status, len(receiver.requests)) == (False, status, 1)
    assert API_KEY not in str(info.value)


def test_a_wrong_api_key_is_refused_once_and_never_shown(receiver: JsmReceiver, make_notifier: Any):
    wrong = "00000000-dead-beef-0000-000000000000"
    with pytest.raises(DeliveryError) as info:
        make_notifier(key=wrong).send(PAGE, CONTEXT)
    assert info.value.status == 401 and not info.value.retryable and len(receiver.requests) == 1
    assert "refused the API key" in str(info.value) and wrong not in str(info.value)


def test_a_hang_times_out_and_a_dropped_connection_is_retried(receiver: JsmReceiver, make_notifier: Any):
    fast = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, budget_seconds=20, timeout_seconds=0.3)
    receiver.fail_next(Fault(0, hang=True), Fault(0, close=True))
    result = make_notifier(policy=fast).send(PAGE, CONTEXT)
    receiver.release_hangs()
    assert result.attempts == 3 and receiver.alerts[KEY].count == 1


def test_the_stand_in_refuses_what_jsm_refuses(receiver: JsmReceiver):
    auth = {"Authorization": f"GenieKey {API_KEY}"}
    bad = {"message": "m" * 131, "priority": "P0", "details": {"n": 1}}
    answer = requests.post(receiver.url, json=bad, headers=auth, timeout=2)
    assert answer.status_code == 422
    body = answer.json()
    assert body["message"] == "Request body is not processable. Please check the errors."
    assert set(body["errors"]) == {"message", "priority", "details"} and {"took", "requestId"} <= set(body)
    assert requests.post(receiver.url, json={"message": "m"}, timeout=2).status_code == 422  # no GenieKey
    wrong = {"Authorization": "GenieKey nope"}
    assert requests.post(receiver.url, json={"message": "m"}, headers=wrong, timeout=2).status_code == 401
    unknown = receiver.url + "/fr1-abc/resolve?identifierType=alias"
    assert requests.post(unknown, json={}, headers=auth, timeout=2).status_code == 404
    form = requests.post(receiver.url, data="message=m", headers=auth, timeout=2)
    assert form.status_code == 415
    assert receiver.alerts == {} and len(receiver.rejected) == 4


def test_the_stand_in_rate_limits_per_api_key_with_retry_after():
    now = [100.0]
    with JsmReceiver(rate_limit_per_minute=2, clock=lambda: now[0]) as jsm:
        auth = {"Authorization": f"GenieKey {API_KEY}"}
        codes = [requests.post(jsm.url, json={"message": "m"}, headers=auth, timeout=2) for _ in range(3)]
        assert [c.status_code for c in codes] == [202, 202, 429]
        assert codes[2].headers["Retry-After"] == "60"
        now[0] += 61
        assert requests.post(jsm.url, json={"message": "m"}, headers=auth, timeout=2).status_code == 202


@pytest.mark.parametrize(
    ("action", "fixture"), [("Acknowledge", "alert_action_acknowledge"), ("Close", "alert_action_close")]
)
def test_a_persons_action_produces_the_outgoing_webhooks_alert_action_data(
    receiver: JsmReceiver, make_notifier: Any, action: str, fixture: str
):
    make_notifier().send(PAGE, CONTEXT)
    alert = receiver.alerts[KEY]
    data = receiver.operator_action(alert, action, "oncall.engineer@example.com")
    expected = json.loads((FIXTURES / "jsm" / f"{fixture}.json").read_text())
    assert (
        set(data) == set(expected)
        and set(data["alert"]) == set(expected["alert"])
        and data["source"].keys() == expected["source"].keys()
    )
    assert (data["action"], data["alert"]["alias"], data["alert"]["username"]) == (
        action,
        KEY,
        "oncall.engineer@example.com",
    )
    assert data["alert"]["updatedAt"] > data["alert"]["createdAt"] * 1000  # nanoseconds vs milliseconds
    assert data["alert"]["tags"] == alert.tags and data["alert"]["message"] == alert.message
    assert alert.acknowledged if action == "Acknowledge" else alert.status == "closed"
