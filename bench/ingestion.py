"""Bench 0: what reaches the queue. The share of a production day's Security Hub events the ingestion rule admits.

Each event of the day (bench/workload.py REALISTIC_DAY, assumptions stated there) is matched against the deployed
pattern of `config/prod.yaml` (infra/event_patterns.py, with the project's EventBridge matcher,
tests/infra/eventbridge_matcher.py) under each `ingestion.filter` (and, for the policy's filter, each
`ingestion.resolutions`), beside the router's own verdict on the same event: whether it acts on a finding of it
(tests/property/filter_oracle.py). An event the router needs that the pattern drops would be a lost page: the bench
counts them, and fails if there is one. No timing: exact counts on a fixed seed.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench.common import CONFIG_DIR, BenchResult

TARGET_NOTE = "every event the router acts on admitted (a lost page is a failure); the share is reported"
ACCOUNT = "111122223333"  # one of prod's accounts: the day measures filtering, not account scope


def _variants(policy: Any) -> dict[str, Any]:
    """prod's policy under each filter: as shipped, noted resolutions, the severity pre-filter of its rules' labels,
    none."""
    data = policy.model_dump(mode="json", exclude_none=True)

    def with_(**update: Any) -> Any:
        return type(policy).model_validate({**data, "ingestion": {**data["ingestion"], **update}})

    return {
        "policy (shipped: resolutions all)": policy,
        "policy, resolutions noted": with_(resolutions="noted"),
        # What the policy's filter falls back to when too rich: the labels its rules page, plus vulnerability
        # conditions whatever the label.
        "severity (the rules' labels)": with_(filter="severity", severity_labels=_rule_labels(policy)),
        "none (accounts only)": with_(filter="none"),
    }


def _rule_labels(policy: Any) -> list[str]:
    labels = {s for rule in policy.rules if rule.action != "drop" and rule.match for s in (rule.match.severity or [])}
    return sorted(labels, key=lambda s: s.rank)


def run(events: int = 10_000, seed: str = "day") -> BenchResult:
    from findings_router.settings.load import load_policy
    from infra.event_patterns import action_target_arn, event_pattern, ingestion_filter
    from tests.infra.eventbridge_matcher import matches
    from tests.property.filter_oracle import needed, views

    started = time.perf_counter()
    from bench.workload import REALISTIC_DAY_NOTE, realistic_day

    day = realistic_day(events, seed=seed, account=ACCOUNT)
    shipped = load_policy(CONFIG_DIR / "prod.yaml")
    arn = (
        action_target_arn(shipped.custom_action.id, region="eu-central-1", account=ACCOUNT)
        if shipped.custom_action
        else None
    )
    shares: dict[str, float] = {}
    lost: dict[str, int] = {}
    by_kind: dict[str, dict[str, float]] = {}
    filters: dict[str, dict[str, Any]] = {}
    totals = Counter(kind for kind, _ in day)
    needed_counts: dict[str, int] = {}
    for name, policy in _variants(shipped).items():
        pattern = event_pattern(policy, action_target_arn=arn)
        compiled = views(policy)
        admitted: Counter[str] = Counter()
        missed = 0
        acted = 0
        for kind, event in day:
            passes = matches(pattern, event)
            admitted[kind] += passes
            if needed(policy, event, compiled):
                acted += 1
                missed += not passes
        shares[name] = sum(admitted.values()) / len(day)
        lost[name] = missed
        needed_counts[name] = acted
        by_kind[name] = {kind: round(admitted[kind] / totals[kind], 3) for kind in sorted(totals)}
        chosen = ingestion_filter(policy)
        filters[name] = {"level": chosen.level, "pattern_chars": chosen.size, "sub_patterns": chosen.sub_patterns}
    shipped_share = shares["policy (shipped: resolutions all)"]
    noted_share = shares["policy, resolutions noted"]
    passed_share = sum(n for kind, n in totals.items() if kind.endswith(":passed")) / len(day)
    return BenchResult(
        name="ingestion",
        title="Ingestion filter: share of a production day's events that reach the queue (prod policy)",
        figure=(
            f"{shipped_share:.1%} reach the queue with the policy's filter (shipped), {noted_share:.1%} with "
            f"resolutions noted, 100% without; events the router needs but the rule drops: {sum(lost.values())}"
        ),
        target=TARGET_NOTE,
        passed=sum(lost.values()) == 0,
        ratio=shipped_share,
        details={
            "events": len(day),
            "day": REALISTIC_DAY_NOTE,
            "share_reaching_queue": {k: round(v, 4) for k, v in shares.items()},
            "events_router_acts_on": {k: round(v / len(day), 4) for k, v in needed_counts.items()},
            "needed_but_filtered": lost,
            "passed_reevaluations_never_paged_share": round(passed_share, 4),
            "share_by_event_kind": by_kind,
            "events_by_kind": {k: round(v / len(day), 4) for k, v in sorted(totals.items())},
            "filters": filters,
        },
        notes=[
            "the router's verdict: tests/property/filter_oracle.py (a resolution of the accounts, or a page or notify "
            "in the live or shadow view; with resolutions noted, a PASSED result only when noted)",
            "share_reaching_queue feeds the cost model (bench/cost.py): per million findings Security Hub emits",
        ],
        seconds=time.perf_counter() - started,
    )
