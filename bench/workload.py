"""Benchmark traffic: a weighted mix of the realistic fixture events, each copy made a distinct finding.

The weights model a Security Hub feed where control findings dominate (every control re-evaluates every 12–24 h),
then vulnerability and threat findings, a few resolutions and the odd custom action. Each generated event is a
deep copy of a fixture with a unique finding identity (finding id, and the resource id, because control findings
fold on account/region/control/resource), so every copy is its own dedup key. A *repeat* is the same body again.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from bench.common import CONFIG_DIR, FIXTURES_DIR

# fixture file → relative weight in the mix (events, not findings: two of them carry two findings)
MIX: dict[str, int] = {
    "asff_control_s3_failed.json": 30,
    "asff_config_rule_noncompliant.json": 10,
    "ocsf_control_compliance_failed.json": 8,
    "asff_inspector_log4j.json": 8,
    "asff_inspector_cvss_high_label_medium.json": 8,
    "ocsf_inspector_vulnerability.json": 6,
    "asff_control_s3_passed.json": 6,
    "asff_guardduty_ssh_bruteforce.json": 5,
    "asff_third_party_prowler.json": 5,
    "asff_control_legacy_two_standards.json": 4,
    "ocsf_guardduty_detection.json": 3,
    "asff_macie_sensitive_data.json": 3,
    "asff_guardduty_archived.json": 1,
    "ocsf_detection_resolved.json": 1,
    "asff_custom_action_two_findings.json": 1,
}

# A fixed "now" for the pure benches (the fixtures are dated November 2026).
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


@cache
def _fixture_text(name: str) -> str:
    return (FIXTURES_DIR / name).read_text(encoding="utf-8")


def fixture(name: str) -> dict[str, Any]:
    return json.loads(_fixture_text(name))


BENCH_POLICY_NOTE = (
    "policy: config/prod.yaml with PagerDuty pacing at its maximum (the local receiver has no rate limit) and the "
    "storm threshold at its maximum, so that no storm folds the traffic (new problems are still counted, in each "
    "container's buffer)"
)


def bench_policy_data(env: str = "prod", *, shipped_storms: bool = False) -> dict[str, Any]:
    """The shipped policy for `env` as data, rewritten as every local run rewrites it (unpaced: pacing would sleep
    between pages, a limit the local receiver does not enforce), for every account (the corpus spans the platform's
    accounts: measure routing, not the scope check), and with the storm threshold at the schema's maximum, so that no
    storm folds later new findings into one incident and makes repetitions differ. `shipped_storms` keeps the
    policy's own storm settings (for benches whose traffic cannot storm).
    """
    from findings_router_local.environment import local_policy_data, shipped_policy_data

    data = local_policy_data(shipped_policy_data(CONFIG_DIR / f"{env}.yaml"), accounts=["*"])
    if not shipped_storms:
        data.setdefault("storm", {})["threshold"] = 500  # the schema's maximum
    return data


@cache
def prod_policy() -> Any:
    import yaml

    from findings_router.settings.load import parse_policy

    return parse_policy(yaml.safe_dump(bench_policy_data("prod")), "bench:prod.yaml")


def _suffix(value: str, tag: str) -> str:
    return f"{value}-{tag}"


def uniquify(event: dict[str, Any], tag: str) -> dict[str, Any]:
    """A copy of `event` whose findings (and their resources) have identities no other copy shares."""
    ev = copy.deepcopy(event)
    ev["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ev.get('id')}/{tag}"))
    for f in ev.get("detail", {}).get("findings", []):
        if "finding_info" in f:  # OCSF
            f["finding_info"]["uid"] = _suffix(f["finding_info"]["uid"], tag)
            if isinstance(f.get("metadata"), dict) and "uid" in f["metadata"]:
                f["metadata"]["uid"] = _suffix(f["metadata"]["uid"], tag)
            for r in f.get("resources") or []:
                for k in ("uid", "uid_alt"):
                    if isinstance(r.get(k), str):
                        r[k] = _suffix(r[k], tag)
        else:  # ASFF
            f["Id"] = _suffix(f["Id"], tag)
            for r in f.get("Resources") or []:
                r["Id"] = _suffix(r["Id"], tag)
    return ev


def resend(event: dict[str, Any]) -> dict[str, Any]:
    """The same finding(s) sent again by Security Hub: a new EventBridge event id, same finding identity."""
    ev = copy.deepcopy(event)
    ev["id"] = str(uuid.uuid4())
    return ev


def finding_count(event: dict[str, Any]) -> int:
    return len(event.get("detail", {}).get("findings", []))


def generate(
    n_events: int,
    seed: int | str,
    *,
    mix: dict[str, int] | None = None,
    keep: Callable[[str, dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """`n_events` distinct events drawn from the weighted mix (deterministic for a given seed)."""
    mix = mix or MIX
    rng = random.Random(f"findings-router-bench-{seed}")
    names = list(mix)
    weights = [mix[n] for n in names]
    out: list[dict[str, Any]] = []
    attempts = 0
    while len(out) < n_events:
        attempts += 1
        if attempts > n_events * 50 + 100:
            raise RuntimeError("the mix filter rejects (almost) every fixture")
        name = rng.choices(names, weights)[0]
        ev = uniquify(fixture(name), f"{seed}-{attempts}")
        if keep is None or keep(name, ev):
            out.append(ev)
    return out


def policy_actions(event: dict[str, Any]) -> list[str]:
    """What the prod policy decides for each finding of a (fresh) event: page, notify or drop."""
    from findings_router.domain.normalize import normalize_event

    compiled = _compiled_prod()
    normalized = normalize_event(event)
    actions = []
    for f in normalized.findings:
        if f.is_resolved:
            actions.append("resolve")
        elif f.custom_action:
            actions.append("page")
        else:
            actions.append(compiled.evaluate(f, NOW).action)
    return actions


@cache
def _compiled_prod() -> Any:
    from findings_router.domain.policy import CompiledPolicy

    return CompiledPolicy(prod_policy())


def pages_only(_: str, event: dict[str, Any]) -> bool:
    """Single-finding events the prod policy pages for (used where "already paged" matters)."""
    return finding_count(event) == 1 and policy_actions(event) == ["page"]


def critical_pages_only(name: str, event: dict[str, Any]) -> bool:
    if not pages_only(name, event):
        return False
    f = event["detail"]["findings"][0]
    label = (f.get("Severity") or {}).get("Label") or f.get("severity")
    return str(label).upper() == "CRITICAL"


@dataclass
class Traffic:
    """Events to deliver, in order, and how many of their findings are repeats of known findings."""

    events: list[dict[str, Any]]
    findings: int
    repeats: int

    @property
    def bodies(self) -> list[str]:
        return [json.dumps(e) for e in self.events]


def steady_state(
    known: list[dict[str, Any]], new: list[dict[str, Any]], total_findings: int, seed: int | str
) -> Traffic:
    """`total_findings` findings: the `new` events spread evenly among re-sends of the `known` ones.

    Re-sends go round the known set in a shuffled order, round after round (Security Hub re-sends each finding
    every 12–24 h, so one batch rarely holds the same finding twice). A two-finding event that would overshoot
    the total is skipped, so the total is exact unless only two-finding events are left to fill one slot.
    """
    if not known and total_findings > sum(finding_count(e) for e in new):
        raise ValueError("no known events to repeat")
    rng = random.Random(f"steady-{seed}")
    budget = total_findings - sum(finding_count(e) for e in new)
    repeats: list[dict[str, Any]] = []
    filled = 0
    while filled < budget:
        round_ = list(known)
        rng.shuffle(round_)
        added = 0
        for e in round_:
            c = finding_count(e)
            if filled + c <= budget:
                repeats.append(resend(e))
                filled += c
                added += 1
            if filled == budget:
                break
        if added == 0:
            break
    events = list(repeats)
    if new:
        step = len(events) / len(new) if events else 0
        for i, ev in enumerate(new):
            events.insert(min(len(events), round(i * step + i + step / 2)), ev)
    return Traffic(events=events, findings=filled + sum(finding_count(e) for e in new), repeats=filled)


# ------------------------------------------------------------------------------------------ a production day
#
# What a Security Hub organization's EventBridge feed carries in a day, per 1,000 events. Not measured: assumptions,
# written down so they can be argued with (docs/performance.md, "A production day"):
# * Security Hub controls re-evaluate every resource every 12-24 h (periodic checks; change-triggered ones are
#   refreshed every 18 h), and each evaluation, identical or not, is an Imported event (contracts.md §1.5): control
#   findings are most of the feed. Here 78%, plus 4% AWS Config rules.
# * A security score around 75%: three in four control evaluations PASSED. One in twenty of those is of a finding
#   findings-router once paged (it carries the router's note); the rest were never paged.
# * Failed controls by severity roughly as the FSBP standard's controls are: CRITICAL 4%, HIGH 20%, MEDIUM 50%,
#   LOW 20%, INFORMATIONAL 6%.
# * Inspector 10% (re-scans update findings): CRITICAL 5%, HIGH 25%, MEDIUM 50%, LOW 15%, INFORMATIONAL 5%, CVSS in
#   the label's band; one MEDIUM in twenty has CVSS >= 9 (Inspector lowers the label of hard-to-reach EC2 findings)
#   and one finding in twenty a known exploit. GuardDuty 2.5% (LOW 55%, MEDIUM 33%, HIGH 12%), Macie and partners
#   1%, archived findings 0.5%, the new Security Hub's OCSF events 4%.
# The mutations below give each fixture the variant's severity, compliance status, CVSS, exploit and note.

Variant = tuple[str, str, float]  # (fixture, variant, events per 1,000)

REALISTIC_DAY: tuple[Variant, ...] = (
    ("asff_control_s3_passed.json", "passed", 55.6),
    ("asff_control_s3_passed.json", "passed-noted", 2.9),
    ("asff_control_s3_failed.json", "CRITICAL", 0.8),
    ("asff_control_s3_failed.json", "HIGH", 3.9),
    ("asff_control_s3_failed.json", "MEDIUM", 9.8),
    ("asff_control_s3_failed.json", "LOW", 3.9),
    ("asff_control_s3_failed.json", "INFORMATIONAL", 1.1),
    ("asff_config_rule_noncompliant.json", "MEDIUM", 3.0),
    ("asff_config_rule_noncompliant.json", "passed", 1.0),
    ("asff_inspector_log4j.json", "CRITICAL", 0.5),
    ("asff_inspector_log4j.json", "HIGH", 2.5),
    ("asff_inspector_cvss_high_label_medium.json", "MEDIUM", 4.4),
    ("asff_inspector_cvss_high_label_medium.json", "MEDIUM-cvss-9", 0.3),
    ("asff_inspector_cvss_high_label_medium.json", "MEDIUM-exploit", 0.3),
    ("asff_inspector_cvss_high_label_medium.json", "LOW", 1.5),
    ("asff_inspector_cvss_high_label_medium.json", "INFORMATIONAL", 0.5),
    ("asff_guardduty_ssh_bruteforce.json", "LOW", 1.4),
    ("asff_guardduty_ssh_bruteforce.json", "MEDIUM", 0.8),
    ("asff_guardduty_ssh_bruteforce.json", "HIGH", 0.3),
    ("asff_macie_sensitive_data.json", "HIGH", 0.2),
    ("asff_third_party_prowler.json", "MEDIUM", 0.4),
    ("asff_third_party_prowler.json", "LOW", 0.4),
    ("asff_guardduty_archived.json", "archived", 0.5),
    ("ocsf_control_compliance_failed.json", "passed", 2.4),
    ("ocsf_control_compliance_failed.json", "MEDIUM", 0.6),
    ("ocsf_control_compliance_failed.json", "HIGH", 0.2),
    ("ocsf_inspector_vulnerability.json", "MEDIUM", 0.5),
    ("ocsf_inspector_vulnerability.json", "HIGH", 0.1),
    ("ocsf_guardduty_detection.json", "LOW", 0.2),
)

REALISTIC_DAY_NOTE = (
    "a production day of a Security Hub organization (bench/workload.py REALISTIC_DAY: assumptions, not "
    "measurements): 82% control and Config rule evaluations, three in four PASSED (one in twenty of those noted by "
    "findings-router, which once paged them), 10% Inspector, 2.5% GuardDuty, 4% OCSF"
)

_OCSF_IDS = {"INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}
_CVSS_BAND = {"CRITICAL": 9.4, "HIGH": 7.8, "MEDIUM": 5.5, "LOW": 3.1, "INFORMATIONAL": 0.0}


def _day_variant(event: dict[str, Any], variant: str, account: str) -> dict[str, Any]:
    """`event` (a fixture's copy) made the variant: its label, compliance, CVSS and exploit, note; in `account`."""
    for f in event["detail"]["findings"]:
        if "finding_info" in f:  # OCSF
            f["cloud"]["account"]["uid"] = account
            label = "INFORMATIONAL" if variant == "passed" else variant
            f["severity_id"], f["severity"] = _OCSF_IDS[label], label.title()
            if "compliance" in f:
                passed = variant == "passed"
                f["compliance"].update(status_id=1 if passed else 3, status="Pass" if passed else "Fail")
                f["status_id"] = 4 if passed else 1
            for v in f.get("vulnerabilities") or []:
                v["is_exploit_available"] = False
                for c in v.get("cve", {}).get("cvss") or []:
                    c["base_score"] = _CVSS_BAND[label]
            continue
        f["AwsAccountId"] = account
        if variant in ("passed", "passed-noted"):
            f["Compliance"] = {**f.get("Compliance", {}), "Status": "PASSED"}
            f["Severity"] = {"Label": "INFORMATIONAL", "Normalized": 0}
            f["Workflow"] = {"Status": "RESOLVED"}
            if variant == "passed-noted":
                f["Note"] = {"Text": "Paged on-call via PagerDuty (prod)", "UpdatedBy": "findings-router"}
            continue
        if variant == "archived":
            continue
        label = variant.split("-", maxsplit=1)[0]
        f["Severity"] = {"Label": label}
        for v in f.get("Vulnerabilities") or []:
            v["ExploitAvailable"] = "YES" if variant == "MEDIUM-exploit" else "NO"
            score = 9.8 if variant == "MEDIUM-cvss-9" else _CVSS_BAND[label]
            for c in v.get("Cvss") or []:
                c["BaseScore"] = score
    return event


def realistic_day(
    n_events: int, seed: int | str = "day", account: str = "111122223333"
) -> list[tuple[str, dict[str, Any]]]:
    """`n_events` (variant label, event) drawn from REALISTIC_DAY, each a distinct finding of `account`."""
    rng = random.Random(f"findings-router-day-{seed}")
    weights = [w for _, _, w in REALISTIC_DAY]
    out = []
    for i in range(n_events):
        name, variant, _ = rng.choices(REALISTIC_DAY, weights)[0]
        event = _day_variant(uniquify(fixture(name), f"day-{seed}-{i}"), variant, account)
        out.append((f"{name.removesuffix('.json')}:{variant}", event))
    return out
