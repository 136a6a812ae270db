"""Security Hub events through the deployed path: PutEvents → each environment's rule → its SQS queue → the event
source mapping → its router Lambda → DynamoDB state → the stand-in of each target its policy routes to (PagerDuty;
JSM and signed webhooks where a rule's `notify` names them), and the write-back to Security Hub.

What each environment must do is computed from its policy with the project's code (harness/findings.py); these
tests compare it with what the deployed stacks did.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.e2e.harness.environments import environments
from tests.e2e.harness.findings import Plan, Sent, delivered, describe, plan, put_entry
from tests.e2e.harness.observe import dedup_states, queue_depth, wait_for
from tests.e2e.harness.routing import (
    WAVE_TIMEOUT_SECONDS,
    Seen,
    put_events,
    securityhub_updates,
    seen,
    wait_routed,
    written_back,
)
from tests.e2e.harness.session import Deployment
from tests.e2e.harness.targets import as_counters, differences, rejected, since

ENVIRONMENTS = sorted(environments())


@dataclass
class Drive:
    plans: dict[str, Plan]
    seen: dict[str, Seen]


@pytest.fixture(scope="module")
def drive(deployment: Deployment) -> Drive:
    """Every environment's events, wave by wave, each wave processed by every stack before the next is sent."""
    aws = deployment.aws
    plans = {}
    for name, env in deployment.environments.items():
        rule = aws.client("events").describe_rule(Name=env.names.rule)
        plans[name] = plan(
            env, json.loads(rule["EventPattern"]), env.outputs["CustomActionArn"], aws.account, aws.region
        )
    waves = max(p.waves for p in plans.values())
    with deployment.phases.timed(f"  findings: {sum(len(p.sent) for p in plans.values())} events in {waves} waves"):
        for wave in range(1, waves + 1):
            entries = [put_entry(s.event) for p in plans.values() for s in p.sent if s.matched and s.wave == wave]
            # The events no rule admits go out with the first wave: nothing may come of them.
            if wave == 1:
                entries += [put_entry(s.event) for p in plans.values() for s in p.sent if not s.matched]
            put_events(deployment, entries)
            wanted = {
                name: (
                    sum(n for w, n in p.messages_by_wave.items() if w <= wave),
                    sum(n for w, n in p.deliveries_by_wave.items() if w <= wave),
                )
                for name, p in plans.items()
            }
            wait_routed(deployment, f"wave {wave}/{waves}", wanted)
    return Drive(plans, {name: seen(deployment, env) for name, env in deployment.environments.items()})


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_rule_admits_the_environments_events_only(drive: Drive, name: str) -> None:
    """Exactly the events the deployed pattern admits reached the router: its own accounts, its own custom action;
    nothing of the other environments' accounts, no foreign custom action, no Insight Results."""
    plan_ = drive.plans[name]
    expected = sum(plan_.messages_by_wave.values())
    assert drive.seen[name].records == expected, (
        f"{name}: the router handled {drive.seen[name].records} messages, the pattern admits {expected}:\n"
        + describe(plan_)
    )
    assert expected > 0, f"{name}: no fixture event is admitted by its rule; the test proves nothing\n" + describe(
        plan_
    )


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_each_target_gets_what_the_policy_decides(drive: Drive, name: str) -> None:
    """Target by target (PagerDuty events; JSM creates and closes; signed webhooks): exactly what the policy's code
    sends there, each rule's pages and notifications where its `notify` says, the rest to the primary notifier."""
    plan_ = drive.plans[name]
    got = as_counters(drive.seen[name].sent)
    expected = plan_.expected_deliveries()
    assert got == expected, differences(name, got, expected)
    unused = sorted(t for t in plan_.env.policy.notifiers if not expected[t])
    assert not unused, f"{name}: no fixture event reaches notifier(s) {unused}; the test proves nothing for them"
    assert not plan_.problems, f"{name}: events the router cannot read: {plan_.problems}"


def test_the_stand_ins_rejected_nothing(deployment: Deployment, drive: Drive) -> None:
    """Every request the functions sent passed its stand-in's checks: the Events v2 contract; JSM's API key and
    contract; the webhooks' Standard Webhooks signature (with the signing secret as deployed) and schema."""
    assert deployment.pagerduty.rejected == []
    for name, env in deployment.environments.items():
        assert rejected(env) == {t: [] for t in env.targets}, f"{name}: refused by a stand-in"


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_state_table_holds_the_episodes(deployment: Deployment, drive: Drive, name: str) -> None:
    env = deployment.environments[name]
    states = {k: (s.status, s.targets) for k, s in dedup_states(deployment.aws, env.names.state_table).items()}
    assert states == drive.plans[name].expected_states()


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_security_hub_is_told_of_each_page(deployment: Deployment, drive: Drive, name: str) -> None:
    """A page or notification of an active finding writes back (ASFF BatchUpdateFindings, OCSF ...V2), with the
    note the policy's code writes: the incident key, the decision, and the channels it went through (staging: "Jira
    Service Management and webhook" for a critical rule's page, "webhook" for a notification, PagerDuty for the
    custom action)."""
    plan_ = drive.plans[name]
    written = written_back(securityhub_updates(), name)
    assert {finding_id for finding_id, _ in written} == plan_.expected_writebacks()
    expected = plan_.expected_notes()
    assert written == expected, (
        f"{name}: Security Hub notes\n  expected, not written: {sorted(expected - written)}\n"
        f"  written, not expected: {sorted(written - expected)}"
    )


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_nothing_is_left_in_the_queues(deployment: Deployment, drive: Drive, name: str) -> None:
    env = deployment.environments[name]
    for queue in ("FindingsQueueUrl", "DeadLetterQueueUrl"):
        assert queue_depth(deployment.aws, env.outputs[queue]) == (0, 0), f"{name}: {queue}"


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_a_redelivered_event_does_not_page_again(deployment: Deployment, drive: Drive, name: str) -> None:
    """Security Hub sends an event again (same finding, same UpdatedAt): routed as a duplicate, nobody paged."""
    env, plan_ = deployment.environments[name], drive.plans[name]
    paged: Sent | None = next(
        (
            s
            for s in plan_.sent
            if s.matched
            and any(r.decision.outcome in ("page", "notify") for r in plan_.routed if r.decision.key in s.keys)
        ),
        None,
    )
    assert paged is not None, f"{name}: no event paged or notified, so none can be sent again"
    findings = plan_.replay.normalize_document(
        paged.name, delivered(paged.event, deployment.aws.account, deployment.aws.region)
    )
    expected = Counter(r.decision.outcome for r in plan_.replay.route(findings))
    assert set(expected) == {"duplicate"}, f"{name}: the policy's own code says {expected} for {paged.name} again"
    before = seen(deployment, env)
    put_events(deployment, [put_entry(paged.event)])
    after = wait_for(
        f"{name}: the router to handle {paged.name} again",
        lambda: seen(deployment, env),
        lambda s: s.records > before.records,
        WAVE_TIMEOUT_SECONDS,
        show=lambda s: f"{s.records} messages handled, {before.records} before",
    )
    assert after.outcomes - before.outcomes == expected
    again = {t: got for t, got in since(after.sent, before.sent).items() if got}
    assert not again, f"{name}: paged again: {again}"
