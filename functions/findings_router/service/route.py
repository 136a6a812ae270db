"""`route_findings`: scope → policy → dedup decision → delivery → conditional state writes, for a batch of findings.

The canary first (service/canary.py): this environment's synthetic finding pages the canary's own service and never
meets the policy; another environment's canary is dropped. Then scope: a finding of an account outside the
environment's `accounts`, or a custom action event of another tool's action, changes nothing at all.

Order per finding that pages: record the trigger (`pending`, conditional write), send it, then confirm it
(conditional write). A crash between PagerDuty's 202 and the confirmation leaves the trigger recorded: the message's
retry (or the finding's next copy) sends the same dedup_key again, which PagerDuty folds into the open alert, and a
resolution arriving meanwhile resolves it. If the confirmation finds the item changed (an acknowledgement, a racing
copy, a resolution), it is re-read: our trigger is cleared from what the item holds now, or, when the episode
ended meanwhile, resolved again. Resolves and duplicates are written after sending (sending them twice is harmless).
If a write loses a race, the state is read again and the decision re-made: both racers may have sent the same
trigger, and PagerDuty's dedup_key makes that one alert, one page.

Silences (domain/silences.py) come between the decision and the send: when a decision would send a trigger (or the
episode owes one), the silences in effect are consulted (read once per container every half minute:
adapters/silences.py); a matching active one holds the trigger back, recorded as owed in the episode, and nothing is
sent, counted as a storm or written back ("silence applied" is logged with its id). `route_owed` is the sweep's way
in (service/sweep.py): the same decision, write-ahead, send, confirm and write-back for an episode whose silence has
ended.

Shadow (`mode: shadow`, rules with `shadow: true`): a second router over the same table, its keys in the shadow
namespace (`fr1-shadow-…`), the policy's shadow view, a notifier that sends nothing, no storms, silences or
write-back, decides every in-scope finding too and logs it ("shadow decision", `shadow: true`); it never fails the
live path. With `mode: shadow` the live decision is always a drop: nothing is recorded live and nothing is sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from findings_router.adapters.securityhub import FindingRef, SecurityHubWriteback
from findings_router.adapters.state_table import DedupStore
from findings_router.adapters.storm_counter import StormCounter
from findings_router.domain import canary
from findings_router.domain.episodes import (
    Decision,
    DedupState,
    decide,
    decide_owed,
    dropped_unseen,
    folded_resources,
    repeat_decision,
)
from findings_router.domain.keys import dedup_key, folded_vulnerability, shadow_key
from findings_router.domain.model import Finding, FindingFormat
from findings_router.domain.notifications import Notification, NotifyContext, resolve
from findings_router.domain.policy import CompiledPolicy, PolicyDecision
from findings_router.domain.silences import Silence, finding_from_snapshot
from findings_router.domain.storm import StormCount, apply_storm, storm_slot, verdict
from findings_router.notify import DeliveryError, DeliveryResult, Notifier
from findings_router.service.canary import CanaryOutcome, CanaryProbe

if TYPE_CHECKING:
    from findings_router.adapters.silences import SilenceSource

logger = logging.getLogger(__name__)


MAX_WRITE_CONFLICTS = 3


class StateConflictError(RuntimeError):
    """The same key kept changing under us; the message is retried later."""


class TriggerInFlightError(RuntimeError):
    """Another invocation recorded this key's trigger moments ago and may still be sending it; retry later."""


@dataclass(frozen=True, slots=True)
class Routed:
    finding: Finding
    policy: PolicyDecision
    decision: Decision
    deliveries: int
    canary: CanaryOutcome | None = None  # this environment's canary: what its run did (never a policy decision)
    silenced: Silence | None = None  # the silence that held this decision's trigger back (or holds the episode)
    shadow: Routed | None = None  # the shadow decision made beside this one (mode shadow, rules with shadow: true)


Namespace = Literal["live", "shadow"]


class ShadowNotifier:
    """Sends nothing: the shadow router's notifier. Counts what it was asked to send."""

    channel = "shadow (nothing sent)"

    def __init__(self) -> None:
        self.count = 0

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        del context
        self.count += 1
        return DeliveryResult(200, 0, notification.key)


