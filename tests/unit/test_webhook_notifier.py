"""The signed webhook notifier: the Standard Webhooks test vector, rotation, `webhook-id` stability, the body schema
and its 20 KB limit, the delivery rules (410, 3xx, 429/5xx), the chat presets, no secret in any error or log line,
and docs/webhook-schema.md's verification snippet run against real deliveries. The shared contract
(tests/contract/test_notifiers.py) runs the retry table and every kind of notification for every format."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.notifications import MetaAlert, Notification, NotifyContext, StormInfo, resolve
from findings_router.notify import DeliveryError
from findings_router.notify.retry import Retrier, RetryPolicy
from findings_router.notify.webhook.chat import slack_body, teams_body
from findings_router.notify.webhook.client import WebhookNotifier, classify, message_id, url_secrets
from findings_router.notify.webhook.payload import MAX_BODY_BYTES, build_body, encode, event_type
from findings_router.notify.webhook.recording import RecordingWebhookNotifier
from findings_router.notify.webhook.signing import SecretError, secret_key, secret_keys, signature, signature_header
from findings_router_local.fakes.webhook import validate_body, validate_slack, validate_teams, verify_signature
from tests.builders import FIXTURES, asff, load_fixture
from tests.support.http_fakes import FakeResponse, FakeTime, ScriptedSession

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhook-schema.md"
VECTOR = json.loads((FIXTURES / "webhook" / "signature_vector.json").read_text())
OLD = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="  # 32 bytes: "secret-of-a-rotated-endpoint"
URL = "https://soar.example.com/hooks/findings-router"
POLICY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, budget_seconds=60, timeout_seconds=5)
NOW = 1795606191.0
OK = FakeResponse(200, {"ok": True})
[FINDING] = normalize_event(load_fixture("asff_guardduty_ssh_bruteforce.json")).findings
KEY = "fr1-51b3ee29247fa504b3f1bcafcabfd3be8a540eca"
CONTEXT = NotifyContext("prod", FINDING, KEY, "rule high-and-critical", 1)
PAGE = Notification("trigger", KEY, Severity.HIGH, "high")


class WireSession(ScriptedSession):
    """Keeps what a signed delivery really sends: the exact bytes, the headers, and the keyword arguments."""

    def __init__(self, *script: Any) -> None:
        super().__init__(*script)
        self.sent: list[dict[str, Any]] = []

    def post(self, url: str, json: Any = None, timeout: float | None = None, **kwargs: Any) -> Any:
        self.sent.append({"url": url, **kwargs})
        data = kwargs.pop("data", None)
        return super().post(url, json=_loads(data) if data is not None else json, timeout=timeout)


def _loads(data: bytes) -> Any:
    return json.loads(data)


def webhook(
    session: ScriptedSession, t: FakeTime | None = None, secret: Any = OLD, url: Any = URL, **kwargs: Any
) -> WebhookNotifier:
    t = t or FakeTime(NOW)
    retrier = Retrier(POLICY, channel="webhook", sleep=t.sleep, clock=t.clock, wall_clock=t.clock)
    return WebhookNotifier(url, secret, retrier, session=session, clock=t.clock, **kwargs)


def verified(sent: dict[str, Any], secrets: list[str], now: float = NOW) -> list[str]:
    return verify_signature(sent["headers"], sent["data"], secrets, now)


# ------------------------------------------------------------------------------------------ signing


def test_the_signer_reproduces_the_standard_webhooks_test_vector():
    assert VECTOR["secret"] == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    key = secret_key(VECTOR["secret"])
    got = signature(key, VECTOR["msg_id"], VECTOR["timestamp"], VECTOR["body"].encode())
    assert got == VECTOR["signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert secret_key(VECTOR["secret"].removeprefix("whsec_")) == key  # the prefix is optional


def test_during_a_rotation_every_secret_signs_and_either_verifies():
    keys = secret_keys(f"{NEW} {OLD}")
    header = signature_header(keys, "msg_1", 1614265330, b"{}")
    assert header.split(" ") == [signature(k, "msg_1", 1614265330, b"{}") for k in keys]
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1614265330", "webhook-signature": header}
    for receiver in ([OLD], [NEW]):
        assert verify_signature(headers, b"{}", receiver, now=1614265330) == []
    assert verify_signature(headers, b"{} ", [OLD], now=1614265330) == ["No matching signature found"]
    other = "whsec_" + "A" * 32
    assert verify_signature(headers, b"{}", [other], now=1614265330) == ["No matching signature found"]


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("whsec_not*base64!", "not base64"),
        ("whsec_c2hvcnQ=", "holds 5 bytes"),
        ("   ", "empty"),
    ],
)
def test_a_bad_secret_is_a_configuration_error_that_does_not_show_the_secret(secret: str, problem: str):
    with pytest.raises(SecretError, match=problem):
        secret_keys(secret)
    session = WireSession(OK)
    with pytest.raises(DeliveryError) as info:
        webhook(session, secret=lambda: secret).send(PAGE, CONTEXT)
    assert info.value.retryable is False and session.sent == []
    assert secret.strip() == "" or secret.removeprefix("whsec_") not in str(info.value)


def test_a_delivery_sends_exactly_the_signed_bytes_with_the_three_headers():
    session = WireSession(OK)
    result = webhook(session).send(PAGE, CONTEXT)
    assert (result.status, result.key) == (200, KEY)
    [sent] = session.sent
    assert sent["url"] == URL and sent["allow_redirects"] is False
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["webhook-timestamp"] == "1795606191"
    assert re.fullmatch(r"msg_[a-z2-7]{32}", sent["headers"]["webhook-id"])
    assert verified(sent, [OLD]) == [] and validate_body(json.loads(sent["data"])) == []
    assert sent["data"] == encode(json.loads(sent["data"]))  # compact, ASCII: what was signed is what was sent


def test_the_signed_fixture_is_still_what_the_notifier_sends():
    for name, notification, at in (
        ("finding_triggered", PAGE, NOW),
        ("incident_resolved", resolve(KEY, Severity.HIGH), NOW + 3600),
    ):
        fixture = json.loads((FIXTURES / "webhook" / f"{name}.json").read_text())
        session = WireSession(OK)
        webhook(session, FakeTime(at), secret=fixture["secret"]).send(notification, CONTEXT)
        [sent] = session.sent
        assert sent["data"].decode() == fixture["body"], name
        assert {k: sent["headers"][k] for k in ("webhook-id", "webhook-timestamp", "webhook-signature")} == {
            k: v for k, v in fixture["headers"].items() if k.startswith("webhook-")
        }


# ------------------------------------------------------------------------------------------ webhook-id


def test_the_id_is_the_same_on_every_attempt_while_the_timestamp_is_each_attempts_own():
    t = FakeTime(NOW)
    session = WireSession(FakeResponse(503, {}, {"Retry-After": "30"}), requests.ConnectionError(), OK)
    assert webhook(session, t).send(PAGE, CONTEXT).attempts == 3
    ids = {s["headers"]["webhook-id"] for s in session.sent}
    stamps = [int(s["headers"]["webhook-timestamp"]) for s in session.sent]
    assert len(ids) == 1 and stamps[0] == int(NOW) and stamps[1] == int(NOW) + 30 and stamps[2] >= stamps[1]
    assert len({s["data"] for s in session.sent}) == 1  # the same body each time
    assert all(verified(s, [OLD], now=stamp) == [] for s, stamp in zip(session.sent, stamps, strict=True))


def test_the_same_notification_sent_again_keeps_its_id_and_a_different_one_gets_another():
    storm = StormInfo("fr1-storm-x", "product=GuardDuty", 11, 5, ("i-1",))
    bigger = StormInfo(storm.key, storm.group, 12, 5, ("i-1",))
    alarm = MetaAlert("alarm", "dlq", "Threshold Crossed", "", "111122223333", "eu-central-1", "2026-11-25T11:00:00Z")
    same = message_id(PAGE, CONTEXT)
    assert same is not None and same == message_id(PAGE, NotifyContext("prod", FINDING, KEY, "rule other", 1))
    different = [
        message_id(PAGE, NotifyContext("prod", FINDING, KEY, "rule", 2)),  # the next episode
        message_id(PAGE, NotifyContext("stg", FINDING, KEY, "rule", 1)),  # another environment
        message_id(resolve(KEY), CONTEXT),
        message_id(Notification("trigger", f"{KEY}~4", Severity.CRITICAL, "high"), CONTEXT),
        message_id(Notification("trigger", storm.key, Severity.HIGH, "high", storm=storm), CONTEXT),
        message_id(Notification("trigger", storm.key, Severity.HIGH, "high", storm=bigger), CONTEXT),  # a refresh
        message_id(Notification("trigger", "fr1-meta", Severity.CRITICAL, "high", meta=alarm), NotifyContext("prod")),
    ]
    assert None not in different and len({same, *different}) == len(different) + 1


def test_a_resolve_that_names_no_episode_gets_a_fresh_id_per_send():
    sibling = (resolve(f"{KEY}~4"), NotifyContext("prod", dedup_key=KEY))
    assert message_id(*sibling) is None
    session = WireSession(OK, OK)
    notifier = webhook(session)
    notifier.send(*sibling)
    notifier.send(*sibling)
    first, second = (s["headers"]["webhook-id"] for s in session.sent)
    assert first != second and first.startswith("msg_") and second.startswith("msg_")


# ------------------------------------------------------------------------------------------ the body


def test_each_kind_of_notification_has_its_type():
    storm = StormInfo("fr1-storm-x", "g", 11, 5, ())
    assert event_type(PAGE) == "finding.triggered"
    assert event_type(Notification("trigger", "k~4", Severity.CRITICAL, "high", escalated_from=Severity.HIGH)) == (
        "finding.triggered"
    )
    assert event_type(Notification("trigger", "k", Severity.HIGH, "high", storm=storm)) == "storm.triggered"
    assert event_type(
        Notification("trigger", "k", Severity.HIGH, "low", storm=storm, meta=MetaAlert("storm", "g"))
    ) == ("meta.storm")
    assert event_type(Notification("trigger", "k", Severity.CRITICAL, "high", meta=MetaAlert("alarm", "a"))) == (
        "meta.alarm"
    )
    assert event_type(resolve("k")) == "incident.resolved"


def test_the_body_carries_the_decision_the_finding_and_its_links():
    body = build_body(
        Notification("trigger", f"{KEY}~4", Severity.CRITICAL, "high", escalated_from=Severity.HIGH), CONTEXT, NOW
    )
    assert (body["type"], body["version"], body["timestamp"]) == ("finding.triggered", "1", "2026-11-25T11:29:51Z")
    data = body["data"]
    assert (data["incident_key"], data["dedup_key"], data["episode"], data["decision"]) == (
        f"{KEY}~4",
        KEY,
        1,
        "rule high-and-critical",
    )
    assert (data["severity"], data["escalated_from"], data["urgency"]) == ("CRITICAL", "HIGH", "high")
    assert data["summary"].startswith("[prod] [ESCALATED HIGH→CRITICAL] CRITICAL GuardDuty:")
    assert data["finding"]["id"] == FINDING.id and data["finding"]["resources"][0]["tags"] == {
        "env": "prod",
        "team": "iot-gateway",
    }
    assert data["links"][0]["text"] == "This finding in Security Hub"
    assert validate_body(body) == []


def test_an_oversized_finding_is_cut_to_20_kb_in_stages_and_says_so():
    tags = {f"tag{i}": "v" * 200 for i in range(30)}
    resources = [
        {"Type": "AwsEc2Instance", "Id": f"arn:aws:ec2:eu-central-1:1:instance/i-{i}", "Tags": tags} for i in range(20)
    ]
    finding = normalize_asff(asff(Resources=resources, Description="d" * 100_000))
    body = build_body(PAGE, NotifyContext("prod", finding, KEY, "rule", 1), NOW)
    assert len(encode(body)) <= MAX_BODY_BYTES and validate_body(body) == []
    data = body["data"]
    assert (
        data["truncated"] and len(data["finding"]["resources"]) == 5 and data["finding"]["resources"][0]["tags"] == {}
    )
    assert data["finding"]["resource_count"] == 20

    huge = normalize_asff(
        asff(
            Resources=[{"Type": "T" * 900, "Id": "i" * 900, "Tags": tags} for _ in range(40)],
            Title="t" * 5000,
            Types=["x" * 1000] * 30,
            ProductName="p" * 5000,
            Description="d" * 100_000,
            SourceUrl="https://console.example/" + "u" * 6000,
            Remediation={"Recommendation": {"Text": "r" * 5000, "Url": "https://docs.example/" + "r" * 6000}},
            GeneratorId="g" * 3000,
        )
    )
    body = build_body(PAGE, NotifyContext("prod", huge, KEY, "r" * 5000, 1), NOW)
    assert len(encode(body)) <= MAX_BODY_BYTES and validate_body(body) == []
    assert set(body["data"]["finding"]) == {
        "id",
        "account",
        "region",
        "product",
        "title",
        "severity",
        "severity_score",
        "resource_count",
        "console_url",
    }


def test_non_ascii_text_is_escaped_so_any_receiver_decodes_the_signed_bytes():
    finding = normalize_asff(asff(Title="Zugriff verweigert – ü 🚨", Description="\ud800 lone surrogate"))
    data = encode(build_body(PAGE, NotifyContext("prod", finding, KEY, "rule", 1), NOW))
    assert data.isascii() and json.loads(data)["data"]["finding"]["title"] == "Zugriff verweigert – ü 🚨"


# ------------------------------------------------------------------------------------------ delivery rules


@pytest.mark.parametrize(
    ("status", "retryable", "reason", "text"),
    [
        (200, None, None, None),
        (204, None, None, None),
        (301, False, "rejected", "not followed"),
        (302, False, "rejected", "not followed"),
        (307, False, "rejected", "not followed"),
        (308, False, "rejected", "not followed"),
        (400, False, "rejected", "refused"),
        (401, False, "rejected", "refused"),
        (410, False, "rejected", "endpoint gone"),
        (413, False, "rejected", "refused"),
        (429, True, "rate-limited", "HTTP 429"),
        (500, True, "unavailable", "HTTP 500"),
        (502, True, "unavailable", "HTTP 502"),
        (503, True, "unavailable", "HTTP 503"),
        (504, True, "unavailable", "HTTP 504"),
    ],
)
def test_retry_table(status: int, retryable: bool | None, reason: str | None, text: str | None):
    verdict = classify(status)
    if retryable is None:
        assert verdict is None
    else:
        assert verdict is not None and verdict[:2] == (retryable, reason) and text in verdict[2]


def test_410_means_the_endpoint_is_gone_and_is_not_retried():
    session = WireSession(FakeResponse(410, {"error": "disabled"}), OK)
    with pytest.raises(DeliveryError) as info:
        webhook(session).send(PAGE, CONTEXT)
    assert (info.value.retryable, info.value.status, len(session.sent)) == (False, 410, 1)
    assert "endpoint gone" in str(info.value)


def test_a_redirect_is_a_failure_and_is_not_followed():
    session = WireSession(FakeResponse(307, "", {"Location": "https://elsewhere.example/"}))
    with pytest.raises(DeliveryError) as info:
        webhook(session).send(PAGE, CONTEXT)
    assert info.value.retryable is False and "not followed" in str(info.value)
    assert session.sent[0]["allow_redirects"] is False and len(session.sent) == 1


def test_429_honours_retry_after_and_5xx_is_retried():
    t = FakeTime(NOW)
    session = WireSession(FakeResponse(429, {}, {"Retry-After": "12"}), FakeResponse(502), OK)
    assert webhook(session, t).send(PAGE, CONTEXT).attempts == 3
    assert t.sleeps[0] == 12.0


SECRET_URL = "https://hooks.slack.com/services/T0001/B0002/XyZsecretTOKENvalue0123456789"


@pytest.mark.parametrize(
    ("format", "url", "secret", "leak"),
    [
        ("standard", URL, OLD, OLD.removeprefix("whsec_")),
        (
            "standard",
            "https://soar.example.com/hooks?token=s3cr3t-token-of-the-url-0123",
            OLD,
            "s3cr3t-token-of-the-url-0123",
        ),
        ("slack", SECRET_URL, None, "XyZsecretTOKENvalue0123456789"),
        (
            "teams",
            "https://x.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=AbCdEfGhIjKlMnOpQrStUvWx",
            None,
            "AbCdEfGhIjKlMnOpQrStUvWx",
        ),
    ],
)
@pytest.mark.parametrize("status", [400, 410, 301, 503])
def test_no_secret_and_no_secret_url_in_any_error_or_log_line(
    format: Any, url: str, secret: str | None, leak: str, status: int, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    echo = FakeResponse(status, {"message": f"bad {leak} at {url}", "errors": [leak]})
    session = WireSession(*[echo] * POLICY.max_attempts)
    with pytest.raises(DeliveryError) as info:
        webhook(session, secret=secret, url=url, format=format).send(PAGE, CONTEXT)
    assert leak not in str(info.value) and url not in str(info.value)
    assert all(leak not in r.getMessage() and leak not in str(r.__dict__) for r in caplog.records)
    assert leak in url_secrets(url) or leak == OLD.removeprefix("whsec_")


def test_a_network_error_names_only_its_type():
    session = WireSession(*[requests.ConnectionError(f"{SECRET_URL}: refused")] * POLICY.max_attempts)
    with pytest.raises(DeliveryError) as info:
        webhook(session, secret=None, url=SECRET_URL, format="slack").send(PAGE, CONTEXT)
    assert "XyZsecret" not in str(info.value) and info.value.reason == "network"


def test_url_and_secret_are_read_at_each_send():
    urls, secrets = iter([URL, URL + "2"]), iter([OLD, NEW])
    session = WireSession(OK, OK)
    notifier = webhook(session, secret=lambda: next(secrets), url=lambda: next(urls))
    notifier.send(PAGE, CONTEXT)
    notifier.send(resolve(KEY), CONTEXT)
    assert [s["url"] for s in session.sent] == [URL, URL + "2"]
    assert verified(session.sent[0], [OLD]) == [] and verified(session.sent[1], [NEW]) == []


def test_construction_errors():
    retrier = Retrier(POLICY, channel="webhook")
    with pytest.raises(ValueError, match="unknown webhook format"):
        WebhookNotifier(URL, OLD, retrier, format="discord", session=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="signed"):
        WebhookNotifier(URL, None, retrier, session=object())


# ------------------------------------------------------------------------------------------ chat presets


def test_slack_is_unsigned_escaped_and_links_the_finding():
    finding = normalize_asff(asff(Title="<script> & friends", Description="a > b"))
    session = WireSession(FakeResponse(200, "ok"))
    notifier = webhook(session, secret=None, url=SECRET_URL, format="slack")
    assert notifier.channel == "Slack"
    notifier.send(PAGE, NotifyContext("prod", finding, KEY, "rule high", 1))
    [sent] = session.sent
    assert not any(h.startswith("webhook-") for h in sent["headers"])
    text = json.loads(sent["data"])["text"]
    assert "&lt;script&gt; &amp; friends" in text and "a &gt; b" in text and "<script>" not in text
    assert text.startswith(":rotating_light: *[prod] HIGH") and "|Open in Security Hub>" in text
    assert validate_slack(json.loads(sent["data"])) == []
    assert slack_body(resolve(KEY), NotifyContext("prod", dedup_key=KEY))["text"].startswith(":white_check_mark:")


def test_teams_is_one_adaptive_card_in_the_workflows_envelope():
    body = teams_body(PAGE, CONTEXT)
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["actions"][0]["type"] == "Action.OpenUrl" and validate_teams(body) == []
    assert validate_teams(teams_body(resolve(KEY), NotifyContext("prod"))) == []


def test_the_twin_records_the_body_of_its_format():
    twin = RecordingWebhookNotifier("standard", clock=lambda: NOW)
    twin.send(PAGE, CONTEXT)
    assert twin.events == [build_body(PAGE, CONTEXT, NOW)] and twin.channel == "webhook"
    assert RecordingWebhookNotifier("teams").channel == "Microsoft Teams"


# ------------------------------------------------------------------------------------------ the docs' snippet


def _docs_snippet() -> dict[str, Any]:
    text = DOCS.read_text()
    marker = text.index("<!-- verify-snippet")
    code = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)
    return namespace


def test_the_docs_verification_snippet_accepts_real_deliveries_and_refuses_forgeries():
    snippet = _docs_snippet()
    verify, error = snippet["verify_webhook"], snippet["WebhookVerificationError"]
    for name in ("finding_triggered", "incident_resolved"):
        fixture = json.loads((FIXTURES / "webhook" / f"{name}.json").read_text())
        headers, body = fixture["headers"], fixture["body"].encode()
        now = int(headers["webhook-timestamp"]) + 10
        assert verify(fixture["secret"], headers, body, now=now) == json.loads(body)
        with pytest.raises(error, match="no matching signature"):
            verify(fixture["secret"], headers, body.replace(b'"prod"', b'"dev"'), now=now)
        with pytest.raises(error, match="5 minutes"):
            verify(fixture["secret"], headers, body, now=now + 600)
        with pytest.raises(error, match="no matching signature"):
            verify(NEW, headers, body, now=now)
        assert verify(f"{NEW} {fixture['secret']}", headers, body, now=now)["version"] == "1"  # receiver rotating
    session = WireSession(OK)
    webhook(session, secret=f"{NEW} {OLD}").send(PAGE, CONTEXT)  # sender rotating
    [sent] = session.sent
    for secret in (OLD, NEW):
        assert verify(secret, sent["headers"], sent["data"], now=NOW)["data"]["incident_key"] == KEY
    vector = {
        "webhook-id": VECTOR["msg_id"],
        "webhook-timestamp": str(VECTOR["timestamp"]),
        "webhook-signature": VECTOR["signature"],
    }
    assert verify(VECTOR["secret"], vector, VECTOR["body"].encode(), now=VECTOR["timestamp"]) == {"test": 2432232314}
