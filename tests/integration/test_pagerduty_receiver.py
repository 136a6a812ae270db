"""Integration tests for the local PagerDuty Events API v2 receiver (real sockets, no sleeps)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from findings_router_local.fakes.pagerduty import (
    MAX_BODY_BYTES,
    Fault,
    Incident,
    PagerDutyReceiver,
    render_incidents,
)

pytestmark = pytest.mark.integration

ROUTING_KEY = "0123456789abcdef0123456789abcdef"  # 32 alphanumeric characters, like an integration key
OTHER_KEY = "fedcba9876543210fedcba9876543210"
TIMEOUT = 5.0


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., PagerDutyReceiver]]:
    """Build started receivers with custom settings; every one is stopped afterwards."""
    started: list[PagerDutyReceiver] = []

    def factory(**kwargs: Any) -> PagerDutyReceiver:
        receiver = PagerDutyReceiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield factory
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(make_receiver: Callable[..., PagerDutyReceiver]) -> PagerDutyReceiver:
    return make_receiver()


def trigger(dedup_key: str | None = "finding-1", routing_key: str = ROUTING_KEY, **payload: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "payload": {
            "summary": "HIGH: S3 bucket allows public read",
            "source": "arn:aws:s3:::example-bucket",
            "severity": "error",
            "timestamp": "2026-11-21T10:00:00Z",
            "component": "S3",
            "group": "111122223333",
            "class": "Software and Configuration Checks",
            "custom_details": {"ProductName": "Security Hub", "Region": "eu-west-1"},
            **payload,
        },
        "links": [{"href": "https://console.aws.amazon.com/securityhub/", "text": "Security Hub"}],
        "images": [{"src": "https://example.com/graph.png", "href": "https://example.com", "alt": "graph"}],
        "client": "findings-router",
        "client_url": "https://example.com/findings-router",
    }
    if dedup_key is not None:
        body["dedup_key"] = dedup_key
    return body


def action(event_action: str, dedup_key: str = "finding-1", routing_key: str = ROUTING_KEY) -> dict[str, Any]:
    return {"routing_key": routing_key, "event_action": event_action, "dedup_key": dedup_key}


def post(receiver: PagerDutyReceiver, body: Any, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.post(receiver.url, json=body, **kwargs)


# --------------------------------------------------------------------------- basics


def test_binds_loopback_on_a_free_port_and_stops() -> None:
    with PagerDutyReceiver() as receiver:
        assert receiver.url.startswith("http://127.0.0.1:")
        assert receiver.url.endswith("/v2/enqueue")
        assert receiver.port > 0
        assert post(receiver, trigger()).status_code == 202
        url = receiver.url
    with pytest.raises(requests.ConnectionError):
        requests.post(url, json=trigger(), timeout=TIMEOUT)


def test_valid_trigger_is_accepted_and_opens_an_incident(receiver: PagerDutyReceiver) -> None:
    response = post(receiver, trigger())

    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "finding-1"}
    assert receiver.notifications == 1
    incident = receiver.incidents["finding-1"]
    assert (incident.number, incident.status, incident.severity, incident.trigger_count) == (
        1,
        "triggered",
        "error",
        1,
    )
    assert incident.routing_key == ROUTING_KEY
    assert incident.summary == "HIGH: S3 bucket allows public read"
    assert incident.source == "arn:aws:s3:::example-bucket"
    assert incident.custom_details == {"ProductName": "Security Hub", "Region": "eu-west-1"}
    assert incident.links == [{"href": "https://console.aws.amazon.com/securityhub/", "text": "Security Hub"}]
    assert incident.log == ["trigger"]
    assert receiver.accepted == [trigger()]
    assert receiver.rejected == []
    (request,) = receiver.requests
    assert (request.method, request.path, request.status, request.fault) == ("POST", "/v2/enqueue", 202, None)
    assert request.json == trigger()
    assert json.loads(request.body) == trigger()
    assert request.headers["Content-Type"] == "application/json"


def test_second_trigger_with_same_dedup_key_is_deduplicated(receiver: PagerDutyReceiver) -> None:
    assert post(receiver, trigger()).status_code == 202
    assert post(receiver, trigger(summary="changed")).status_code == 202

    assert receiver.notifications == 1
    assert len(receiver.all_incidents) == 1
    incident = receiver.incidents["finding-1"]
    assert incident.trigger_count == 2
    assert incident.log == ["trigger", "trigger (deduplicated)"]


def test_resolve_then_trigger_opens_a_new_incident(receiver: PagerDutyReceiver) -> None:
    post(receiver, trigger())
    response = post(receiver, action("resolve"))
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "finding-1"
    first = receiver.incidents["finding-1"]
    assert first.status == "resolved"
    assert first.log == ["trigger", "resolve"]

    assert post(receiver, trigger()).status_code == 202

    assert receiver.notifications == 2
    assert [i.number for i in receiver.all_incidents] == [1, 2]
    assert receiver.all_incidents[0].status == "resolved"
    current = receiver.incidents["finding-1"]
    assert current.number == 2
    assert current.status == "triggered"


def test_acknowledge_then_trigger_does_not_notify_again(receiver: PagerDutyReceiver) -> None:
    post(receiver, trigger())
    assert post(receiver, action("acknowledge")).status_code == 202
    assert post(receiver, trigger()).status_code == 202

    incident = receiver.incidents["finding-1"]
    assert incident.status == "acknowledged"
    assert incident.log == ["trigger", "acknowledge", "trigger (deduplicated)"]
    assert receiver.notifications == 1


def test_acknowledge_and_resolve_without_open_incident_are_dropped(receiver: PagerDutyReceiver) -> None:
    assert post(receiver, action("acknowledge", "nothing-open")).status_code == 202
    assert post(receiver, action("resolve", "nothing-open")).status_code == 202
    post(receiver, trigger())
    post(receiver, action("resolve"))
    assert post(receiver, action("resolve")).status_code == 202  # already resolved: dropped

    assert receiver.incidents["finding-1"].log == ["trigger", "resolve"]
    assert "nothing-open" not in receiver.incidents
    assert len(receiver.accepted) == 5


def test_dedup_applies_only_within_the_same_routing_key(receiver: PagerDutyReceiver) -> None:
    post(receiver, trigger(routing_key=ROUTING_KEY))
    post(receiver, trigger(routing_key=OTHER_KEY))
    post(receiver, action("resolve", routing_key=OTHER_KEY))

    first, second = receiver.all_incidents
    assert receiver.notifications == 2
    assert (first.routing_key, first.status) == (ROUTING_KEY, "triggered")
    assert (second.routing_key, second.status) == (OTHER_KEY, "resolved")


def test_trigger_without_dedup_key_gets_a_generated_one(receiver: PagerDutyReceiver) -> None:
    first = post(receiver, trigger(dedup_key=None)).json()["dedup_key"]
    second = post(receiver, trigger(dedup_key=None)).json()["dedup_key"]

    assert first != second
    assert len(first) == 32
    int(first, 16)
    assert set(receiver.incidents) == {first, second}
    assert receiver.notifications == 2


def test_concurrent_triggers_are_counted_exactly(receiver: PagerDutyReceiver) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        status = post(receiver, trigger()).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)

    assert statuses == [202] * 20
    assert receiver.notifications == 1
    assert receiver.incidents["finding-1"].trigger_count == 20
    assert len(receiver.requests) == 20


# --------------------------------------------------------------------------- contract violations


def _without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with_image_src(src: str) -> dict[str, Any]:
    body = trigger()
    body["images"] = [{"src": src}]
    return body


def _with_link(link: Any) -> dict[str, Any]:
    body = trigger()
    body["links"] = [link]
    return body


def _with_top_level(key: str, value: Any) -> dict[str, Any]:
    body = trigger()
    body[key] = value
    return body


INVALID_EVENTS = [
    pytest.param(_without(trigger(), "payload", "summary"), "'payload.summary' is missing", id="missing-summary"),
    pytest.param(trigger(summary="   "), "'payload.summary' is missing or blank", id="blank-summary"),
    pytest.param(trigger(severity="high"), "'payload.severity' is invalid", id="bad-severity"),
    pytest.param(_without(trigger(), "payload", "severity"), "'payload.severity' is missing", id="no-severity"),
    pytest.param(trigger(summary="x" * 1025), "'payload.summary' is too long", id="summary-1025"),
    pytest.param(trigger(source="s" * 256), "'payload.source' is too long", id="source-256"),
    pytest.param(_without(trigger(), "payload", "source"), "'payload.source' is missing", id="no-source"),
    pytest.param(trigger(dedup_key="k" * 256), "'dedup_key' is too long", id="dedup-key-256"),
    pytest.param(
        {"routing_key": ROUTING_KEY, "event_action": "resolve"},
        "'dedup_key' is required for resolve events",
        id="resolve-without-dedup-key",
    ),
    pytest.param(
        {"routing_key": ROUTING_KEY, "event_action": "acknowledge"},
        "'dedup_key' is required for acknowledge events",
        id="ack-without-dedup-key",
    ),
    pytest.param(
        _with_image_src("http://example.com/graph.png"),
        "'images[0].src' must be an https URL",
        id="http-image",
    ),
    pytest.param(_with_image_src("graph.png"), "'images[0].src' must be an https URL", id="relative-image"),
    pytest.param(_with_link({"text": "no href"}), "'links[0].href' is missing", id="link-without-href"),
    pytest.param(_with_top_level("severity", "critical"), "Unknown field 'severity'", id="unknown-top-level"),
    pytest.param(trigger(details={"a": 1}), "Unknown field 'payload.details'", id="unknown-payload-field"),
    pytest.param(trigger(timestamp="yesterday"), "'payload.timestamp' is not a valid ISO 8601", id="bad-timestamp"),
    pytest.param(trigger(custom_details="text"), "'payload.custom_details' must be an object", id="details-str"),
    pytest.param(_without(trigger(), "payload"), "'payload' is missing", id="trigger-without-payload"),
    pytest.param(_with_top_level("event_action", "escalate"), "'event_action' is invalid", id="bad-action"),
    pytest.param(_without(trigger(), "event_action"), "'event_action' is missing", id="no-action"),
    pytest.param(_without(trigger(), "routing_key"), "'routing_key' is missing", id="no-routing-key"),
    pytest.param(
        trigger(routing_key="short"),
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        id="routing-key-length",
    ),
    pytest.param(
        trigger(routing_key="0123456789abcdef0123456789abcde-"),
        "'routing_key' cannot contain non-alphanumeric characters.",
        id="routing-key-charset",
    ),
    pytest.param(_with_top_level("client_url", 42), "'client_url' must be a string", id="client-url-not-str"),
]


@pytest.mark.parametrize(("body", "expected_error"), INVALID_EVENTS)
def test_contract_violation_is_rejected_with_a_specific_error(
    receiver: PagerDutyReceiver, body: dict[str, Any], expected_error: str
) -> None:
    response = post(receiver, body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "invalid event"
    assert answer["message"] == "Event object is invalid"
    assert any(expected_error in error for error in answer["errors"]), answer["errors"]
    assert receiver.rejected == [(body, answer["errors"])]
    assert receiver.accepted == []
    assert receiver.incidents == {}
    assert receiver.notifications == 0
    assert receiver.requests[0].status == 400


def test_limits_are_inclusive(receiver: PagerDutyReceiver) -> None:
    body = trigger(dedup_key="k" * 255, summary="x" * 1024, source="s" * 255)
    assert post(receiver, body).status_code == 202


def test_all_errors_are_reported_together(receiver: PagerDutyReceiver) -> None:
    body = {"routing_key": ROUTING_KEY, "event_action": "trigger", "payload": {"severity": "fatal"}, "x": 1}

    errors = post(receiver, body).json()["errors"]

    assert len(errors) == 4
    assert "Unknown field 'x'" in errors
    assert "'payload.summary' is missing or blank" in errors
    assert "'payload.source' is missing or blank" in errors
    assert any(error.startswith("'payload.severity' is invalid") for error in errors)


def test_wrong_content_type_is_rejected(receiver: PagerDutyReceiver) -> None:
    response = requests.post(
        receiver.url, data=json.dumps(trigger()), headers={"Content-Type": "text/plain"}, timeout=TIMEOUT
    )

    assert response.status_code == 400
    assert response.json()["errors"] == ["Content-Type must be application/json (got 'text/plain')"]
    assert receiver.incidents == {}
    assert receiver.rejected == [(None, response.json()["errors"])]


def test_content_type_with_charset_is_accepted(receiver: PagerDutyReceiver) -> None:
    response = requests.post(
        receiver.url,
        data=json.dumps(trigger()).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 202


def test_non_json_body_is_rejected(receiver: PagerDutyReceiver) -> None:
    response = requests.post(
        receiver.url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=TIMEOUT
    )

    assert response.status_code == 400
    assert response.json() == {
        "status": "Unrecognized object",
        "message": "Event object format is unrecognized",
        "errors": ["JSON parse error"],
    }
    assert receiver.requests[0].json is None


def test_json_that_is_not_an_object_is_rejected(receiver: PagerDutyReceiver) -> None:
    response = post(receiver, [trigger()])

    assert response.status_code == 400
    assert response.json()["errors"] == ["Event must be a JSON object"]


def test_body_over_512_kb_is_rejected(receiver: PagerDutyReceiver) -> None:
    body = trigger(custom_details={"blob": "x" * MAX_BODY_BYTES})

    response = post(receiver, body)

    assert response.status_code == 400
    assert "exceeds 524288 bytes" in response.json()["errors"][0]
    assert receiver.incidents == {}


def test_unknown_routing_key_is_rejected_when_keys_are_configured(
    make_receiver: Callable[..., PagerDutyReceiver],
) -> None:
    receiver = make_receiver(routing_keys={"dev-key", ROUTING_KEY})

    rejected = post(receiver, trigger(routing_key=OTHER_KEY))
    accepted = post(receiver, trigger(routing_key="dev-key"))  # configured keys need not be 32 characters

    assert rejected.status_code == 400
    assert rejected.json()["errors"] == ["Invalid routing key"]
    assert accepted.status_code == 202
    assert [i.routing_key for i in receiver.all_incidents] == ["dev-key"]


def test_other_paths_and_methods_are_404(receiver: PagerDutyReceiver) -> None:
    base = receiver.url.removesuffix("/v2/enqueue")
    assert requests.post(base + "/v2/change/enqueue", json=trigger(), timeout=TIMEOUT).status_code == 404
    assert requests.post(base + "/enqueue", json=trigger(), timeout=TIMEOUT).status_code == 404
    assert requests.get(receiver.url, timeout=TIMEOUT).status_code == 404
    assert receiver.incidents == {}
    assert [r.status for r in receiver.requests] == [404, 404, 404]


# --------------------------------------------------------------------------- faults


def test_fail_next_429_returns_retry_after_then_recovers(receiver: PagerDutyReceiver) -> None:
    receiver.fail_next(Fault(429, retry_after="2"))

    throttled = post(receiver, trigger())
    recovered = post(receiver, trigger())

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["message"] == "Requests for this service are arriving too quickly. Please retry later."
    assert recovered.status_code == 202
    assert "Retry-After" not in recovered.headers
    faulted, normal = receiver.requests
    assert (faulted.status, faulted.fault) == (429, Fault(429, retry_after="2"))
    assert (normal.status, normal.fault) == (202, None)
    assert receiver.notifications == 1
    assert receiver.incidents["finding-1"].trigger_count == 1  # the faulted request had no effect


def test_fail_next_queues_several_faults_in_order(receiver: PagerDutyReceiver) -> None:
    receiver.fail_next(Fault(500), Fault(502), Fault(400))

    statuses = [post(receiver, trigger()) for _ in range(4)]

    assert [r.status_code for r in statuses] == [500, 502, 400, 202]
    assert statuses[0].json()["status"] == "Internal Server Error"
    assert statuses[1].headers["Content-Type"] == "text/html"
    assert statuses[2].json()["status"] == "invalid event"
    assert receiver.rejected == []  # injected 400s are not contract findings


def test_fail_for_repeats_a_fault(receiver: PagerDutyReceiver) -> None:
    receiver.fail_for(3, Fault(503, retry_after="1"))

    responses = [post(receiver, trigger()) for _ in range(4)]

    assert [r.status_code for r in responses] == [503, 503, 503, 202]
    assert [r.headers.get("Retry-After") for r in responses] == ["1", "1", "1", None]
    assert receiver.notifications == 1


def test_close_fault_drops_the_connection(receiver: PagerDutyReceiver) -> None:
    receiver.fail_next(Fault(500, close=True))

    with pytest.raises(requests.ConnectionError):
        post(receiver, trigger())
    assert post(receiver, trigger()).status_code == 202
    assert [r.status for r in receiver.requests] == [None, 202]


def test_hang_makes_the_client_time_out_and_stop_is_prompt(receiver: PagerDutyReceiver) -> None:
    receiver.fail_next(Fault(500, hang=True))

    with pytest.raises(requests.Timeout):
        post(receiver, trigger(), timeout=0.2)
    assert receiver.incidents == {}

    started = time.monotonic()
    receiver.stop()
    assert time.monotonic() - started < 2.0


def test_release_hangs_lets_the_held_request_answer(receiver: PagerDutyReceiver) -> None:
    receiver.fail_next(Fault(503, retry_after="5", hang=True))
    result: dict[str, requests.Response] = {}

    def send() -> None:
        result["response"] = post(receiver, trigger(), timeout=TIMEOUT)

    client = threading.Thread(target=send)
    client.start()
    assert receiver.wait_for_requests(1)
    assert receiver.requests[0].status is None  # still hanging

    receiver.release_hangs()
    client.join(TIMEOUT)

    assert result["response"].status_code == 503
    assert result["response"].headers["Retry-After"] == "5"
    assert post(receiver, trigger()).status_code == 202


# --------------------------------------------------------------------------- rate limit


def test_rate_limit_per_routing_key_with_a_fake_clock(
    make_receiver: Callable[..., PagerDutyReceiver],
) -> None:
    now = [1000.0]
    receiver = make_receiver(rate_limit_per_minute=3, clock=lambda: now[0])

    assert [post(receiver, trigger()).status_code for _ in range(3)] == [202, 202, 202]
    throttled = post(receiver, trigger())
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "60"
    assert throttled.json()["message"] == "Requests for this service are arriving too quickly. Please retry later."
    assert post(receiver, trigger("other", routing_key=OTHER_KEY)).status_code == 202  # separate window per key

    now[0] = 1030.0
    assert post(receiver, trigger()).headers["Retry-After"] == "30"
    now[0] = 1059.5
    assert post(receiver, trigger()).headers["Retry-After"] == "1"  # rounded up, never 0
    now[0] = 1060.0
    assert post(receiver, trigger()).status_code == 202  # the first three left the 60 s window

    assert receiver.incidents["finding-1"].trigger_count == 4
    assert len(receiver.accepted) == 5
    assert [r.status for r in receiver.requests].count(429) == 3


def test_rejected_events_do_not_use_rate_limit_slots(make_receiver: Callable[..., PagerDutyReceiver]) -> None:
    receiver = make_receiver(rate_limit_per_minute=1, clock=lambda: 0.0)

    assert post(receiver, trigger(severity="bad")).status_code == 400
    assert post(receiver, trigger()).status_code == 202
    assert post(receiver, trigger()).status_code == 429


# --------------------------------------------------------------------------- housekeeping


def test_reset_forgets_everything(receiver: PagerDutyReceiver) -> None:
    post(receiver, trigger())
    post(receiver, trigger(severity="bad"))
    receiver.fail_next(Fault(500))

    receiver.reset()

    assert (receiver.requests, receiver.accepted, receiver.rejected) == ([], [], [])
    assert (receiver.incidents, receiver.all_incidents, receiver.notifications) == ({}, [], 0)
    assert post(receiver, trigger()).status_code == 202  # the queued fault was dropped
    assert receiver.all_incidents[0].number == 1


def test_render_incidents_table() -> None:
    incidents = [
        Incident(
            number=1,
            dedup_key="0123456789abcdef0123456789abcdef",
            routing_key=ROUTING_KEY,
            status="triggered",
            severity="critical",
            summary="S" * 80,
            source="src",
            custom_details={},
            links=[],
            trigger_count=3,
            created_at=0.0,
            log=["trigger"],
        ),
        Incident(2, "short", ROUTING_KEY, "resolved", "info", "ok", "src", {}, [], 1, 0.0, []),
    ]

    lines = render_incidents(incidents).splitlines()

    assert lines[0].split() == ["#", "status", "severity", "triggers", "dedup_key", "summary"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == [
        "1",
        "triggered",
        "critical",
        "3",
        "0123456789abcdef0123456789abcdef",
        "S" * 59 + "\u2026",
    ]
    assert lines[3].split() == ["2", "resolved", "info", "1", "short", "ok"]
    assert "(no incidents)" in render_incidents([])
