"""The canary: recognized only as this environment's synthetic finding, paged to its own service and never through the
policy, its hops recorded once per run whatever the order of copies, crashes and webhooks."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from findings_router.adapters.canary_log import InMemoryCanaryLog
from findings_router.adapters.memory import InMemoryDedupStore
from findings_router.domain import canary
from findings_router.domain.acks import IncidentEvent
from findings_router.domain.canary import CanaryRun, incident_key, incident_run, sighting, synthetic_finding
from findings_router.domain.normalize import normalize_event
from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.domain.policy import CompiledPolicy
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.acknowledge import AckProcessor
from findings_router.service.canary import CanaryProbe
from findings_router.service.route import FindingsRouter
from findings_router.settings.load import load_policy
from tests.builders import CONFIG_DIR, event

ACCOUNT = "999988887777"  # the deploying (delegated administrator) account: not one of prod's `accounts`
T0 = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)


def canary_finding(environment: str = "prod", *, at: dt.datetime = T0, account: str = ACCOUNT):
    raw = synthetic_finding(environment, account=account, region="eu-central-1", partition="aws", now=at)
    (finding,) = normalize_event(event(raw)).findings
    return finding


class Clock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


class Crash(Exception):
    """The container died here."""


class CanaryService(RecordingNotifier):
    """The canary's PagerDuty service: incidents ever opened per key (a trigger to an open alert is folded in, one
    after its resolve opens a new incident), and a crash of the container right after a chosen send was accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.open: set[str] = set()
        self.incidents: dict[str, int] = {}
        self.crash_after: str | None = None  # "trigger" or "resolve"

    def send(self, send: Notification, ctx: NotifyContext) -> DeliveryResult:
        result = super().send(send, ctx)
        if send.kind == "trigger" and send.key not in self.open:
            self.open.add(send.key)
            self.incidents[send.key] = self.incidents.get(send.key, 0) + 1
        elif send.kind == "resolve":
            self.open.discard(send.key)
        if send.kind == self.crash_after:
            self.crash_after = None
            raise Crash
        return result


def probe(log=None, notifier=None, *, completes_on="acknowledged", clock=None, heartbeat=None) -> CanaryProbe:
    return CanaryProbe(
        "prod",
        log if log is not None else InMemoryCanaryLog(),
        notifier=notifier if notifier is not None else RecordingNotifier(),
        completes_on=completes_on,
        clock=clock or Clock(T0 + dt.timedelta(seconds=40)),
        heartbeat=heartbeat,
    )


def router(canary_probe: CanaryProbe | None, findings_notifier: RecordingNotifier | None = None) -> FindingsRouter:
    policy = CompiledPolicy(load_policy(CONFIG_DIR / "prod.yaml"))
    return FindingsRouter(policy, InMemoryDedupStore(), findings_notifier or RecordingNotifier(), canary=canary_probe)


# ------------------------------------------------------------------------------------------ recognizing it


