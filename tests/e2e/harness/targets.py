"""Where an environment's notifications go (routing per rule): the policy's targets, what the router of the policy
must send to each, and what each target's stand-in accepted, compared target by target.

The targets are `pagerduty` (the policy's `notifier`) and the policy's other `notifiers`: a rule's `notify` names
them, the default action and the custom action go to `default_notify`, and an episode's escalations and resolve go
where its first page went. What must be sent is computed by the router's own code: the replay's router sends into a
`NotifierSet` of the recording twins of the targets (`recording_targets`), as the deployed router sends into a
`NotifierSet` of the real notifiers. What is compared of each delivery (`Delivery`): its kind of request, incident
key, severity (PagerDuty's severity, JSM's priority, the webhook's severity) and the summary people read.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.notify.dispatch import NotifierSet
from findings_router.notify.jsm.recording import RecordingJsmNotifier
from findings_router.notify.recording import RecordingNotifier
from findings_router.notify.webhook.recording import RecordingWebhookNotifier
from findings_router.settings.schema import (
    PRIMARY_NOTIFIER,
    JsmNotifierConfig,
    PagerDutyNotifierConfig,
    Policy,
    WebhookNotifierConfig,
)
from findings_router_local.fakes.jsm import JsmReceiver, Route, parse_route
from findings_router_local.fakes.pagerduty import PagerDutyReceiver
from findings_router_local.fakes.webhook import WebhookReceiver
from findings_router_local.replay import Replayer
from tests.e2e.harness.environments import Environment, routing_key_for

Delivery = tuple[str, str, str, str]  # (request kind, incident key, severity or priority, summary)


def pagerduty_delivery(body: dict[str, Any]) -> Delivery:
    """A PagerDuty Events v2 event: action, dedup key, severity, summary."""
    payload = body.get("payload") or {}
    return (body["event_action"], body.get("dedup_key", ""), payload.get("severity", ""), payload.get("summary", ""))


def jsm_delivery(route: Route, body: dict[str, Any]) -> Delivery:
    """A JSM integration-events request: create or the action (close), the alias, priority, message."""
    return (route.action, body.get("alias") or route.identifier, body.get("priority", ""), body.get("message", ""))


def webhook_delivery(body: dict[str, Any], format: str = "standard") -> Delivery:
    """A signed webhook (type, incident key, severity, summary); a chat message only counts (it has no key)."""
    if format != "standard":
        return ("message", "", "", "")
    data = body.get("data") or {}
    return (body.get("type", ""), data.get("incident_key", ""), data.get("severity", ""), data.get("summary", ""))


def targets(policy: Policy) -> dict[str, Any]:
    """Target name -> its configuration (`pagerduty`: the policy's `notifier`)."""
    return {PRIMARY_NOTIFIER: policy.notifier, **policy.notifiers}


def routing_key_of(env: Environment, name: str) -> str | None:
    """The routing key a PagerDuty target sends with (None for other kinds)."""
    config = targets(env.policy)[name]
    return routing_key_for(config.routing_key_secret) if isinstance(config, PagerDutyNotifierConfig) else None


class RecordingTargets:
    """The recording twin of each of the environment's targets, and the one notifier the router sends into."""

    def __init__(self, env: Environment) -> None:
        self.twins: dict[str, Any] = {}
        for name, config in targets(env.policy).items():
            if isinstance(config, JsmNotifierConfig):
                self.twins[name] = RecordingJsmNotifier()
            elif isinstance(config, WebhookNotifierConfig):
                self.twins[name] = RecordingWebhookNotifier(config.format)
            else:
                self.twins[name] = RecordingNotifier(routing_key_of(env, name) or "R" * 32)
        self.formats = {n: c.format for n, c in targets(env.policy).items() if isinstance(c, WebhookNotifierConfig)}
        primary = self.twins[PRIMARY_NOTIFIER]
        self.notifier: Any = NotifierSet(self.twins, PRIMARY_NOTIFIER) if env.policy.notifiers else primary

    def sent(self) -> dict[str, list[Delivery]]:
        """Target -> what was sent to it, in order."""
        out: dict[str, list[Delivery]] = {}
        for name, twin in self.twins.items():
            if isinstance(twin, RecordingJsmNotifier):
                out[name] = [jsm_delivery(_route(path), body) for path, body in twin.requests]
            elif isinstance(twin, RecordingWebhookNotifier):
                out[name] = [webhook_delivery(body, self.formats[name]) for body in twin.events]
            else:
                out[name] = [pagerduty_delivery(body) for body in twin.events]
        return out

    def count(self) -> int:
        return sum(len(twin.sent) for twin in self.twins.values())


def _route(path: str) -> Route:
    route = parse_route("POST", path)
    assert isinstance(route, Route), f"the JSM notifier's request {path} has no route at the stand-in: {route}"
    return route


def recording_replayer(env: Environment) -> tuple[Replayer, RecordingTargets]:
    """A replay of the environment's policy whose router sends to the recording twins of its targets, and writes
    back to a recording Security Hub when the policy writes back."""
    replay = Replayer(env.policy)
    recording = RecordingTargets(env)
    replay.notifier = recording.notifier
    replay.router.notifier = recording.notifier
    replay.router.writeback = RecordingSecurityHub() if env.policy.securityhub.writeback else None
    return replay, recording


def received(env: Environment, pagerduty: PagerDutyReceiver, ignore_keys: set[str]) -> dict[str, list[Delivery]]:
    """Target -> what its stand-in accepted from the environment, in order (PagerDuty: the events with the target's
    routing key), but for incident keys in `ignore_keys` (the meta-alerts')."""
    out: dict[str, list[Delivery]] = {}
    for name in targets(env.policy):
        routing_key = routing_key_of(env, name)
        if routing_key is not None:
            out[name] = [
                pagerduty_delivery(e)
                for e in pagerduty.accepted
                if e.get("routing_key") == routing_key and e.get("dedup_key") not in ignore_keys
            ]
            continue
        receiver = env.targets[name]
        if isinstance(receiver, JsmReceiver):
            got = [jsm_delivery(route, body) for route, body in receiver.accepted]
        else:
            assert isinstance(receiver, WebhookReceiver)
            got = [webhook_delivery(body, receiver.format) for body in receiver.accepted]
        out[name] = [d for d in got if d[1] not in ignore_keys]
    return out


def rejected(env: Environment) -> dict[str, list[Any]]:
    """Target -> what its stand-in refused (key, signature, contract), for the stand-ins of `notifiers`."""
    return {name: r.rejected for name, r in env.targets.items() if not isinstance(r, PagerDutyReceiver)}


def since(after: dict[str, list[Delivery]], before: dict[str, list[Delivery]]) -> dict[str, Counter[Delivery]]:
    """Target -> what was accepted after `before` was taken."""
    return {name: Counter(got[len(before.get(name, [])) :]) for name, got in after.items()}


def as_counters(sent: dict[str, list[Delivery]]) -> dict[str, Counter[Delivery]]:
    return {name: Counter(got) for name, got in sent.items()}


def differences(name: str, got: dict[str, Counter[Delivery]], expected: dict[str, Counter[Delivery]]) -> str:
    """What differs, target by target, for an assertion message."""
    lines = [f"{name}: deliveries per target (kind, incident key, severity, summary)"]
    for target in sorted(set(got) | set(expected)):
        g, e = got.get(target, Counter()), expected.get(target, Counter())
        if g != e:
            lines.append(f"  {target}: expected, not received: {sorted((e - g).elements())}")
            lines.append(f"  {target}: received, not expected: {sorted((g - e).elements())}")
    return "\n".join(lines)
