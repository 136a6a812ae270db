"""`route_findings`: policy → dedup decision → delivery → conditional state write, for a batch of findings.

Order per finding: send first, then write state conditionally. A crash between PagerDuty's 202 and the write
makes the message come back; the retry sends the same dedup_key again, which PagerDuty folds into the open alert,
and the write then lands. If the write loses a race (another invocation wrote the key first), the state is read
again and the decision re-made, which turns our finding into a duplicate: both racers may have sent the same
trigger, and PagerDuty's dedup_key makes that one alert, one page.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from findings_router.dedup import Decision, DedupState, Send, decide, dedup_key
from findings_router.model import Finding
from findings_router.pagerduty import DeliveryResult, NotifyContext
from findings_router.policy import CompiledPolicy, PolicyDecision
from findings_router.securityhub import FindingRef, SecurityHubWriteback
from findings_router.store import DedupStore

logger = logging.getLogger(__name__)

MAX_WRITE_CONFLICTS = 3


class Notifier(Protocol):
    def send(self, send: Send, finding: Finding, ctx: NotifyContext) -> DeliveryResult: ...


class StateConflictError(RuntimeError):
    """The same key kept changing under us; the message is retried later."""


@dataclass(frozen=True, slots=True)
class Routed:
    finding: Finding
    policy: PolicyDecision
    decision: Decision
    deliveries: int


class FindingsRouter:
    """Holds the policy, the store and the notifier for one invocation (or one replay)."""

    def __init__(
        self,
        policy: CompiledPolicy,
        store: DedupStore,
        notifier: Notifier,
        writeback: SecurityHubWriteback | None = None,
    ) -> None:
        self.policy = policy
        self.store = store
        self.notifier = notifier
        self.writeback = writeback
        self.writeback_failures = 0
        self._fold = policy.policy.dedup.fold_control_findings
        self._cache: dict[str, DedupState | None] = {}

    def key_for(self, finding: Finding) -> str:
        return dedup_key(finding, self._fold)

    def prefetch(self, findings: Iterable[Finding]) -> None:
        """One batched read (per 100 keys) for every key not already known."""
        keys = [k for k in dict.fromkeys(self.key_for(f) for f in findings) if k not in self._cache]
        if not keys:
            return
        found = self.store.get_many(keys)
        for k in keys:
            self._cache[k] = found.get(k)

    def policy_for(self, finding: Finding, now: dt.datetime) -> PolicyDecision:
        decision = self.policy.evaluate(finding, now)
        mode = self.policy.policy.custom_action
        if finding.custom_action and mode != "policy" and not finding.is_resolved:
            # An operator explicitly asked for this finding to reach on-call.
            return PolicyDecision(mode, "high" if mode == "page" else "low", f"custom action {finding.custom_action}")
        return decision

    def route(self, finding: Finding, now: dt.datetime) -> Routed:
        key = self.key_for(finding)
        policy = self.policy_for(finding, now)
        if key not in self._cache:
            self.prefetch([finding])
        deliveries = 0
        for _ in range(MAX_WRITE_CONFLICTS):
            state = self._cache.get(key)
            decision = decide(finding, policy, state, key, now, self.policy.policy.dedup)
            episode = decision.new_state.episode if decision.new_state else (state.episode if state else 0)
            ctx = NotifyContext(self.policy.environment, key, decision.reason, episode)
            for send in decision.sends:
                self.notifier.send(send, finding, ctx)
                deliveries += 1
            if decision.new_state is None:
                return Routed(finding, policy, decision, deliveries)
            if self.store.put(decision.new_state, decision.expected_version):
                self._cache[key] = decision.new_state
                if decision.outcome in ("page", "notify") and self.writeback is not None:
                    self._write_back(finding, decision)
                return Routed(finding, policy, decision, deliveries)
            self._cache[key] = self.store.get_many([key]).get(key)
        raise StateConflictError(f"state for {key} changed {MAX_WRITE_CONFLICTS} times while routing {finding.id}")

    def _write_back(self, finding: Finding, decision: Decision) -> None:
        """Tell Security Hub who was told: workflow NOTIFIED (pages) and a note naming the incident.

        Best effort: the page already went out, so a failed write-back is logged and counted, never retried
        through SQS (that would only risk a second page)."""
        assert self.writeback is not None
        send = decision.sends[-1]
        kind = "Paged on-call" if decision.outcome == "page" else "Notified on-call (low urgency)"
        note = (
            f"{kind} via PagerDuty ({self.policy.environment}): incident dedup key {send.incident_key}; "
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