def test_the_synthetic_finding_is_valid_asff_and_recognized_as_this_environments_run():
    raw = synthetic_finding("prod", account=ACCOUNT, region="eu-central-1", partition="aws", now=T0)
    # BatchImportFindings' required attributes, a private product of the importing account.
    assert {"SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "CreatedAt", "UpdatedAt"} <= set(raw)
    assert {"Severity", "Title", "Description", "Resources", "Types"} <= set(raw)
    assert raw["ProductArn"] == f"arn:aws:securityhub:eu-central-1:{ACCOUNT}:product/{ACCOUNT}/default"
    assert raw["Id"] == "findings-router-canary/prod"
    assert sighting(canary_finding()) == canary.CanarySighting("prod", "2026-11-27T12:00:00.000Z")


@pytest.mark.parametrize(
    "tamper",
    [
        # Another account's private product: only the finding's own account can import into it.
        lambda raw: raw.update(ProductArn="arn:aws:securityhub:eu-central-1:111122223333:product/111122223333/default"),
        # A partner product with the canary's generator id.
        lambda raw: raw.update(ProductArn="arn:aws:securityhub:eu-central-1::product/aws/guardduty"),
        lambda raw: raw.update(Id="findings-router-canary/dev"),  # the id of another environment
        lambda raw: raw["ProductFields"].pop("findings-router/sent_at"),
        lambda raw: raw["ProductFields"].update({"findings-router/sent_at": "yesterday"}),
        lambda raw: raw.update(GeneratorId="something-else"),
    ],
)
def test_look_alikes_are_not_the_canary(tamper):
    raw = synthetic_finding("prod", account=ACCOUNT, region="eu-central-1", partition="aws", now=T0)
    tamper(raw)
    (finding,) = normalize_event(event(raw)).findings
    assert sighting(finding) is None


def test_incident_keys_name_their_environment_and_run():
    key = incident_key("prod", "2026-11-27T12:00:00.000Z")
    assert incident_run(key, "prod") == "2026-11-27T12:00:00.000Z"
    assert incident_run(key, "dev") is None
    assert incident_run("fr1-0123456789abcdef", "prod") is None


def test_hop_seconds_stop_at_the_first_missing_hop():
    run = CanaryRun("prod", "2026-11-27T12:00:00.000Z")
    run = run.reached("received", T0 + dt.timedelta(seconds=12)).reached("delivered", T0 + dt.timedelta(seconds=13.5))
    assert run.hop_seconds() == {"received": 12.0, "delivered": 1.5, "total": 13.5}
    done = run.reached("acknowledged", T0 + dt.timedelta(seconds=20))
    assert done.hop_seconds() == {"received": 12.0, "delivered": 1.5, "acknowledged": 6.5, "total": 20.0}


# ------------------------------------------------------------------------------------------ the router


def test_the_router_pages_the_canary_service_never_on_call_and_never_through_the_policy():
    findings_pd, canary_pd = RecordingNotifier(), RecordingNotifier()
    routed = router(probe(notifier=canary_pd), findings_pd).route(canary_finding(), T0 + dt.timedelta(seconds=30))
    assert findings_pd.events == []  # prod's policy drops INFORMATIONAL; the canary pages anyway, elsewhere
    assert [(e["event_action"], e["dedup_key"]) for e in canary_pd.events] == [
        ("trigger", "findings-router-canary/prod/2026-11-27T12:00:00.000Z"),
        ("resolve", "findings-router-canary/prod/2026-11-27T12:00:00.000Z"),  # nobody has to close it
    ]
    assert routed.canary is not None and routed.canary.outcome == "paged"
    assert routed.canary.hops == {"received": 30.0, "delivered": 10.0, "total": 40.0}


def test_another_environments_canary_is_dropped_and_pages_nothing():
    canary_pd = RecordingNotifier()
    routed = router(probe(notifier=canary_pd)).route(canary_finding("stg"), T0)
    assert canary_pd.events == []
    assert routed.decision.outcome == "drop" and "environment stg" in routed.decision.reason
    assert routed.canary is None


def test_without_a_canary_routing_key_the_canary_is_dropped_with_a_reason():
    findings_pd = RecordingNotifier()
    routed = router(None, findings_pd).route(canary_finding(), T0)
    assert findings_pd.events == []
    assert "canary.routing_key_secret" in routed.decision.reason


def test_a_copy_of_a_delivered_run_sends_nothing_and_an_older_run_is_stale():
    canary_pd, log = RecordingNotifier(), InMemoryCanaryLog()
    r = router(probe(log, canary_pd))
    r.route(canary_finding(at=T0), T0)
    newer = T0 + dt.timedelta(minutes=15)
    r.route(canary_finding(at=newer), newer)
    assert r.route(canary_finding(at=newer), newer).canary.outcome == "duplicate"  # type: ignore[union-attr]
    late = r.route(canary_finding(at=T0), newer)  # SQS delivers an old copy late
    assert late.canary is not None and late.canary.outcome == "stale"
    assert len([e for e in canary_pd.events if e["event_action"] == "trigger"]) == 2
    assert log.latest("prod").run_id == canary.iso(newer)  # type: ignore[union-attr]


@pytest.mark.parametrize("crash_after", ["trigger", "resolve"])
def test_a_crash_after_the_service_accepted_a_send_opens_one_incident_and_leaves_none_open(crash_after: str):
    canary_pd, log = CanaryService(), InMemoryCanaryLog()
    canary_pd.crash_after = crash_after
    r = router(probe(log, canary_pd))
    with pytest.raises(Crash):
        r.route(canary_finding(), T0)
    again = r.route(canary_finding(), T0 + dt.timedelta(seconds=720))  # the message comes back
    assert again.canary is not None
    assert again.canary.outcome == ("paged" if crash_after == "trigger" else "duplicate")
    key = incident_key("prod", canary.iso(T0))
    assert canary_pd.incidents == {key: 1}  # the re-sent trigger reached the still-open alert: folded in
    assert canary_pd.open == set()  # and the incident was resolved in the end
    assert log.latest("prod").delivered_at  # type: ignore[union-attr]
    assert r.route(canary_finding(), T0).canary.outcome == "duplicate"  # type: ignore[union-attr]
    assert canary_pd.incidents == {key: 1}


def test_a_look_alike_from_another_account_or_from_the_future_pages_nothing():
    canary_pd, log = CanaryService(), InMemoryCanaryLog()
    policy = CompiledPolicy(load_policy(CONFIG_DIR / "prod.yaml"))
    r = FindingsRouter(
        policy, InMemoryDedupStore(), RecordingNotifier(), canary=probe(log, canary_pd), own_account=ACCOUNT
    )
    member = r.route(canary_finding(account="111122224444"), T0)  # a member account imported one into its product
    assert member.canary is not None and member.canary.outcome == "foreign"
    future = r.route(canary_finding(at=T0 + dt.timedelta(days=1)), T0)  # would make every real run look stale
    assert future.canary is not None and future.canary.outcome == "foreign"
    assert canary_pd.events == [] and log.latest("prod") is None
    assert r.route(canary_finding(), T0).canary.outcome == "paged"  # type: ignore[union-attr]


def test_a_canary_service_outage_fails_the_message_for_a_retry():
    canary_pd = RecordingNotifier()
    canary_pd.fail_with = DeliveryError("HTTP 503", retryable=True, reason="unavailable", status=503)
    log = InMemoryCanaryLog()
    with pytest.raises(DeliveryError):
        router(probe(log, canary_pd)).route(canary_finding(), T0)
    assert not log.latest("prod").delivered_at  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ the last hop


def test_the_webhook_completes_the_run_once_and_pings_the_heartbeat_once():
    beats: list[int] = []
    log = InMemoryCanaryLog()
    clock = Clock(T0 + dt.timedelta(seconds=40))
    p = probe(log, clock=clock, heartbeat=lambda: beats.append(1))
    router(p).route(canary_finding(), T0 + dt.timedelta(seconds=30))
    acks = AckProcessor(InMemoryDedupStore(), None, environment="prod", canary=p)
    key = incident_key("prod", canary.iso(T0))
    first = acks.process(webhook(key, "incident.triggered"), T0 + dt.timedelta(seconds=45))
    again = acks.process(webhook(key, "incident.resolved"), T0 + dt.timedelta(seconds=46))
    assert first.outcome == "canary-completed"
    assert first.canary_hops == {"received": 30.0, "delivered": 10.0, "acknowledged": 5.0, "total": 45.0}
    assert again.outcome == "canary-duplicate" and again.canary_hops is None
    assert beats == [1]


def test_a_webhook_before_the_router_recorded_the_delivery_still_completes_the_run():
    log = InMemoryCanaryLog()
    p = probe(log)
    key = incident_key("prod", canary.iso(T0))

    class WebhookRacesTheWrite(RecordingNotifier):
        def send(self, send, ctx):
            result = super().send(send, ctx)
            if send.kind == "resolve":  # PagerDuty's webhook arrives before the router's `delivered` write
                acks = AckProcessor(InMemoryDedupStore(), None, environment="prod", canary=p)
                assert acks.process(webhook(key, "incident.triggered"), T0 + dt.timedelta(seconds=35)).outcome == (
                    "canary-completed"
                )
            return result

    p.notifier = WebhookRacesTheWrite()
    routed = router(p).route(canary_finding(), T0 + dt.timedelta(seconds=30))
    assert routed.canary is not None and routed.canary.outcome == "paged"
    recorded = log.latest("prod")
    assert recorded is not None and recorded.delivered_at and recorded.acknowledged_at


def test_a_failing_heartbeat_never_fails_the_run():
    def down() -> None:
        raise ConnectionError("heartbeat service down")

    p = probe(completes_on="delivered", heartbeat=down)
    routed = router(p).route(canary_finding(), T0)
    assert routed.canary is not None and routed.canary.completed


def test_webhooks_of_real_incidents_and_of_older_runs_are_not_the_canarys():
    log = InMemoryCanaryLog()
    p = probe(log)
    router(p).route(canary_finding(at=T0 + dt.timedelta(minutes=15)), T0 + dt.timedelta(minutes=15))
    acks = AckProcessor(InMemoryDedupStore(), None, environment="prod", canary=p)
    old = acks.process(webhook(incident_key("prod", canary.iso(T0)), "incident.triggered"), T0)
    assert old.outcome == "canary-stale"
    assert acks.process(webhook("fr1-0123", "incident.acknowledged"), T0).outcome == "not-ours"


def webhook(key: str, event_type: str) -> IncidentEvent:
    return IncidentEvent(
        webhook_id=f"{key}-{event_type}",
        event_type=event_type,
        occurred_at=T0.isoformat(),
        incident_id="Q1CANARY",
        incident_number=1,
        incident_url=None,
        incident_key=key,
        status="triggered",
        title="findings-router canary (prod)",
        agent="Events API V2",
    )


def test_records_are_replaced_not_merged_across_runs():
    log = InMemoryCanaryLog()
    first = CanaryRun("prod", canary.iso(T0)).reached("received", T0)
    assert log.put(first, None)
    second = dataclasses.replace(CanaryRun("prod", canary.iso(T0 + dt.timedelta(minutes=15))), version=first.version)
    assert not log.put(second.reached("received", T0), None)  # a writer that read nothing loses
    assert log.put(second.reached("received", T0), first.version)
    assert log.latest("prod").acknowledged_at == ""  # type: ignore[union-attr]
