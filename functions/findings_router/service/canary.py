"""The canary's hops, recorded as they happen: the router pages the canary's own service (`CanaryProbe.page`), the ack
receiver sees that service's webhook (`CanaryProbe.acknowledge`). See findings_router.domain.canary.

Every event can come twice, late or out of order, and a process can die between any two lines:
* `received` is written before the page is sent, `delivered` after: a copy arriving after a crash finds the run
  received but not delivered and sends the same incident key again, which PagerDuty folds into one incident;
* a copy of a run already delivered sends nothing; an older run than the one recorded is stale and sends nothing;
* the webhook may arrive before the router recorded `delivered`: both writes are conditional on the version read and
  merge into the record they find.

The run completes at its last hop: `acknowledged` when the environment has an ack receiver, else `delivered`. On
completion the heartbeat URL, if any, is requested (best effort) and the caller publishes the metrics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from findings_router.adapters.canary_log import CanaryLog
from findings_router.domain.canary import CanaryRun, CanarySighting, incident_key, incident_run
from findings_router.domain.model import Finding, Severity
from findings_router.domain.notifications import Notification, NotifyContext, resolve
from findings_router.notify import Notifier

logger = logging.getLogger(__name__)

MAX_WRITE_CONFLICTS = 3

Heartbeat = Callable[[], None]


@dataclass(frozen=True, slots=True)
class CanaryOutcome:
    outcome: str  # paged | duplicate | stale | completed | not-configured
    reason: str
    run: CanaryRun | None = None
    completed: bool = False

    @property
    def hops(self) -> dict[str, float]:
        return self.run.hop_seconds() if self.run is not None else {}


class CanaryProbe:
    def __init__(
        self,
        environment: str,
        log: CanaryLog,
        *,
        notifier: Notifier | None,
        completes_on: str,
        clock: Callable[[], dt.datetime],
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.environment = environment
        self.log = log
        self.notifier = notifier  # the canary's own service; None: the policy names no canary routing key
        self.completes_on = completes_on  # "delivered" or "acknowledged"
        self.clock = clock
        self.heartbeat = heartbeat

    @classmethod
    def dry_run(cls, environment: str, clock: Callable[[], dt.datetime]) -> CanaryProbe:
        """For replay: canary findings are recognized and "paged" to a recording twin, nothing is stored or sent."""
        from findings_router.adapters.canary_log import InMemoryCanaryLog
        from findings_router.notify.recording import RecordingNotifier

        return cls(
            environment, InMemoryCanaryLog(), notifier=RecordingNotifier(), completes_on="delivered", clock=clock
        )

    # ------------------------------------------------------------------------------------------ router side

    def page(self, finding: Finding, seen: CanarySighting, received_at: dt.datetime) -> CanaryOutcome:
        """Page the canary's service about run `seen` (trigger, then resolve: it pages nobody and stays closed)."""
        if self.notifier is None:
            return CanaryOutcome("not-configured", "the canary has no routing key here (canary.routing_key_secret)")
        run = CanaryRun(self.environment, seen.run_id)
        for _ in range(MAX_WRITE_CONFLICTS):
            current = self.log.latest(self.environment)
            if current is not None and current.run_id == seen.run_id:
                if current.delivered_at:
                    return CanaryOutcome("duplicate", "this canary run was delivered already", current)
                run = current  # received by an attempt that died before `delivered`: send again
            elif current is not None and not run.is_newer_than(current):
                return CanaryOutcome("stale", f"a newer canary run ({current.run_id}) was recorded", current)
            else:
                run = dataclasses.replace(run, version=current.version if current is not None else 0)
                run = run.reached("received", received_at)
                if not self.log.put(run, current.version if current is not None else None):
                    continue
            return self._deliver(finding, run)
        raise RuntimeError(f"the canary record of {self.environment} kept changing")

    def _deliver(self, finding: Finding, run: CanaryRun) -> CanaryOutcome:
        assert self.notifier is not None
        key = incident_key(self.environment, run.run_id)
        ctx = NotifyContext(self.environment, finding, key, "findings-router canary", 1)
        self.notifier.send(Notification("trigger", key, Severity.INFORMATIONAL, "low"), ctx)
        self.notifier.send(resolve(key), ctx)
        delivered_at = self.clock()
        for _ in range(MAX_WRITE_CONFLICTS):
            current = self.log.latest(self.environment)
            if current is None or current.run_id != run.run_id:
                return CanaryOutcome("stale", "a newer canary run was recorded while this one was sent", run)
            if current.delivered_at:
                return CanaryOutcome("duplicate", "another attempt recorded the delivery", current)
            recorded = current.reached("delivered", delivered_at)
            if self.log.put(recorded, current.version):
                return self._maybe_complete("delivered", recorded, "paged the canary's on-call service")
        raise RuntimeError(f"the canary record of {self.environment} kept changing")

    # ------------------------------------------------------------------------------------------ ack receiver side

    def acknowledge(self, key: str | None, at: dt.datetime) -> CanaryOutcome | None:
        """The on-call service's webhook about incident `key`: None when it is not a canary incident of ours."""
        run_id = incident_run(key or "", self.environment)
        if run_id is None:
            return None
        for _ in range(MAX_WRITE_CONFLICTS):
            current = self.log.latest(self.environment)
            if current is None or current.run_id != run_id:
                return CanaryOutcome("stale", f"canary run {run_id} is not the latest recorded", current)
            if current.acknowledged_at:
                return CanaryOutcome("duplicate", "this canary run was acknowledged already", current)
            recorded = current.reached("acknowledged", at)
            if self.log.put(recorded, current.version):
                return self._maybe_complete("acknowledged", recorded, "the canary's incident came back")
        raise RuntimeError(f"the canary record of {self.environment} kept changing")

    def _maybe_complete(self, hop: str, run: CanaryRun, reason: str) -> CanaryOutcome:
        if hop != self.completes_on:
            return CanaryOutcome("paged", reason, run)
        if self.heartbeat is not None:
            try:
                self.heartbeat()
            except Exception as exc:  # the alarm on completions still watches; the heartbeat's owner sees a gap
                logger.warning("canary heartbeat failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        logger.info("canary completed", extra={"run_id": run.run_id, "hops": run.hop_seconds()})
        return CanaryOutcome("completed", reason, run, completed=True)
