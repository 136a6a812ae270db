"""notify/retry.py: how every notifier retries (fake clock: no test waits)."""

from __future__ import annotations

import pytest
import requests

from findings_router.domain.normalize import normalize_asff
from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryError
from findings_router.notify.pagerduty.client import PagerDutyNotifier
from findings_router.notify.retry import Retrier, RetryPolicy, retry_after_seconds
from tests.builders import asff
from tests.support.http_fakes import FakeResponse, FakeTime, ScriptedSession

KEY = "R0UT1NGKEY0000000000000000000001"
ACCEPTED = FakeResponse(202, {"status": "success", "dedup_key": "fr1-abc"})
FINDING = normalize_asff(asff())
PAGE = Notification("trigger", "fr1-abc", FINDING.severity, "high")
CONTEXT = NotifyContext("prod", FINDING, "fr1-abc", "rule", 1)


def _notifier(session, t, remaining=None, **policy) -> PagerDutyNotifier:
    retrier = Retrier(
        RetryPolicy(**policy),
        channel="PagerDuty",
        remaining_seconds=remaining,
        sleep=t.sleep,
        clock=t.clock,
        wall_clock=t.clock,
    )
    return PagerDutyNotifier("http://127.0.0.1:9/v2/enqueue", lambda: KEY, retrier, session=session)


def test_retries_5xx_and_timeouts_with_bounded_jittered_backoff():
    t = FakeTime()
    session = ScriptedSession(FakeResponse(500), requests.Timeout(), requests.ConnectionError(), ACCEPTED)
    notifier = _notifier(session, t, max_attempts=5, base_delay=1.0, max_delay=8.0)
    result = notifier.send(PAGE, CONTEXT)
    assert result.status == 202 and result.attempts == 4 and len(session.calls) == 4
    assert notifier.retrier.calls == 4 and notifier.retrier.retries == 3
    assert len(t.sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(t.sleeps, [1.0, 2.0, 4.0], strict=True))


def test_honours_retry_after_on_429():
    t = FakeTime()
    session = ScriptedSession(FakeResponse(429, headers={"Retry-After": "7"}), ACCEPTED)
    _notifier(session, t, budget_seconds=60).send(PAGE, CONTEXT)
    assert t.sleeps == [7.0]


def test_retry_after_beyond_the_budget_gives_up_at_once():
    t = FakeTime()
    session = ScriptedSession(FakeResponse(429, headers={"Retry-After": "120"}))
    with pytest.raises(DeliveryError) as info:
        _notifier(session, t, budget_seconds=30).send(PAGE, CONTEXT)
    assert info.value.retryable and info.value.reason == "rate-limited"
    assert t.sleeps == []
    assert "exceeds the time budget" in str(info.value)


def test_never_outlives_the_lambda_invocation():
    t = FakeTime()
    session = ScriptedSession(*[FakeResponse(503)] * 20)
    notifier = _notifier(
        session, t, remaining=lambda: 12.0 - (t.now - 1000), max_attempts=10, base_delay=2.0, budget_seconds=300
    )
    with pytest.raises(DeliveryError):
        notifier.send(PAGE, CONTEXT)
    assert t.now - 1000 <= 12.0 - 5.0  # 5 s are kept to write state and answer the batch
    assert all(timeout is not None and timeout <= 5.0 for _, _, timeout in session.calls)


def test_gives_up_after_max_attempts_as_a_retryable_error():
    t = FakeTime()
    session = ScriptedSession(*[FakeResponse(502)] * 3)
    with pytest.raises(DeliveryError) as info:
        _notifier(session, t, max_attempts=3, base_delay=0.01).send(PAGE, CONTEXT)
    assert info.value.retryable and info.value.attempts == 3
    assert str(info.value) == "PagerDuty unavailable after 3 attempts (last: HTTP 502)"


def test_a_budget_spent_before_the_first_attempt_sends_nothing():
    t = FakeTime()
    session = ScriptedSession(ACCEPTED)
    with pytest.raises(DeliveryError) as info:
        _notifier(session, t, remaining=lambda: 4.0).send(PAGE, CONTEXT)
    assert info.value.reason == "budget" and info.value.retryable and session.calls == []


def test_retry_after_parsing():
    assert retry_after_seconds("5", 0) == 5.0
    assert retry_after_seconds(None, 0) is None
    assert retry_after_seconds("soon", 0) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
