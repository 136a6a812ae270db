"""Routing per rule: each rule (and the default) names its notifiers; an episode's escalations and resolve go where
its first page went, whatever the policy says by then; sibling resolves of the ack receiver too."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import yaml

from findings_router.adapters.memory import InMemoryDedupStore
from findings_router.domain.model import Finding
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.notify.dispatch import NotifierSet
from findings_router.notify.jsm.recording import RecordingJsmNotifier
from findings_router.notify.recording import RecordingNotifier
from findings_router.notify.webhook.recording import RecordingWebhookNotifier
from findings_router.service.route import FindingsRouter
from findings_router.settings.load import validate_policy_text
from findings_router.settings.schema import Policy
from tests.builders import CONFIG_DIR, asff, updated

T0 = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)


def policy(**changes: Any) -> Policy:
    data = yaml.safe_load((CONFIG_DIR / "prod.yaml").read_text())
    data["notifiers"] = {
        "secops-jsm": {"type": "jsm", "api_key_secret": "findings-router/prod/jsm-api-key"},
        "soar": {
            "type": "webhook",
            "url": "https://soar.example.com/hooks/findings",
            "signing_secret": "findings-router/prod/soar-signing-secret",
        },
    }
    data["rules"][1]["notify"] = ["secops-jsm", "soar"]  # high-and-critical
    data["rules"][2]["notify"] = ["soar"]  # medium-guardduty-threats (notify)
    data.update(changes)
    return Policy.model_validate(data)


class Targets:
    def __init__(self) -> None:
        self.pagerduty = RecordingNotifier()
        self.jsm = RecordingJsmNotifier()
        self.soar = RecordingWebhookNotifier()
        self.set = NotifierSet({"pagerduty": self.pagerduty, "secops-jsm": self.jsm, "soar": self.soar}, "pagerduty")

    def keys(self) -> dict[str, list[tuple[str, str]]]:
        return {
            name: [(n.kind, n.key) for n, _ in target.sent]
            for name, target in (("pagerduty", self.pagerduty), ("secops-jsm", self.jsm), ("soar", self.soar))
        }


def f(raw: dict[str, Any]) -> Finding:
    return normalize_asff(raw)


def router(p: Policy, targets: Targets, store: InMemoryDedupStore | None = None) -> FindingsRouter:
    return FindingsRouter(CompiledPolicy(p), store or InMemoryDedupStore(), targets.set)


def test_each_rule_sends_to_its_notifiers_and_the_episode_follows_them_to_its_resolve():
    targets, store = Targets(), InMemoryDedupStore()
    high = asff(severity="HIGH")
    first = router(policy(), targets, store).route(f(high), T0)
    assert first.decision.outcome == "page"
    key = first.decision.key
    escalated = router(policy(), targets, store).route(f(updated(high, 10, Severity={"Label": "CRITICAL"})), T0)
    assert escalated.decision.outcome == "page"
    # The policy changes meanwhile (back to PagerDuty only): the open episode still resolves where it paged.
    archived = updated(high, 20, RecordState="ARCHIVED")
    later = policy(notifiers={}, rules=[{"name": "all", "action": "page"}])
    resolved = router(later, targets, store).route(f(archived), T0)
    assert resolved.decision.outcome == "resolve"
    sent = targets.keys()
    assert sent["pagerduty"] == []
    assert sent["secops-jsm"] == sent["soar"]
    assert [kind for kind, _ in sent["secops-jsm"]] == ["trigger", "trigger", "resolve", "resolve"]
    assert {k.split("~")[0] for _, k in sent["secops-jsm"]} == {key}
    assert store.get_many([key])[key].targets == ("secops-jsm", "soar")


def test_rules_without_notify_use_the_default_and_the_primary_is_recorded_as_nothing():
    targets, store = Targets(), InMemoryDedupStore()
    routed = router(policy(), targets, store).route(
        f(
            asff(
                severity="MEDIUM",
                product="inspector",
                Vulnerabilities=[{"Id": "CVE-2021-44228", "Cvss": [{"Version": "3.1", "BaseScore": 9.8}]}],
            )
        ),
        T0,
    )  # critical-cvss rule
    assert routed.decision.outcome == "page"
    assert [k for k, _ in targets.keys()["pagerduty"]] == ["trigger"]
    assert targets.keys()["secops-jsm"] == targets.keys()["soar"] == []
    assert store.get_many([routed.decision.key])[routed.decision.key].targets == ()  # items as before: the primary
    p = policy(default_notify=["soar"], rules=[{"name": "all", "action": "notify"}])
    targets = Targets()
    router(p, targets).route(f(asff(severity="LOW")), T0)
    assert [k for k, _ in targets.keys()["soar"]] == ["trigger"] and targets.keys()["pagerduty"] == []


def test_a_rule_naming_an_unknown_notifier_is_refused_with_its_line():
    text = (
        (CONFIG_DIR / "prod.yaml")
        .read_text()
        .replace("  - name: high-and-critical\n", "  - name: high-and-critical\n    notify: [secops-jsm]\n")
    )
    result = validate_policy_text(text, "prod.yaml")
    [problem] = [str(p) for p in result.errors]
    line = text.splitlines().index("    notify: [secops-jsm]") + 1
    assert problem == f"prod.yaml:{line}: rules[1].notify[0]: no notifier named 'secops-jsm' (configured: pagerduty)"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"type": "webhook", "format": "standard", "url": "https://x.example.com"}, "needs signing_secret"),
        ({"type": "webhook", "format": "slack", "url": "https://hooks.slack.com/services/T/B/X"}, "url_secret"),
        ({"type": "webhook", "url_secret": "a", "url": "https://x.example.com", "signing_secret": "s"}, "one of"),
        ({"type": "jsm"}, "api_key_secret"),
    ],
)
def test_notifier_settings_are_checked(config: dict, message: str):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        policy(notifiers={"x": config})


def test_meta_alerts_can_go_to_a_named_notifier_instead_of_pagerduty():
    from findings_router.bootstrap import MetaAlertRuntime
    from findings_router.entrypoints import page_alarms
    from tests.builders import ALARM, FakeLambdaContext

    targets = Targets()
    p = policy(monitoring={**policy().monitoring.model_dump(), "meta_alert_notify": ["secops-jsm"]})
    page_alarms.install(MetaAlertRuntime(p, targets.set, ("secops-jsm",)))
    try:
        sns = {"Records": [{"Sns": {"Message": json.dumps(ALARM)}}]}
        assert page_alarms.lambda_handler(sns, FakeLambdaContext()) == {"sent": 1}
    finally:
        page_alarms.install(None)
    assert [k for k, _ in targets.keys()["secops-jsm"]] == ["trigger"] and targets.keys()["pagerduty"] == []


def test_meta_alerts_may_not_name_the_primary_or_an_unknown_notifier():
    text = (
        (CONFIG_DIR / "prod.yaml")
        .read_text()
        .replace(
            "  oldest_message_age_seconds: 600\n",
            "  oldest_message_age_seconds: 600\n  meta_alert_notify: [pagerduty, nope]\n",
        )
    )
    problems = [str(p) for p in validate_policy_text(text, "prod.yaml").errors]
    assert any("monitoring.meta_alert_notify[0]: meta-alerts reach PagerDuty" in p for p in problems), problems
    assert any("monitoring.meta_alert_notify[1]: no notifier named 'nope'" in p for p in problems), problems


def test_a_notification_that_becomes_a_page_reaches_the_paging_rules_targets_and_resolves_everywhere():
    """stg: HIGH notifies the SOAR only; the same finding at CRITICAL must page JSM (the critical rule's target),
    not only the SOAR, and the episode's resolve then reaches both."""
    p = policy(
        rules=[
            {"name": "critical", "match": {"severity": ["CRITICAL"]}, "action": "page", "notify": ["secops-jsm"]},
            {"name": "high", "match": {"severity": ["HIGH"]}, "action": "notify", "notify": ["soar"]},
        ]
    )
    targets, store = Targets(), InMemoryDedupStore()
    high = asff(severity="HIGH")
    router(p, targets, store).route(f(high), T0)
    escalated = router(p, targets, store).route(f(updated(high, 10, Severity={"Label": "CRITICAL"})), T0)
    assert escalated.decision.outcome == "page"
    router(p, targets, store).route(f(updated(high, 20, RecordState="ARCHIVED")), T0)
    sent = targets.keys()
    assert [kind for kind, _ in sent["secops-jsm"]] == ["trigger", "resolve", "resolve"]  # the page, both keys closed
    assert [kind for kind, _ in sent["soar"]] == ["trigger", "trigger", "resolve", "resolve"]
    assert store.get_many([escalated.decision.key])[escalated.decision.key].targets == ("soar", "secops-jsm")


def test_an_operator_closing_the_jsm_alert_resolves_the_episode_at_its_other_targets():
    from findings_router.domain.acks import parse_jsm_action
    from findings_router.service.acknowledge import AckProcessor

    targets, store = Targets(), InMemoryDedupStore()
    routed = router(policy(), targets, store).route(f(asff(severity="HIGH")), T0)  # JSM and the SOAR
    key = routed.decision.key
    body = {
        "action": "Close",
        "source": {"name": "", "type": "web"},
        "alert": {
            "alertId": "a-1",
            "alias": key,
            "tinyId": "7",
            "message": "m",
            "username": "ada@example.com",
            "updatedAt": int(dt.datetime.now(dt.UTC).timestamp() * 1e9),
        },
    }
    acks = AckProcessor(store, None, notifier=targets.set, environment="prod")
    result = acks.process(parse_jsm_action(body), dt.datetime.now(dt.UTC))
    assert result.outcome == "resolved" and result.resolved_siblings == 1  # the episode's one key, at every target
    assert targets.keys()["soar"][-1] == ("resolve", key)  # the SOAR learns it is over
    assert targets.keys()["secops-jsm"][-1] == ("resolve", key)  # a no-op where it was closed
    assert targets.keys()["pagerduty"] == []


def test_delivery_retries_count_every_targets_retries():
    from findings_router.notify.retry import Retrier, RetryPolicy

    class WithRetrier(RecordingNotifier):
        def __init__(self, retries: int) -> None:
            super().__init__()
            self.retrier = Retrier(RetryPolicy(3, 0.1, 0.2, 5, 1), channel="x")
            self.retrier.retries, self.retrier.calls = retries, retries + 1

    notifiers = NotifierSet({"pagerduty": WithRetrier(1), "secops-jsm": WithRetrier(2)}, "pagerduty")
    assert (notifiers.retrier.retries, notifiers.retrier.calls) == (3, 5)
    notifiers.retrier.reset_counts()
    assert notifiers.retrier.retries == 0
