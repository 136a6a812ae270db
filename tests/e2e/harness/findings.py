"""Security Hub events for the deployed stacks, and what each environment must make of them.

The events are the project's fixtures (tests/fixtures/*.json that are EventBridge events: ASFF and OCSF), each
moved into the environment's own account, plus a `Custom Action` event of the environment's own action (the ARN the
deployed rule names). They are sent with `PutEvents` to the default bus, all environments at once.

What must happen is computed with the project's own code, not written down by hand:

* which events reach an environment's queue: the **deployed** rule's pattern (as LocalStack holds it), checked with
  the project's EventBridge matcher (tests/infra/eventbridge_matcher.py), on the envelope EventBridge delivers;
* what the router does with them: `findings_router_local.replay.Replayer` (the router's code with in-memory state),
  its router sending into the recording twins of the policy's targets (harness/targets.py: PagerDuty, JSM,
  webhooks, each rule's pages where its `notify` says): the decisions, what each target gets, the dedup states.

Order matters for a finding seen twice (a PASSED after a FAILED, an archive after an alert, an OCSF copy of an ASFF
finding), while SQS and the event source mapping keep none. So the events go out in waves, by event time: an event
goes into the wave after the last one holding a finding with the same dedup key, and each wave is processed before
the next is sent. Within a wave no two events touch the same key, so their order cannot change the outcome.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.service.route import Routed
from findings_router_local.replay import Replayer
from tests.e2e.harness.environments import REPO, Environment
from tests.e2e.harness.targets import Delivery, RecordingTargets, as_counters, recording_replayer
from tests.infra.eventbridge_matcher import matches

FIXTURES = REPO / "tests" / "fixtures"
FIXTURE_ACCOUNTS = ("111122223333", "444455556666")  # tests/fixtures/README.md
CUSTOM_ACTION_FIXTURE = "asff_custom_action_two_findings.json"


def fixture_events() -> dict[str, dict[str, Any]]:
    """The fixtures that are EventBridge events, by file name."""
    out = {}
    for path in sorted(FIXTURES.glob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and {"source", "detail-type", "detail"} <= doc.keys():
            out[path.name] = doc
    return out


def rehome(event: dict[str, Any], account: str) -> dict[str, Any]:
    """The event as it happens in `account` (every fixture account id replaced, ARNs and ids included)."""
    text = json.dumps(event)
    for fixture_account in FIXTURE_ACCOUNTS:
        text = text.replace(fixture_account, account)
    return dict(json.loads(text))


def own_custom_action(event: dict[str, Any], action_arn: str) -> dict[str, Any]:
    """A Custom Action event of the environment's own action (the fixture's action is another tool's)."""
    out = json.loads(json.dumps(event))
    out["resources"] = [action_arn]
    out["detail"]["actionName"] = action_arn.rsplit("/", 1)[1]
    return dict(out)


def put_entry(event: dict[str, Any], bus: str = "default") -> dict[str, Any]:
    """The PutEvents entry that makes EventBridge deliver `event`."""
    return {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
        "Resources": list(event.get("resources", [])),
        "Time": dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00")),
        "EventBusName": bus,
    }


def delivered(event: dict[str, Any], account: str, region: str) -> dict[str, Any]:
    """The envelope EventBridge delivers for a PutEvents entry: the caller's account and region, not the event's."""
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": event["detail-type"],
        "source": event["source"],
        "account": account,
        "time": event["time"],
        "region": region,
        "resources": list(event.get("resources", [])),
        "detail": event["detail"],
    }


@dataclass
class Sent:
    name: str  # fixture file (or a description)
    event: dict[str, Any]
    matched: bool  # the deployed rule admits it
    wave: int = 0
    keys: frozenset[str] = frozenset()


@dataclass
class Plan:
    """One environment's events, their waves, and what the router must do with them."""

    env: Environment
    sent: list[Sent]
    replay: Replayer
    recording: RecordingTargets  # the replay's targets
    routed: list[Routed] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    messages_by_wave: Counter[int] = field(default_factory=Counter)
    # Deliveries to all targets together (PagerDuty events, JSM requests, webhooks: trigger, resolve, ...)
    deliveries_by_wave: Counter[int] = field(default_factory=Counter)

    @property
    def waves(self) -> int:
        return max((s.wave for s in self.sent if s.matched), default=0)

    def expected_deliveries(self) -> dict[str, Counter[Delivery]]:
        """Target -> what the router must have sent it."""
        return as_counters(self.recording.sent())

    def expected_states(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Dedup key -> the episode's status and where it went (`targets`, stored when not the primary only)."""
        return {k: (s.status, s.targets) for k, s in self.replay.store.items.items()}

    def expected_writebacks(self) -> set[str]:
        """Finding ids Security Hub must be told about (a page or notification of an active finding)."""
        if not self.env.policy.securityhub.writeback:
            return set()
        return {
            r.finding.id
            for r in self.routed
            if r.decision.outcome in ("page", "notify") and not r.finding.is_resolved and r.decision.notifications
        }

    def expected_notes(self) -> set[tuple[str, str]]:
        """(finding id, note) the router must write back: who was told, through which channels (the targets')."""
        hub = self.replay.router.writeback
        if hub is None:
            return set()
        assert isinstance(hub, RecordingSecurityHub)  # harness/targets.py recording_replayer
        return {(ref.id, u.note) for u in hub.updates for ref in u.refs}


def plan(env: Environment, pattern: dict[str, Any], action_arn: str, account: str, region: str) -> Plan:
    """The environment's events, which of them its deployed rule admits, their waves, and the router's outcome."""
    account_of_env = env.policy.accounts[0] if not env.policy.all_accounts else FIXTURE_ACCOUNTS[0]
    events = {name: rehome(ev, account_of_env) for name, ev in fixture_events().items()}
    events[f"{CUSTOM_ACTION_FIXTURE} (own action)"] = own_custom_action(events[CUSTOM_ACTION_FIXTURE], action_arn)
    ordered = sorted(events.items(), key=lambda item: item[1]["time"])
    sent = [Sent(name, ev, matches(pattern, delivered(ev, account, region))) for name, ev in ordered]

    # The dedup keys each event touches, from a first replay in time order.
    scratch = Replayer(env.policy)
    for s in sent:
        if s.matched:
            findings = scratch.normalize_document(s.name, delivered(s.event, account, region))
            s.keys = frozenset(r.decision.key for r in scratch.route(findings))
    last_wave: dict[str, int] = {}
    for s in sent:
        if s.matched:
            s.wave = 1 + max((last_wave.get(k, 0) for k in s.keys), default=0)
            for k in s.keys:
                last_wave[k] = s.wave

    # The outcome, wave by wave, as the deployed router must reach it.
    result = Plan(env, sent, *recording_replayer(env))
    for wave in range(1, result.waves + 1):
        before = result.recording.count()
        for s in (s for s in sent if s.matched and s.wave == wave):
            findings = result.replay.normalize_document(s.name, delivered(s.event, account, region))
            result.routed.extend(result.replay.route(findings))
            result.messages_by_wave[wave] += 1
        result.deliveries_by_wave[wave] = result.recording.count() - before
    result.problems = [str(p) for p in result.replay.problems]
    return result


def describe(plan_: Plan) -> str:
    """One line per event: its wave (or that the rule does not admit it) and its name."""
    return "\n".join(
        f"  {f'wave {s.wave}' if s.matched else 'not admitted by the rule':26} {s.name}" for s in plan_.sent
    )