class FindingsRouter:
    """Holds the policy, the store and the notifier for one invocation (or one replay).

    `silences`: the silences in effect (None: none are applied). `shadow`: the router of the shadow decisions
    (`shadow_router`), run beside this one for every in-scope finding. `namespace` "shadow": this router is one."""

    def __init__(
        self,
        policy: CompiledPolicy,
        store: DedupStore,
        notifier: Notifier,
        writeback: SecurityHubWriteback | None = None,
        storms: StormCounter | None = None,
        canary: CanaryProbe | None = None,
        own_account: str | None = None,
        *,
        silences: SilenceSource | None = None,
        shadow: FindingsRouter | None = None,
        namespace: Namespace = "live",
    ) -> None:
        self.policy = policy
        self.canary = canary
        self.own_account = own_account  # the account the router runs in (its Lambda ARN's), when known
        self.store = store
        self.notifier = notifier
        self.writeback = writeback
        self.storms = storms if policy.policy.storm.enabled else None
        self.silences = silences
        self.shadow = shadow
        self.namespace: Namespace = namespace
        self.writeback_failures = 0
        self._fold = policy.policy.dedup.fold_control_findings
        self._fold_vulnerabilities = policy.policy.dedup.fold_vulnerabilities
        self._cache: dict[str, DedupState | None] = {}
        # The keys `prefetch` computed for in-scope findings (not canaries), by finding, until `route` takes them: the
        # finding is kept with its key, so an id is never another finding's.
        self._prefetched: dict[int, tuple[Finding, str]] = {}
        self._applied: dict[str, Silence] = {}  # silences that held something back in this invocation, by id

    def key_for(self, finding: Finding) -> str:
        key = dedup_key(finding, self._fold, self._fold_vulnerabilities)
        return shadow_key(key) if self.namespace == "shadow" else key

    def folded_vulnerability(self, finding: Finding) -> str | None:
        """The vulnerability id `finding`'s key folds on (dedup.fold_vulnerabilities), or None."""
        return folded_vulnerability(finding, self._fold_vulnerabilities)

    def context(
        self,
        finding: Finding,
        key: str,
        reason: str,
        state: DedupState | None,
        targets: tuple[str, ...],
        vulnerability: str | None,
    ) -> NotifyContext:
        """What the notifications of a decision are about: the finding, its episode (`state`, as recorded), and for a
        folded vulnerability key the episode's affected resources as known now."""
        env = self.policy.environment
        episode = state.episode if state else 0
        folded = None
        mode = self._fold_vulnerabilities
        if vulnerability is not None and state is not None and mode != "off":
            folded = folded_resources(state, vulnerability, mode, env)
        return NotifyContext(env, finding, key, reason, episode, targets, folded)

    @property
    def live_decisions(self) -> bool:
        """Whether this router records and sends anything (not with `mode: shadow`, whose decisions are all shadow)."""
        return self.namespace == "shadow" or self.policy.policy.mode == "live"

    def prefetch(self, findings: Iterable[Finding]) -> None:
        """One batched read (per 100 keys) for every key not already known (out-of-scope findings are never read)."""
        findings = list(findings)
        self._prefetch_shadow(findings)
        if not self.live_decisions:
            return
        out_of_scope = self.policy.out_of_scope
        prefetched: dict[int, tuple[Finding, str]] = {}
        for f in findings:
            if out_of_scope(f) is None and canary.sighting(f) is None:
                prefetched[id(f)] = (f, self.key_for(f))
        self._prefetched = prefetched  # one batch's at a time: a router routes what it prefetched
        self._fetch(dict.fromkeys(key for _, key in prefetched.values()))

    def _prefetch_shadow(self, findings: list[Finding]) -> None:
        if self.shadow is not None:
            try:
                self.shadow.prefetch(findings)
            except Exception as exc:  # the shadow never fails the live path
                logger.warning("shadow state read failed", extra={"shadow": True, "error": str(exc)})

    def _fetch(self, keys: Iterable[str]) -> None:
        """Read the states of `keys` not already known (one batched read per 100 keys)."""
        keys = [k for k in keys if k not in self._cache]
        if not keys:
            return
        found = self.store.get_many(keys)
        for k in keys:
            self._cache[k] = found.get(k)

    def route(self, finding: Finding, now: dt.datetime) -> Routed:
        known = self._prefetched.pop(id(finding), None)
        if known is not None and known[0] is finding:  # prefetched: in scope, not a canary, and its key known
            key = known[1]
        else:
            seen = canary.sighting(finding)
            if seen is not None:
                return self._route_canary(finding, seen, now)
            key = self.key_for(finding)
            foreign = self.policy.out_of_scope(finding)
            if foreign is not None:
                return Routed(finding, PolicyDecision("drop", "low", foreign), Decision("drop", foreign, key), 0)
        if self.shadow is None:
            return self._route_key(finding, key, now)
        try:
            routed = self._route_key(finding, key, now)
        except BaseException:
            self._route_shadow(finding, now)  # the live path failed (it is retried); the shadow decides regardless
            raise
        shadow = self._route_shadow(finding, now)
        return dataclasses.replace(routed, shadow=shadow) if shadow is not None else routed

    def _route_key(self, finding: Finding, key: str, now: dt.datetime) -> Routed:
        policy = self.policy.decision_for(finding, now)
        if not self.live_decisions:
            reason = (
                f"mode shadow: nothing is recorded or sent live (the shadow decision: {policy.action}, {policy.reason})"
            )
            return Routed(finding, policy, Decision("drop", reason, key), 0)
        if key not in self._cache:  # not prefetched: read it now (and the shadow's, as `prefetch` would)
            self._prefetch_shadow([finding])
            self._fetch([key])
        state = self._cache[key]
        vulnerability = self.folded_vulnerability(finding)
        # The fast paths (most of the traffic): a copy the stored episode already reflects, and a finding the policy
        # drops with nothing stored, which decide() would make a duplicate or a drop that writes, sends, asks
        # silences and counts storms for nothing.
        quick = dropped_unseen(finding, policy, state, key)
        if quick is None and vulnerability is None:
            quick = repeat_decision(finding, state, key, now)
        if quick is not None:
            return Routed(finding, policy, quick, 0)
        folded = vulnerability is not None
        return self._run(
            finding,
            key,
            policy,
            now,
            lambda state, storm: self._decide(finding, policy, state, key, now, storm, folded),
            vulnerability,
        )

    def route_owed(self, state: DedupState, now: dt.datetime) -> Routed:
        """The sweep (service/sweep.py): an episode listed as owing a page a silence held back, re-evaluated against
        the current policy with the finding as last seen (kept in the episode), and delivered like any trigger when
        no silence holds it now and the policy still pages or notifies it."""
        finding = _held_finding(state)
        key = state.key
        foreign = self.policy.out_of_scope(finding)
        policy = PolicyDecision("drop", "low", foreign) if foreign else self.policy.decision_for(finding, now)
        self._cache[key] = state
        cfg = self.policy.policy

        def decide_now(current: DedupState | None, storm: StormCount | None) -> tuple[Decision, StormCount | None]:
            if current is None:
                return Decision("duplicate", "nothing owed: the episode is gone", key), storm
            silence = self._silence(finding, now)
            timeout = cfg.function.timeout_seconds
            decision = decide_owed(finding, policy, current, now, cfg.dedup, timeout, silence=silence)
            return self._with_storm(finding, key, now, decision, storm)

        return self._run(finding, key, policy, now, decide_now, self.folded_vulnerability(finding))

    def _run(
        self,
        finding: Finding,
        key: str,
        policy: PolicyDecision,
        now: dt.datetime,
        decide_now: Callable[[DedupState | None, StormCount | None], tuple[Decision, StormCount | None]],
        vulnerability: str | None,
    ) -> Routed:
        """Decide, write ahead, send, confirm: the one path every trigger takes (routing and the sweep).
        `vulnerability`: the one `finding`'s key folds on, if any (`folded_vulnerability`)."""
        deliveries = 0
        storm: StormCount | None = None
        for _ in range(MAX_WRITE_CONFLICTS):
            state = self._cache.get(key)
            decision, storm = decide_now(state, storm)
            if decision.in_flight:
                raise TriggerInFlightError(f"{finding.id}: {decision.reason}")
            if not self._record_ahead(decision, key):
                continue
            pending = decision.pending_state  # recorded ahead by now: later writes expect its version
            expected = pending.version if pending is not None else decision.expected_version
            ctx: NotifyContext | None = None
            if decision.notifications or decision.pending_state is not None:  # what is sent (or confirmed) needs it
                recorded = decision.new_state or state
                # An open episode's escalations and resolve go to its targets (an escalation adds its rule's).
                targets = recorded.targets if recorded else policy.notify
                ctx = self.context(finding, key, decision.reason, recorded, targets, vulnerability)
                deliveries += self._send(decision, ctx)
            held = self._held(decision)
            if decision.new_state is None:
                return Routed(finding, policy, decision, deliveries, silenced=held)
            if self.store.put(decision.new_state, expected):
                self._cache[key] = decision.new_state
                self._after_recorded(finding, decision, storm)
                return Routed(finding, policy, decision, deliveries, silenced=held)
            if decision.pending_state is not None:
                assert ctx is not None
                decision, sent = self._confirm(finding, decision, ctx)
                return Routed(finding, policy, decision, deliveries + sent)
            self._cache[key] = self.store.get_many([key]).get(key)
        raise StateConflictError(f"state for {key} changed {MAX_WRITE_CONFLICTS} times while routing {finding.id}")

    def _route_shadow(self, finding: Finding, now: dt.datetime) -> Routed | None:
        """The shadow decision for `finding`, logged with `shadow: true`; never raises (the live path goes on)."""
        assert self.shadow is not None
        try:
            routed = self.shadow.route(finding, now)
        except Exception as exc:
            logger.warning(
                "shadow decision failed",
                extra={"shadow": True, "finding_id": finding.id, "error": str(exc), "error_type": type(exc).__name__},
            )
            return None
        decision = routed.decision
        log = logger.debug if decision.outcome == "duplicate" else logger.info
        log(
            "shadow decision",
            extra={
                "shadow": True,
                "finding_id": finding.id,
                "dedup_key": decision.key,
                "decision": decision.outcome,
                "reason": decision.reason,
                "rule": routed.policy.rule,
                "severity": finding.severity.value,
                "account": finding.account,
            },
        )
        return routed

    def _silence(self, finding: Finding, now: dt.datetime) -> Silence | None:
        if self.silences is None:
            return None
        silence = self.silences.current(now).matching(finding, now)
        if silence is not None:
            self._applied[silence.id] = silence
        return silence

    def _held(self, decision: Decision) -> Silence | None:
        """The silence that held `decision`'s trigger back (or holds its episode)."""
        return None if decision.silenced_by is None else self._applied.get(decision.silenced_by)

    def _route_canary(self, finding: Finding, seen: canary.CanarySighting, now: dt.datetime) -> Routed:
        key = canary.incident_key(seen.environment, seen.run_id)
        env = self.policy.environment
        if seen.environment != env:
            reason = f"the canary of environment {seen.environment}, not {env}"
            return Routed(finding, PolicyDecision("drop", "low", reason), Decision("drop", reason, key), 0)
        if self.canary is None:
            reason = (
                "a canary of this environment, but the router has no canary routing key (canary.routing_key_secret)"
            )
            return Routed(finding, PolicyDecision("drop", "low", reason), Decision("drop", reason, key), 0)
        outcome = self.canary.page(finding, seen, now, own_account=self.own_account)
        reason = f"canary run {seen.run_id}: {outcome.reason}"
        sent = 2 if outcome.outcome in ("paged", "completed") else 0
        return Routed(finding, PolicyDecision("drop", "low", reason), Decision("drop", reason, key), sent, outcome)

    def _decide(
        self,
        finding: Finding,
        policy: PolicyDecision,
        state: DedupState | None,
        key: str,
        now: dt.datetime,
        storm: StormCount | None,
        folded: bool = False,
    ) -> tuple[Decision, StormCount | None]:
        """The dedup decision, with what a silence holds back (asked only when a trigger would be sent or the episode
        owes one: most decisions send nothing), made a storm's when it opens an episode of a storm; and the storm
        count, counted on the first attempt that needs it (`storm`: the count of an earlier attempt, if any).
        `folded`: the key is a folded vulnerability key, which `decide` must know (many findings share it)."""
        cfg = self.policy.policy
        timeout = cfg.function.timeout_seconds
        decision = decide(finding, policy, state, key, now, cfg.dedup, timeout, folded=folded)
        triggers = any(n.kind == "trigger" for n in decision.notifications)
        if self.silences is not None and (triggers or (state is not None and state.owes)):
            silence = self._silence(finding, now)
            if silence is not None:
                decision = decide(finding, policy, state, key, now, cfg.dedup, timeout, folded=folded, silence=silence)
        return self._with_storm(finding, key, now, decision, storm)

    def _with_storm(
        self, finding: Finding, key: str, now: dt.datetime, decision: Decision, storm: StormCount | None
    ) -> tuple[Decision, StormCount | None]:
        """A decision opening an episode, counted for its group's storm (silenced ones open nothing: not counted)."""
        cfg = self.policy.policy
        if self.storms is None or not decision.opens_episode:
            return decision, storm
        if storm is None:  # count once, even if the write has to be retried
            storm = self._count_storm(finding, key, now)
        return apply_storm(decision, storm, cfg.storm, self.policy.environment, cfg.monitoring.meta_alerts), storm

    def _record_ahead(self, decision: Decision, key: str) -> bool:
        """Write ahead: record the trigger before sending it, so that whatever happens after PagerDuty accepted it (a
        crash, a timeout, a resolution racing in) is seen by the next copy. False: the item changed (it is read
        again, for the decision to be made again)."""
        if decision.pending_state is None:
            return True
        if not self.store.put(decision.pending_state, decision.expected_version):
            self._cache[key] = self.store.get_many([key]).get(key)
            return False
        self._cache[key] = decision.pending_state
        return True

    def _send(self, decision: Decision, ctx: NotifyContext) -> int:
        """Send the decision's notifications; how many were sent. A failed delivery releases the recorded trigger."""
        sent = 0
        try:
            for notification in decision.notifications:
                self.notifier.send(notification, ctx)
                sent += 1
        except DeliveryError:
            if decision.pending_state is not None:
                self._release(decision.pending_state)
            raise
        return sent

    def _release(self, recorded: DedupState) -> None:
        """Delivery failed: the trigger stays recorded, but no longer "in flight", so the message's retry (or any
        copy) delivers it at once. Best effort: if this write fails, the retry waits out the in-flight window."""
        released = dataclasses.replace(recorded, pending_since=None, version=recorded.version + 1)
        try:
            if self.store.put(released, recorded.version):
                self._cache[recorded.key] = released
        except Exception as exc:  # the delivery error is what the caller must see
            logger.warning("could not release a recorded trigger", extra={"key": recorded.key, "error": str(exc)})

    def _after_recorded(self, finding: Finding, decision: Decision, storm: StormCount | None) -> None:
        if decision.silenced_by is not None and decision.new_state is not None:
            state = decision.new_state
            logger.info(
                "silence applied",
                extra={
                    "silence_id": decision.silenced_by,
                    "until": state.silenced_until,
                    "finding_id": finding.id,
                    "dedup_key": decision.key,
                    "owed": list(state.silenced),
                    "reason": decision.reason,
                },
            )
        if storm is not None and storm.kind == "open" and decision.notifications and self.storms is not None:
            # Delivered and recorded: from now on the group's new problems fold into this incident.
            self.storms.mark_opened(decision.notifications[0].key)
        if decision.outcome in ("page", "notify") and self.writeback is not None and not finding.is_resolved:
            self._write_back(finding, decision)

    def _confirm(self, finding: Finding, decision: Decision, ctx: NotifyContext) -> tuple[Decision, int]:
        """Our triggers were accepted, but the item changed since the write-ahead (an acknowledgement, a resolution,
        a racing copy): clear them from `pending` in whatever the item holds now, or resolve them again if the
        episode ended meanwhile (its resolve may have reached PagerDuty before our trigger)."""
        assert decision.pending_state is not None
        ours = decision.pending_state.pending
        key = decision.key
        for _ in range(MAX_WRITE_CONFLICTS):
            current = self.store.get_many([key]).get(key)
            self._cache[key] = current
            if current is None or not current.is_open or current.episode != decision.pending_state.episode:
                for ik in ours:  # `pending` never holds shared (storm) incidents
                    self.notifier.send(resolve(ik, decision.pending_state.severity), ctx)
                reason = f"{decision.reason}; the episode ended while the page was sent, so it was resolved again"
                return dataclasses.replace(decision, outcome="resolve", reason=reason), len(ours)
            left = tuple(k for k in current.pending if k not in ours)
            if left == current.pending:
                return decision, 0  # another copy confirmed them already
            confirmed = dataclasses.replace(current, pending=left, version=current.version + 1)
            if self.store.put(confirmed, current.version):
                self._cache[key] = confirmed
                if self.writeback is not None and decision.outcome in ("page", "notify"):
                    self._write_back(finding, decision)
                return decision, 0
        raise StateConflictError(f"state for {key} kept changing while confirming a page of {finding.id}")

    def _count_storm(self, finding: Finding, key: str, now: dt.datetime) -> StormCount:
        """Count this new problem for its group and window (one shared write) and say what it means."""
        assert self.storms is not None
        cfg = self.policy.policy.storm
        slot = storm_slot(finding, cfg, now)
        count, samples, opened = self.storms.increment(
            slot.key, key, finding.primary_resource_id, cfg.threshold, cfg.sample_size, slot.expires_at
        )
        return StormCount(verdict(count, cfg.threshold, opened), count, samples, slot.key, slot.label)

    def _write_back(self, finding: Finding, decision: Decision) -> None:
        """Tell Security Hub who was told: workflow NOTIFIED (pages) and a note naming the incident.

        Best effort: the page already went out, so a failed write-back is logged and counted, never retried
        through SQS (that would only risk a second page)."""
        assert self.writeback is not None
        send = decision.notifications[0]
        kind = "Paged on-call" if decision.outcome == "page" else "Notified on-call (low urgency)"
        targets = decision.new_state.targets if decision.new_state else ()
        describe = getattr(self.notifier, "describe", None)
        channel = describe(targets) if describe is not None else self.notifier.channel
        note = (
            f"{kind} via {channel} ({self.policy.environment}): incident dedup key {send.key}; "
            f"{decision.reason}. findings-router"
        )
        ref = FindingRef(finding.format.value, finding.id, finding.product_arn, finding.account)
        try:
            result = self.writeback.update([ref], note, "NOTIFIED" if decision.outcome == "page" else None)
        except Exception as exc:
            logger.warning("security hub write-back failed", extra={"finding_id": finding.id, "error": str(exc)})
            self.writeback_failures += 1
            return
        self.writeback_failures += len(result.failed)


