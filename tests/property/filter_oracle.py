"""The oracle of the ingestion filter: which events the router needs, by the router's own reading of them.

An event is needed when it carries a finding of the environment's accounts that the router acts on: a resolution
(`Finding.is_resolved`: whatever the router holds must see its end; with `ingestion.resolutions: noted`, a
PASSED result only when noted), or one the policy pages or notifies, in the live
view or, with shadow rules or `mode: shadow`, in the shadow view (whose decisions are recorded and reported). The
ingestion pattern must admit every such event (infra/event_patterns.py); it may admit more.
"""

from __future__ import annotations

import datetime as dt
import inspect
from functools import cache
from typing import Any

from findings_router.domain.model import Finding
from findings_router.domain.normalize import normalize_event
from findings_router.domain.policy import CompiledPolicy
from findings_router.settings.schema import Policy

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


@cache
def _takes_shadow() -> bool:
    return "shadow" in inspect.signature(CompiledPolicy.__init__).parameters


def views(policy: Policy) -> list[CompiledPolicy]:
    """The live view and, when the policy has shadow decisions, the shadow view."""
    compiled = [CompiledPolicy(policy)]
    if _takes_shadow() and getattr(policy, "has_shadow", False):
        compiled.append(CompiledPolicy(policy, shadow=True))  # type: ignore[call-arg]
    return compiled


def acts_on(policy: Policy, finding: Finding, compiled: list[CompiledPolicy] | None = None) -> bool:
    """Whether the router acts on `finding` (of any account: out of scope is False)."""
    if not policy.in_scope(finding.account):
        return False
    if finding.is_resolved:
        # `ingestion.resolutions: noted`: a PASSED result matters only on a finding findings-router noted (it notes
        # every finding it pages or notifies): the others were never paged.
        noted_only = policy.ingestion.resolutions == "noted" and finding.compliance_status == "PASSED"
        return not noted_only or finding.note is not None
    return any(view.evaluate(finding, NOW).action != "drop" for view in compiled or views(policy))


def needed(policy: Policy, event: Any, compiled: list[CompiledPolicy] | None = None) -> bool:
    """Whether the router needs `event` (an ASFF Imported or OCSF V2 event; custom actions and the canary are the
    pattern's own branches, tested apart)."""
    try:
        normalized = normalize_event(event)
    except ValueError:
        return False
    views_ = compiled or views(policy)
    return any(acts_on(policy, f, views_) for f in normalized.findings)
