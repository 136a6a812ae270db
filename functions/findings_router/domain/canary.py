"""The canary: a synthetic finding that proves, every few minutes, that the whole path still pages.

A scheduled function imports one finding per environment into Security Hub (`BatchImportFindings`, the account's own
`product/<account>/default`, a fixed `Id` and a newer `UpdatedAt` each run: Security Hub ignores an import that is
not newer). It travels the real path (Security Hub → EventBridge → SQS → router) and the router, recognizing it,
pages the canary's own on-call service (which pages nobody) instead of applying the policy, then resolves that
incident. The canary service's webhook comes back to the ack receiver like any acknowledgement: that last hop
proves the on-call service really opened an incident. Each hop's time is recorded (`CanaryRun`).

Pure: no clock, no AWS. `run_id` is the import time, which orders runs (a late copy of an older run is stale).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Any

from findings_router.domain.model import Finding

GENERATOR_ID = "findings-router-canary"
CANARY_TYPE = "Software and Configuration Checks/findings-router/Canary"
# ProductFields the canary carries (ASFF ProductFields are strings): the environment it is for, and its run.
ENVIRONMENT_FIELD = "findings-router/canary"
RUN_FIELD = "findings-router/sent_at"
# Incident keys of canary pages: `findings-router-canary/<env>/<run id>`, one incident per run.
_INCIDENT_KEY = re.compile(r"^findings-router-canary/(?P<env>[a-z][a-z0-9-]{0,15})/(?P<run>[0-9T:.\-+Z]+)$")
_PRIVATE_PRODUCT = re.compile(
    r"^arn:aws[a-z-]*:securityhub:[a-z0-9-]+:(?P<account>\d{12}):product/(?P=account)/default$"
)


def finding_id(environment: str) -> str:
    """The canary's fixed finding id: one finding per environment, updated by each run."""
    return f"{GENERATOR_ID}/{environment}"


def incident_key(environment: str, run_id: str) -> str:
    return f"{GENERATOR_ID}/{environment}/{run_id}"


def iso(moment: dt.datetime) -> str:
    """Security Hub's timestamp form, to the millisecond (`UpdatedAt` must grow from run to run)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def synthetic_finding(
    environment: str, *, account: str, region: str, partition: str, now: dt.datetime
) -> dict[str, Any]:
    """The ASFF finding the canary imports (BatchImportFindings' required attributes, a private product)."""
    stamp = iso(now)
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding_id(environment),
        "ProductArn": f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default",
        "GeneratorId": GENERATOR_ID,
        "AwsAccountId": account,
        "Types": [CANARY_TYPE],
        "CreatedAt": stamp,
        "UpdatedAt": stamp,
        # Informational: Security Hub's own views do not count it as a problem; the router pages it regardless.
        "Severity": {"Label": "INFORMATIONAL"},
        "Title": f"findings-router canary ({environment})",
        "Description": (
            f"Synthetic finding imported by findings-router's canary for environment {environment}, to prove that "
            "findings still reach on-call. It pages the canary's own PagerDuty service, never a person. Safe to "
            "ignore; do not suppress it with an automation rule."
        ),
        "Resources": [{"Type": "AwsAccount", "Id": f"AWS::::Account:{account}", "Region": region}],
        "ProductFields": {ENVIRONMENT_FIELD: environment, RUN_FIELD: stamp},
        "RecordState": "ACTIVE",
    }


@dataclass(frozen=True, slots=True)
class CanarySighting:
    """A canary finding as the router sees it."""

    environment: str
    run_id: str  # the import time, ISO 8601 (ProductFields findings-router/sent_at)

    @property
    def imported_at(self) -> dt.datetime | None:
        return parse_time(self.run_id)


def sighting(finding: Finding) -> CanarySighting | None:
    """The canary run `finding` is, or None for every real finding.

    All of: the canary's generator id, its id form, a private product of the finding's own account (only that
    account can import such a finding), and the ProductFields naming the environment and the run.
    """
    if finding.generator_id != GENERATOR_ID or not finding.id.startswith(GENERATOR_ID + "/"):
        return None
    match = _PRIVATE_PRODUCT.match(finding.product_arn)
    if match is None or match["account"] != finding.account:
        return None
    fields = finding.raw.get("ProductFields")
    if not isinstance(fields, dict):
        return None
    environment, run_id = fields.get(ENVIRONMENT_FIELD), fields.get(RUN_FIELD)
    if not isinstance(environment, str) or not isinstance(run_id, str) or finding.id != finding_id(environment):
        return None
    if parse_time(run_id) is None:
        return None
    return CanarySighting(environment, run_id)


def is_canary(finding: Finding) -> bool:
    """Any environment's canary (cheap: the generator id alone; `sighting` checks the rest)."""
    return finding.generator_id == GENERATOR_ID


def incident_run(key: str, environment: str) -> str | None:
    """The run id of a canary incident key of `environment`; None for any other key."""
    match = _INCIDENT_KEY.match(key)
    if match is None or match["env"] != environment:
        return None
    return match["run"]


HOPS = ("imported", "received", "delivered", "acknowledged")


@dataclass(frozen=True, slots=True)
class CanaryRun:
    """One run's hops, as recorded in the state table (ISO times; "" for a hop not reached yet)."""

    environment: str
    run_id: str
    received_at: str = ""  # the router read it from the queue
    delivered_at: str = ""  # the canary's on-call service accepted the page
    acknowledged_at: str = ""  # the on-call service's webhook about that incident reached the ack receiver
    version: int = 0

    @property
    def imported_at(self) -> str:
        return self.run_id

    def reached(self, hop: str, at: dt.datetime) -> CanaryRun:
        return replace(self, **{f"{hop}_at": iso(at)}, version=self.version + 1)

    def hop_seconds(self) -> dict[str, float]:
        """Seconds from each hop to the next reached one (`received`: imported → received, …), and `total`:
        imported → the last hop reached."""
        times = [parse_time(getattr(self, f"{hop}_at")) if getattr(self, f"{hop}_at") else None for hop in HOPS]
        seconds: dict[str, float] = {}
        previous = times[0]
        for hop, moment in zip(HOPS[1:], times[1:], strict=True):
            if moment is None or previous is None:
                break
            seconds[hop] = round((moment - previous).total_seconds(), 3)
            previous = moment
        if seconds and times[0] is not None and previous is not None:
            seconds["total"] = round((previous - times[0]).total_seconds(), 3)
        return seconds

    def is_newer_than(self, other: CanaryRun | None) -> bool:
        if other is None:
            return True
        mine, theirs = parse_time(self.run_id), parse_time(other.run_id)
        return mine is not None and (theirs is None or mine > theirs)
