"""`WebhookNotifier` against the local webhook stand-in over real HTTP (127.0.0.1): signed deliveries verified and
validated against docs/webhook-schema.md, incidents by key, redeliveries deduplicated by `webhook-id`, secret rotation,
the timestamp tolerance, retries on 429 and 5xx, no retry on 400/410/3xx, hangs and dropped connections; and the
Slack and Teams presets against their stand-ins."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_event
from findings_router.domain.notifications import MetaAlert, Notification, NotifyContext, StormInfo, resolve
from findings_router.notify import DeliveryError
from findings_router.notify.retry import Retrier, RetryPolicy
from findings_router.notify.webhook.client import WebhookNotifier
from findings_router_local.fakes.webhook import Fault, WebhookReceiver
from tests.builders import load_fixture

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="
KEY = "fr1-51b3ee29247fa504b3f1bcafcabfd3be8a540eca"
POLICY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, budget_seconds=20, timeout_seconds=2)
[FINDING] = normalize_event(load_fixture("asff_guardduty_ssh_bruteforce.json")).findings
CONTEXT = NotifyContext("prod", FINDING, KEY, "rule high-and-critical", 1)
PAGE = Notification("trigger", KEY, Severity.HIGH, "high")


@pytest.fixture
def receivers() -> Iterator[Callable[..., WebhookReceiver]]:
    started: list[WebhookReceiver] = []

    def make(secret: str | None = SECRET, **kwargs: Any) -> WebhookReceiver:
        receiver = WebhookReceiver(secret, **kwargs).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(receivers: Callable[..., WebhookReceiver]) -> WebhookReceiver:
    return receivers()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_notifier(sleeps: list[float]) -> Callable[..., WebhookNotifier]:
    def make(receiver: WebhookReceiver, secret: str | None = SECRET, policy: RetryPolicy = POLICY, **kw: Any):
        retrier = Retrier(policy, channel="webhook", sleep=sleeps.append)
        return WebhookNotifier(receiver.url, secret, retrier, format=receiver.format, **kw)

    return make


def test_binds_loopback_and_stops():
    with WebhookReceiver(SECRET) as hook:
        assert hook.url.startswith("http://127.0.0.1:")
        url = hook.url
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={}, timeout=2)


def test_a_page_then_its_resolve_then_a_new_incident(receiver: WebhookReceiver, make_notifier: Any):
    hook = make_notifier(receiver)
    result = hook.send(PAGE, CONTEXT)
    assert (result.status, result.attempts, result.key) == (200, 1, KEY)
    incident = receiver.incidents[KEY]
    assert (incident.type, incident.status, incident.severity, incident.urgency) == (
        "finding.triggered",
        "open",
        "HIGH",
        "high",
    )
    assert incident.data["finding"]["id"] == FINDING.id and incident.data["decision"] == "rule high-and-critical"
    hook.send(resolve(KEY, Severity.HIGH), CONTEXT)
    assert receiver.incidents[KEY].status == "resolved"
    hook.send(PAGE, NotifyContext("prod", FINDING, KEY, "rule high-and-critical", 2))  # the next episode
    assert [i.status for i in receiver.all_incidents] == ["resolved", "open"]
    assert receiver.rejected == [] and receiver.duplicates == 0


def test_storms_meta_alerts_and_escalations_are_valid_deliveries(receiver: WebhookReceiver, make_notifier: Any):
    storm = StormInfo("fr1-storm-x", "product=GuardDuty, account=111122223333", 11, 5, ("i-1", "i-2"))
    alarm = MetaAlert("alarm", "fr1-prod-dlq", "Threshold Crossed", "", "111122223333", "eu-central-1", "t1")
    hook = make_notifier(receiver)
    hook.send(Notification("trigger", storm.key, Severity.HIGH, "high", storm=storm), CONTEXT)
    hook.send(
        Notification(
            "trigger", "fr1-meta-storm-prod", Severity.HIGH, "low", storm=storm, meta=MetaAlert("storm", storm.group)
        ),
        CONTEXT,
    )
    hook.send(Notification("trigger", "fr1-meta-x", Severity.CRITICAL, "high", meta=alarm), NotifyContext("prod"))
    hook.send(Notification("trigger", f"{KEY}~4", Severity.CRITICAL, "high", escalated_from=Severity.HIGH), CONTEXT)
    assert receiver.rejected == []
    assert [i.type for i in receiver.all_incidents] == [
        "storm.triggered",
        "meta.storm",
        "meta.alarm",
        "finding.triggered",
    ]
    assert receiver.incidents[f"{KEY}~4"].data["escalated_from"] == "HIGH"


def test_the_same_notification_sent_again_is_a_duplicate_for_the_receiver(
    receiver: WebhookReceiver, make_notifier: Any
):
    hook = make_notifier(receiver)
    hook.send(PAGE, CONTEXT)
    hook.send(PAGE, CONTEXT)  # e.g. the router's redelivery after an unanswered attempt
    assert receiver.duplicates == 1 and receiver.incidents[KEY].trigger_count == 1
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_the_receiver_verifies_with_either_secret_during_a_rotation(receivers: Any, make_notifier: Any):
    for receiver_secret in (SECRET, NEW):
        receiver = receivers(receiver_secret)
        make_notifier(receiver, secret=f"{NEW} {SECRET}").send(PAGE, CONTEXT)
        assert receiver.incidents[KEY].status == "open"


def test_a_signature_the_receiver_cannot_verify_is_refused_once(receiver: WebhookReceiver, make_notifier: Any):
    with pytest.raises(DeliveryError) as info:
        make_notifier(receiver, secret=NEW).send(PAGE, CONTEXT)
    assert (info.value.status, info.value.retryable, len(receiver.requests)) == (401, False, 1)
    assert receiver.rejected[0][1] == ["No matching signature found"]
    assert NEW.removeprefix("whsec_") not in str(info.value)


def test_a_timestamp_outside_the_5_minute_tolerance_is_refused(receiver: WebhookReceiver, make_notifier: Any):
    late = make_notifier(receiver, clock=lambda: time.time() - 301)
    with pytest.raises(DeliveryError) as info:
        late.send(PAGE, CONTEXT)
    assert info.value.status == 401 and receiver.rejected[0][1] == ["Message timestamp too old"]
    make_notifier(receiver, clock=lambda: time.time() - 120).send(PAGE, CONTEXT)  # within the tolerance
    assert receiver.incidents[KEY].status == "open"


def test_an_unsigned_or_tampered_request_is_refused(receiver: WebhookReceiver):
    assert requests.post(receiver.url, json={"type": "finding.triggered"}, timeout=2).status_code == 401
    assert receiver.rejected[0][1] == ["Missing required headers (webhook-id, webhook-timestamp, webhook-signature)"]


def test_429_then_success_waits_what_retry_after_asks(
    receiver: WebhookReceiver, make_notifier: Any, sleeps: list[float]
):
    receiver.fail_next(Fault(429, retry_after="4"))
    assert make_notifier(receiver).send(PAGE, CONTEXT).attempts == 2
    assert sleeps == [4.0] and [r.status for r in receiver.requests] == [429, 200]
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body


def test_5xx_is_retried_until_it_passes_or_the_attempts_run_out(receiver: WebhookReceiver, make_notifier: Any):
    receiver.fail_next(Fault(503), Fault(500))
    assert make_notifier(receiver).send(PAGE, CONTEXT).attempts == 3
    receiver.reset()
    receiver.fail_for(3, Fault(504))
    with pytest.raises(DeliveryError) as info:
        make_notifier(receiver).send(PAGE, CONTEXT)
    assert (info.value.retryable, info.value.status, info.value.attempts) == (True, 504, 3)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault(400), "refused the delivery (400)"),
        (Fault(410), "endpoint gone"),
        (Fault(308, location="/elsewhere"), "not followed"),
    ],
    ids=["400", "410", "308"],
)
def test_a_refusal_a_gone_endpoint_and_a_redirect_are_not_retried(
    receiver: WebhookReceiver, make_notifier: Any, fault: Fault, words: str
):
    receiver.fail_next(fault)
    with pytest.raises(DeliveryError) as info:
        make_notifier(receiver).send(PAGE, CONTEXT)
    assert (info.value.retryable, info.value.status, len(receiver.requests)) == (False, fault.status, 1)
    assert words in str(info.value)


def test_a_hang_times_out_and_a_dropped_connection_is_retried(receiver: WebhookReceiver, make_notifier: Any):
    fast = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, budget_seconds=20, timeout_seconds=0.3)
    receiver.fail_next(Fault(0, hang=True), Fault(0, close=True))
    assert make_notifier(receiver, policy=fast).send(PAGE, CONTEXT).attempts == 3
    receiver.release_hangs()
    assert receiver.incidents[KEY].trigger_count == 1


def test_slack_preset(receivers: Any, make_notifier: Any):
    slack = receivers(None, format="slack")
    hook = make_notifier(slack, secret=None)
    assert hook.send(PAGE, CONTEXT).status == 200
    hook.send(resolve(KEY), CONTEXT)
    assert [m["text"].split(" ")[0] for m in slack.accepted] == [":rotating_light:", ":white_check_mark:"]
    assert not any(h.lower().startswith("webhook-") for h in slack.requests[0].headers)
    slack.fail_next(Fault(410))
    with pytest.raises(DeliveryError) as info:
        hook.send(PAGE, CONTEXT)
    assert "endpoint gone" in str(info.value) and slack.url not in str(info.value)
    assert slack.path.rsplit("/", 1)[1] not in str(info.value)


def test_teams_preset(receivers: Any, make_notifier: Any):
    teams = receivers(None, format="teams")
    hook = make_notifier(teams, secret=None)
    assert hook.send(PAGE, CONTEXT).status == 202
    [card] = teams.accepted
    assert card["attachments"][0]["content"]["type"] == "AdaptiveCard" and teams.rejected == []
    teams.fail_next(Fault(429, retry_after="1"))
    assert hook.send(resolve(KEY), CONTEXT).attempts == 2
