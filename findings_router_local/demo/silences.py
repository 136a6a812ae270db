"""The demo's silence round and shadow trial (production only), in a few lines of its output.

Silence: a finding pages; an operator runs `findings-router silence add --all` ("stop paging now"); a new finding is
held back (tracked, not sent) while the first one's resolve still goes out; the silence is expired; the sweep
(its real handler, as EventBridge invokes it) pages what was held back. Its decisions are logged apart, so they change
none of the day's counts that the environments compare.

Shadow: the demo tries a stricter rule on production as a trial (`shadow: true`: MEDIUM GuardDuty threats paged at
low urgency instead of notified); the day's shadow decisions are recorded beside the live ones, nothing is sent, and
`findings-router shadow-report`'s comparison says which findings would have paged differently.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from findings_router.adapters.state_table import item_to_state
from findings_router.domain.acks import is_finding_key
from findings_router.domain.keys import SHADOW_PREFIX
from findings_router_local.shadow_report import ShadowReport, compare

# The trial rule the demo adds to production's policy (docs/configuration.md shows the same rollout).
TRIAL_RULE: dict[str, Any] = {
    "name": "page-medium-guardduty-trial",
    "shadow": True,
    "match": {"severity": ["MEDIUM"], "product": ["GuardDuty"]},
    "action": "page",
    "urgency": "low",
}
SILENCE_COMMENT = "INC-4711: stop paging now, the platform team is on it"
SILENCE_AUTHOR = "Ada Lovelace"


def with_trial_rule(data: dict[str, Any]) -> dict[str, Any]:
    """The policy data with `TRIAL_RULE` first (the first match decides: it then takes what it matches from the
    live rules, in the shadow decisions only)."""
    out = copy.deepcopy(data)
    out["rules"] = [dict(TRIAL_RULE), *out.get("rules", [])]
    return out


@dataclass
class SilenceRound:
    silence_id: str = ""
    resolved_during: bool = False  # the page sent before the silence was resolved during it
    swept: list[int] = field(default_factory=list)  # incidents the sweep opened after the expiry
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def held(self) -> int:
        """Triggers the silence held back (the router's "silence applied" lines)."""
        return sum(1 for r in self.logs if r.get("message") == "silence applied")

    @property
    def sweep_paged(self) -> int:
        return sum(1 for r in self.logs if r.get("message") == "page sent after a silence")

    def describe(self) -> str:
        resolve = "an earlier incident still resolved" if self.resolved_during else "AN EARLIER INCIDENT NOT RESOLVED"
        paged = ", ".join(f"#{n}" for n in self.swept) or "NOTHING"
        return (
            f"`silence add --all --duration 2h`: {self.held} page held back (tracked), {resolve}; "
            f"`silence expire` → the sweep paged it: {paged}"
        )


def shadow_comparison(local: Any, environment: str, since: dt.datetime) -> ShadowReport:
    """`shadow-report`'s comparison of the environment's table (moto) since `since`."""
    items = local.dynamodb.scan(TableName=local.table)["Items"]
    states = [
        item_to_state(i)
        for i in items
        if "#" not in i["pk"]["S"] and (i["pk"]["S"].startswith(SHADOW_PREFIX) or is_finding_key(i["pk"]["S"]))
    ]
    return compare(environment, states, since)


def describe_shadow(report: ShadowReport) -> str:
    flips = [d for d in report.differences if d.shadow.action == "page" and d.live.action != "page"]
    others = len(report.differences) - len(flips)
    rule = TRIAL_RULE["name"]
    more = f", {others} other difference(s)" if others else ""
    return (
        f"trial rule {rule} (shadow: true): {len(flips)} finding(s) would have paged that live "
        f"{'notified' if all(d.live.action == 'notify' for d in flips) else 'did not page'}{more}; nothing sent "
        "(shadow-report)"
    )
