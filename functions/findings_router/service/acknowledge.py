"""Apply a PagerDuty incident event to our state, then carry out what it leaves in the state's outbox.

Shared by the Function URL receiver and the EventBridge (partner event bus) path. Adapters come in: the dedup store,
the Security Hub write-back, the notifier that resolves sibling incidents (the router's own integration), and an
optional lookup of an incident's alert keys for incidents without an `incident_key` (grouped alerts).

The canary's incidents (`findings-router-canary/<env>/<run>`) are not findings: any event about one records the run's
last hop (service/canary.py) and changes nothing else.

Order, so that no note is ever lost and none is written twice:
1. A stale event (a replay: `domain.acks.stale_reason`) changes nothing.
2. The decision (`domain.acks.apply_ack`) and its work, a Security Hub note and the sibling resolves, are written in one
   conditional write: the state change and the outbox entry (keyed by the webhook id) land together or not at all.
3. Every outbox entry of the item is carried out (this event's and any left by an earlier one), and the finished
   ones are cleared (conditional write).
4. If anything is left (Security Hub throttling, a 5xx, AccessDenied, PagerDuty unavailable, or the deadline), the
   event raises `RetryLater`: the receiver answers 5xx, so PagerDuty delivers it again, and the idempotency layer
   does not record a failed run as done. The redelivery's decision is a no-op (the state already changed), and it
   drains the outbox.

Time: every step checks the `Deadline` first. Nothing is committed without `COMMIT_RESERVE` seconds left, and no
outbox entry is started without `ENTRY_RESERVE`; what does not fit stays in the outbox for the redelivery.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from findings_router.adapters.securityhub import TRANSIENT_ERRORS, FindingRef, SecurityHubWriteback
from findings_router.adapters.state_table import DedupStore
from findings_router.domain.acks import AckDecision, IncidentEvent, OutboxEntry, apply_ack, is_finding_key, stale_reason
from findings_router.domain.episodes import DedupState, _iso
from findings_router.domain.keys import base_key
from findings_router.domain.notifications import NotifyContext, resolve
from findings_router.notify import DeliveryError, Notifier
from findings_router.service.canary import CanaryProbe

logger = logging.getLogger(__name__)


MAX_WRITE_CONFLICTS = 3


COMMIT_RESERVE = 1.0  # seconds: a conditional PutItem, with the ack receiver's 1 s read timeout


ENTRY_RESERVE = 1.0  # seconds: start an outbox entry (Events API resolves, a BatchUpdateFindings) only with this left


# incident id → the alert keys (our dedup keys) of its alerts; PagerDuty REST `GET /incidents/{id}/alerts`.
AlertKeyLookup = Callable[[str], list[str]]


class Deadline:
    """When the answer is due. `Deadline(None)` never passes (tests, tools)."""

    def __init__(self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds

    def left(self) -> float:
        return float("inf") if self._end is None else self._end - self._clock()


class RetryLater(Exception):
    """The event is not (fully) carried out yet: answer so that it is delivered again (5xx, or a failed invocation)."""

    def __init__(self, message: str, result: AckResult | None = None) -> None:
        super().__init__(message)
        self.result = result


def refs_for_state(state: DedupState) -> list[FindingRef]:
    """The Security Hub findings behind an episode (several for a control folded across standards, or for a
    vulnerability folded per CVE and account, whose findings may come from several Regions)."""
    ids = state.members or (state.finding_id,)
    return [
        FindingRef(state.finding_format, fid, member_product_arn(state.product_arn, fid), state.account) for fid in ids
    ]


def member_product_arn(product_arn: str, finding_id: str) -> str:
    """The product ARN of one finding of an episode: the episode's, in the Region of the finding when its id is an
    ARN naming another (an Inspector finding of us-east-1 folded with eu-central-1's: Security Hub refuses an
    update whose ProductArn is not the finding's own)."""
    product, member = product_arn.split(":"), finding_id.split(":")
    if len(product) < 6 or len(member) < 6 or product[0] != "arn" or member[0] != "arn" or not member[3]:
        return product_arn
    if product[3] == member[3]:
        return product_arn
    return ":".join([*product[:3], member[3], *product[4:]])


@dataclass(frozen=True)
class AckResult:
    outcome: str  # acknowledged | unacknowledged | resolved | reopened | merged | noted | no-op | not-ours | stale
    reason: str
    dedup_key: str | None = None
    note: str | None = None
    writeback_failed: int = 0  # findings Security Hub refused for good (FindingNotFound, InvalidInput …)
    resolved_siblings: int = 0  # Events API resolves sent
    outbox_written: int = 0  # outbox entries carried out and cleared (this event's and earlier ones)
    outbox_pending: int = 0  # entries left for a redelivery
    canary_hops: dict[str, float] | None = None  # a canary run that completed here: seconds per hop


@dataclass
class _Drain:
    written: int = 0
    pending: int = 0
    failed: int = 0
    resolved: int = 0


class AckProcessor:
    def __init__(
        self,
        store: DedupStore,
        writeback: SecurityHubWriteback | None,
        *,
        resolve_workflow_on_operator_resolve: bool = False,
        alert_keys: AlertKeyLookup | None = None,
        notifier: Notifier | None = None,
        environment: str = "",
        in_scope: Callable[[str], bool] | None = None,
        canary: CanaryProbe | None = None,
    ) -> None:
        self.store = store
        self.canary = canary
        self.writeback = writeback
        self.resolve_workflow = resolve_workflow_on_operator_resolve
        self.alert_keys = alert_keys
        self.notifier = notifier  # resolves sibling incidents through the router's own integration
        self.environment = environment
        # The environment's account scope (Policy.in_scope): items of other accounts (written before `accounts` was
        # narrowed, or by another environment sharing the table) are not ours to touch.
        self.in_scope = in_scope

    def _find_state(self, event: IncidentEvent, lookup: bool = True) -> DedupState | None:
        keys = [event.dedup_key] if event.dedup_key else []
        pagerduty = event.kind == "PagerDuty incident"  # the REST lookup is PagerDuty's; a JSM alert id is not one
        if not keys and lookup and pagerduty and self.alert_keys is not None:  # only when the delivery did not say
            # Incidents with grouped alerts have no incident_key: their alerts' alert_key are our dedup keys.
            keys = [base_key(k) for k in self.alert_keys(event.incident_id) if is_finding_key(k)]
        if not keys:
            return None
        found = self.store.get_many(keys)
        state = next((found[k] for k in keys if k in found), None)
        if state is not None and state.account and self.in_scope is not None and not self.in_scope(state.account):
            return None
        return state

    def process(self, event: IncidentEvent, now: dt.datetime, deadline: Deadline | None = None) -> AckResult:
        """Apply `event`; raises `RetryLater` when work is left for a redelivery."""
        deadline = deadline or Deadline(None)
        canary = self._canary(event, now)
        if canary is not None:
            return canary
        stale = stale_reason(event, now)
        if stale is not None:
            return AckResult("stale", stale, event.dedup_key)
        if not event.acted_on:
            # Nothing to apply, but work left by an earlier event of the key is still carried out.
            state = self._find_state(event, lookup=False)
            drained = self._drain(state, deadline) if state is not None else _Drain()
            return self._finish(AckResult("no-op", f"{event.event_type} is not acted on", event.dedup_key), drained)
        state = self._find_state(event)
        if state is None:
            return AckResult("not-ours", f"incident {event.incident_id} has no findings-router dedup key here")
        decision: AckDecision | None = None
        for _ in range(MAX_WRITE_CONFLICTS):
            decision = apply_ack(state, event, _iso(now), self.resolve_workflow, notes=self.writeback is not None)
            if decision.new_state is None:
                break
            if deadline.left() < COMMIT_RESERVE:
                raise RetryLater(f"{deadline.left():.1f} s left: too little to record {event.event_type}")
            if self.store.put(decision.new_state, state.version):
                state = decision.new_state
                break
            reread = self.store.get_many([state.key]).get(state.key)
            if reread is None:
                return AckResult("not-ours", "state disappeared", state.key)
            state = reread
        else:
            raise RetryLater(f"state for {state.key} kept changing while applying {event.event_type}")
        assert decision is not None
        result = AckResult(decision.outcome, decision.reason, state.key, decision.note)
        return self._finish(result, self._drain(state, deadline))

    def _canary(self, event: IncidentEvent, now: dt.datetime) -> AckResult | None:
        """The run's last hop, when `event` is about one of this environment's canary incidents."""
        seen = self.canary.acknowledge(event.incident_key, now) if self.canary is not None else None
        if seen is None:
            return None
        hops = seen.hops if seen.completed else None
        return AckResult(f"canary-{seen.outcome}", seen.reason, event.incident_key, canary_hops=hops)

    @staticmethod
    def _finish(result: AckResult, drained: _Drain) -> AckResult:
        result = dataclasses.replace(
            result,
            writeback_failed=drained.failed,
            resolved_siblings=drained.resolved,
            outbox_written=drained.written,
            outbox_pending=drained.pending,
        )
        if drained.pending:
            raise RetryLater(f"{drained.pending} outbox entr{'y' if drained.pending == 1 else 'ies'} left", result)
        return result

    # ------------------------------------------------------------------------------------------ outbox

    def _drain(self, state: DedupState, deadline: Deadline) -> _Drain:
        """Carry out the outbox entries of `state`, then clear the finished ones."""
        drained = _Drain()
        finished: list[str] = []
        for raw in state.outbox:
            entry = OutboxEntry.from_json(raw)
            if entry is None:
                logger.warning("unreadable outbox entry dropped", extra={"dedup_key": state.key, "entry": raw[:200]})
                finished.append(raw)
                continue
            if deadline.left() < ENTRY_RESERVE:
                drained.pending += 1
                continue
            if self._carry_out(state, entry, drained) == "retry":
                drained.pending += 1
            else:
                finished.append(raw)
                drained.written += 1
        if finished:
            self._clear(state, finished)
        return drained

    def _carry_out(self, state: DedupState, entry: OutboxEntry, drained: _Drain) -> Literal["done", "retry"]:
        """Resolves first, the note last: a retry may resolve or write the note again (harmless: the same note);
        nothing is lost."""
        for key in entry.resolve:
            if self.notifier is None:
                logger.warning("no notifier: sibling incident left open", extra={"incident_key": key})
                continue
            try:
                context = NotifyContext(self.environment, dedup_key=base_key(key), targets=state.targets)
                self.notifier.send(resolve(key), context)
            except DeliveryError as exc:
                if not exc.retryable:  # the service refused it (a 400): sending it again cannot help
                    logger.warning("sibling resolve rejected", extra={"incident_key": key, "error": str(exc)})
                    continue
                logger.warning(
                    "sibling resolve failed; kept in the outbox", extra={"incident_key": key, "error": str(exc)}
                )
                return "retry"
            except Exception as exc:  # the routing key's secret unreadable (AccessDenied until granted) …
                logger.warning(
                    "sibling resolve failed; kept in the outbox",
                    extra={"incident_key": key, "error": f"{type(exc).__name__}: {exc}"},
                )
                return "retry"
            drained.resolved += 1
        if entry.note is None or self.writeback is None:
            return "done"
        try:
            written = self.writeback.update(refs_for_state(state), entry.note, entry.workflow)
        except Exception as exc:  # throttled past retries, 5xx, timeouts, AccessDenied: all worth a redelivery
            logger.warning(
                "security hub write-back failed; kept in the outbox",
                extra={"dedup_key": state.key, "entry": entry.id, "error": f"{type(exc).__name__}: {exc}"},
            )
            return "retry"
        transient = [ref for ref, code in written.failed if code in TRANSIENT_ERRORS]
        if transient:
            return "retry"  # the whole update again: a note written twice on a finding is the same note
        drained.failed += len(written.failed)  # FindingNotFound, InvalidInput …: retrying cannot help
        return "done"

    def _clear(self, state: DedupState, finished: list[str]) -> None:
        """Remove `finished` from the item's outbox, whatever else changed meanwhile."""
        current: DedupState | None = state
        for _ in range(MAX_WRITE_CONFLICTS):
            if current is None:
                return
            left = tuple(raw for raw in current.outbox if raw not in finished)
            if left == current.outbox:
                return
            if self.store.put(dataclasses.replace(current, outbox=left, version=current.version + 1), current.version):
                return
            current = self.store.get_many([state.key]).get(state.key)
        # Left in place, the entries are carried out again by the next event: a note written twice, never lost.
        logger.warning("outbox not cleared: the item kept changing", extra={"dedup_key": state.key})
