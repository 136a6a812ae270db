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
# A run dated later than this past the router's clock is not the canary's (its function stamps the import time).
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)

Heartbeat = Callable[[], None]


@dataclass(frozen=True, slots=True)
class CanaryOutcome:
    outcome: str  # paged | completed | duplicate | stale | foreign | not-configured
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
        self.completes_on = completes_on  # "delivered", "acknowledged", or "never" (a dry run)
        self.clock = clock
        self.heartbeat = heartbeat

    @classmethod
    def dry_run(cls, environment: str, clock: Callable[[], dt.datetime]) -> CanaryProbe:
        """For replay: canary findings are recognized and "paged" to a recording twin, nothing is stored or sent."""
        from findings_router.adapters.canary_log import InMemoryCanaryLog
        from findings_router.notify.recording import RecordingNotifier

        # A dry run completes nothing: no "canary completed" line, no heartbeat, no metric.
        return cls(environment, InMemoryCanaryLog(), notifier=RecordingNotifier(), completes_on="never", clock=clock)

    # ------------------------------------------------------------------------------------------ router side

    def page(
        self, finding: Finding, seen: CanarySighting, received_at: dt.datetime, *, own_account: str | None = None
    ) -> CanaryOutcome:
        """Page the canary's service about run `seen`: trigger, record `delivered`, resolve (it pages nobody and
        stays closed). `own_account`: the account the router runs in, when known; only its canary function can
        have imported the real canary (any member account could import a look-alike into its own product)."""
        if self.notifier is None:
            return CanaryOutcome("not-configured", "the canary has no routing key here (canary.routing_key_secret)")
        if own_account is not None and finding.account != own_account:
            return CanaryOutcome("foreign", f"a canary look-alike from account {finding.account}, not {own_account}")
        imported_at = seen.imported_at
        if imported_at is not None and imported_at - received_at > MAX_CLOCK_SKEW:
            # A run "from the future" would make every real run look stale until then.
            return CanaryOutcome("foreign", f"a canary run dated {seen.run_id}, later than now ({received_at})")
        run = CanaryRun(self.environment, seen.run_id)
        for _ in range(MAX_WRITE_CONFLICTS):
            current = self.log.latest(self.environment)
            if current is not None and current.run_id == seen.run_id:
                if current.delivered_at:
                    # A copy, or the retry of an attempt that died before its resolve: resolve again (a no-op at the
                    # service when it is closed), so the canary's incident never stays open.
                    self._resolve(finding, run.run_id)
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
        """Trigger, record, then resolve: a crash before the record re-sends the trigger while the alert is still
        open (PagerDuty folds it in: one incident); a crash after it leaves the resolve to the retry's duplicate."""
        assert self.notifier is not None
        key = incident_key(self.environment, run.run_id)
        ctx = NotifyContext(self.environment, finding, key, "findings-router canary", 1)
        self.notifier.send(Notification("trigger", key, Severity.INFORMATIONAL, "low"), ctx)
        outcome = self._record(run.run_id, "delivered", self.clock(), "paged the canary's on-call service")
        self.notifier.send(resolve(key), ctx)
        return outcome

    def _resolve(self, finding: Finding, run_id: str) -> None:
        assert self.notifier is not None
        key = incident_key(self.environment, run_id)
        self.notifier.send(resolve(key), NotifyContext(self.environment, finding, key, "findings-router canary", 1))

    # ------------------------------------------------------------------------------------------ ack receiver side

    def acknowledge(self, key: str | None, at: dt.datetime) -> CanaryOutcome | None:
        """The on-call service's webhook about incident `key`: None when it is not a canary incident of ours."""
        run_id = incident_run(key or "", self.environment)
        if run_id is None:
            return None
        return self._record(run_id, "acknowledged", at, "the canary's incident came back")

    def _record(self, run_id: str, hop: str, at: dt.datetime, reason: str) -> CanaryOutcome:
        """Record `hop` of run `run_id` on whatever the record holds now (the other function may have written
        meanwhile); nothing when a newer run replaced it or the hop is recorded already."""
        for _ in range(MAX_WRITE_CONFLICTS):
            current = self.log.latest(self.environment)
            if current is None or current.run_id != run_id:
                return CanaryOutcome("stale", f"canary run {run_id} is no longer the latest recorded", current)
            if getattr(current, f"{hop}_at"):
                return CanaryOutcome("duplicate", f"this canary run's {hop} hop was recorded already", current)
            recorded = current.reached(hop, at)
            if self.log.put(recorded, current.version):
                return self._maybe_complete(hop, recorded, reason)
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
