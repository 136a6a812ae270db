"""Apply a PagerDuty incident event to our state and write it back to Security Hub.

Shared by the Function URL receiver and the EventBridge (partner event bus) path. Adapters come in:
the dedup store, the Security Hub write-back, and an optional lookup of an incident's alert keys for incidents
without an `incident_key` (grouped alerts).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from findings_router.ack import AckDecision, IncidentEvent, apply_ack
from findings_router.dedup import KEY_PREFIX, DedupState, _iso, base_key
from findings_router.securityhub import FindingRef, SecurityHubWriteback
from findings_router.store import DedupStore

logger = logging.getLogger(__name__)
MAX_WRITE_CONFLICTS = 3

# incident id → the alert keys (our dedup keys) of its alerts; PagerDuty REST `GET /incidents/{id}/alerts`.
AlertKeyLookup = Callable[[str], list[str]]


def refs_for_state(state: DedupState) -> list[FindingRef]:
    """The Security Hub findings behind an episode (several for a control folded across standards)."""
    ids = state.members or (state.finding_id,)
    return [FindingRef(state.finding_format, fid, state.product_arn, state.account) for fid in ids]


@dataclass(frozen=True)
class AckResult:
    outcome: str  # acknowledged | unacknowledged | resolved | reopened | noted | no-op | not-ours
    reason: str
    dedup_key: str | None = None
    note: str | None = None
    writeback_failed: int = 0


class AckProcessor:
    def __init__(
        self,
        store: DedupStore,
        writeback: SecurityHubWriteback | None,
        *,
        resolve_workflow_on_operator_resolve: bool = False,
        alert_keys: AlertKeyLookup | None = None,
    ) -> None:
        self.store = store
        self.writeback = writeback
        self.resolve_workflow = resolve_workflow_on_operator_resolve
        self.alert_keys = alert_keys

    def _find_state(self, event: IncidentEvent) -> DedupState | None:
        keys = [event.dedup_key] if event.dedup_key else []
        if not keys and self.alert_keys is not None:  # a REST lookup, only when the delivery did not say
            # Incidents with grouped alerts have no incident_key: their alerts' alert_key are our dedup keys.
            keys = [base_key(k) for k in self.alert_keys(event.incident_id) if k.startswith(KEY_PREFIX)]
        if not keys:
            return None
        found = self.store.get_many(keys)
        return next((found[k] for k in keys if k in found), None)

    def process(self, event: IncidentEvent, now: dt.datetime) -> AckResult:
        if not event.acted_on:
            return AckResult("no-op", f"{event.event_type} is not acted on")
        now_iso = _iso(now)
        state = self._find_state(event)
        if state is None:
            return AckResult("not-ours", f"incident {event.incident_id} has no findings-router dedup key here")
        decision: AckDecision | None = None
        for _ in range(MAX_WRITE_CONFLICTS):
            decision = apply_ack(state, event, now_iso, self.resolve_workflow)
            if decision.new_state is None or self.store.put(decision.new_state, state.version):
                break
            reread = self.store.get_many([state.key]).get(state.key)
            if reread is None:
                return AckResult("not-ours", "state disappeared", state.key)
            state = reread
        else:
            raise RuntimeError(f"state for {state.key} kept changing while applying {event.event_type}")
        assert decision is not None
        failed = 0
        if decision.note and self.writeback is not None:
            result = self.writeback.update(
                refs_for_state(state), decision.note, "RESOLVED" if decision.workflow_resolved else None
            )
            failed = len(result.failed)
        return AckResult(decision.outcome, decision.reason, state.key, decision.note, failed)