def route_findings(router: FindingsRouter, findings: list[Finding], now: dt.datetime) -> list[Routed]:
    """Route a list of findings with one batched state read. Delivery errors propagate to the caller."""
    router.prefetch(findings)
    return [router.route(f, now) for f in findings]


def _held_finding(state: DedupState) -> Finding:
    """The finding a silenced episode kept (its last known facts), else the little the state itself says."""
    if state.silenced_finding:
        return finding_from_snapshot(state.silenced_finding)
    return Finding(
        format=FindingFormat(state.finding_format),
        id=state.finding_id,
        product_arn=state.product_arn,
        product_name="",
        company_name="",
        generator_id="",
        control_id=None,
        account=state.account,
        region="",
        title=state.title,
        description="",
        severity=state.severity,
        severity_score=0.0,
        types=(),
        resources=(),
        cve_ids=(),
        max_cvss=None,
        workflow_status=None,
        record_state="ACTIVE",
        compliance_status=None,
        first_observed_at=None,
        last_observed_at=None,
        updated_at=state.observed_at,
        source_url=None,
        remediation_text=None,
        remediation_url=None,
    )


def shadow_router(policy: CompiledPolicy, store: DedupStore, *, notifier: Notifier | None = None) -> FindingsRouter:
    """The router of the shadow decisions: the policy's shadow view, keys in the shadow namespace, nothing sent."""
    view = policy if policy.shadow else CompiledPolicy(policy.policy, shadow=True)
    return FindingsRouter(view, store, notifier or ShadowNotifier(), namespace="shadow")
