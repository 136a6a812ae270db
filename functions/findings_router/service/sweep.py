"""The silence sweep: what a silence held back pages within minutes of the silence ending, not 12-24 h later.

Security Hub re-sends a still-failing control finding only every 12-24 hours, and many findings never again: waiting
for the next copy would leave a problem unpaged long after the silence ended. So a scheduled function (every
`silences.sweep_minutes`, infra/constructs/silence_sweep.py) runs `sweep`:

1. The time index lists the episodes owing a page (adapters/silences.py `OwedIndex`: one Query, no scan), with the
   silence holding each and when it ends.
2. Due are those whose silence has ended or is no longer in effect (expired early, deleted): the others wait.
3. Each due episode is read again (consistently) and re-evaluated by the router (`FindingsRouter.route_owed`) against
   the **current** policy and silences, with the finding as last seen (kept in the episode): still active and still
   paging, it pages (written ahead, sent through the policy's notifiers, confirmed, written back to Security Hub,
   counted for storms like any new page); dropped by the policy now, its owed page is let go; held by another
   silence, it waits for that one.

Each page is logged ("page sent after a silence"), with the silence's id. A delivery that fails leaves the page
recorded (and the episode in the index): the next sweep (or the finding's next copy) sends it; the run fails, so the
function's errors alarm says so. Concurrent sweeps (or a copy routed meanwhile) are safe: every write is conditional,
and a page recorded moments ago by another is left to it (in flight).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from findings_router.adapters.silences import OwedEntry, OwedIndex
from findings_router.notify import DeliveryError
from findings_router.service.route import FindingsRouter, StateConflictError, TriggerInFlightError

logger = logging.getLogger(__name__)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class SweepResult:
    owed: int = 0  # episodes the index lists as owing a page
    due: int = 0  # of them, whose silence has ended or is no longer in effect
    paged: list[str] = field(default_factory=list)  # dedup keys paged (or notified) now
    let_go: list[str] = field(default_factory=list)  # owed pages the policy no longer wants
    held: list[str] = field(default_factory=list)  # held by another silence now
    deferred: list[str] = field(default_factory=list)  # another invocation is sending it
    failed: list[str] = field(default_factory=list)  # delivery (or state) failures: the next sweep tries again

    def summary(self) -> dict[str, int]:
        return {
            "owed": self.owed,
            "due": self.due,
            "paged": len(self.paged),
            "let_go": len(self.let_go),
            "held": len(self.held),
            "deferred": len(self.deferred),
            "failed": len(self.failed),
        }


def due_entries(entries: list[OwedEntry], active_ids: frozenset[str], now: dt.datetime) -> list[OwedEntry]:
    """The owed episodes whose silence has ended (by its planned end), or is no longer in effect (expired early,
    deleted, or not readable as a silence in effect now)."""
    now_iso = _iso(now)
    return [e for e in entries if e.until <= now_iso or e.silenced_by not in active_ids]


def sweep(router: FindingsRouter, index: OwedIndex, now: dt.datetime) -> SweepResult:
    """One sweep (see the module docstring). Raises nothing for one episode's failure: counted in `failed`."""
    result = SweepResult()
    entries = index.owed()
    result.owed = len(entries)
    if not entries:
        return result
    active = router.silences.current(now).active_ids(now) if router.silences is not None else frozenset()
    due = due_entries(entries, active, now)
    result.due = len(due)
    if not due:
        return result
    states = router.store.get_many([e.key for e in due])
    for entry in due:
        state = states.get(entry.key)
        if state is None or not (state.owes or (state.is_open and state.pending)):
            continue  # the index lags the table: delivered, resolved or gone meanwhile
        silence_id = state.silenced_by
        try:
            routed = router.route_owed(state, now)
        except TriggerInFlightError:
            result.deferred.append(entry.key)
            continue
        except (DeliveryError, StateConflictError) as exc:
            result.failed.append(entry.key)
            logger.error(
                "page held back by a silence not delivered; the next sweep tries again",
                extra={"dedup_key": entry.key, "silence_id": silence_id, "error": str(exc)},
            )
            continue
        decision = routed.decision
        if decision.silenced_by is not None:
            result.held.append(entry.key)
        elif decision.outcome == "drop":
            result.let_go.append(entry.key)
            logger.info(
                "page held back by a silence let go",
                extra={"silence_id": silence_id, "dedup_key": entry.key, "reason": decision.reason},
            )
        elif decision.new_state is not None or routed.deliveries:
            # Paged or notified (or grouped into a storm incident: a flood held back pages as a storm).
            result.paged.append(entry.key)
            logger.info(
                "page sent after a silence",
                extra={
                    "silence_id": silence_id,
                    "silence_until": entry.until,
                    "dedup_key": entry.key,
                    "finding_id": routed.finding.id,
                    "decision": decision.outcome,
                    "reason": decision.reason,
                    "deliveries": routed.deliveries,
                },
            )
    return result
