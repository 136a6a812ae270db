"""The ingestion pre-filter (`ingestion.severity_labels`) never hides a finding a vulnerability rule would page.

Exploit, fix, EPSS, CVSS and CVE conditions hold whatever a finding's label: a rule paging `exploit_available: true`
must see a MEDIUM finding with an exploit even when the pre-filter admits only HIGH and CRITICAL. The oracle is the
router's own policy: whatever it would page or notify, the pattern admits.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from findings_router.domain.normalize import normalize_event
from findings_router.domain.policy import CompiledPolicy
from findings_router.settings.load import load_policy
from findings_router.settings.schema import Policy
from infra.event_patterns import EVENT_PATTERN_MAX_CHARS, event_pattern, event_pattern_size, vulnerability_admissions
from tests.builders import NOW, asff, event, load_fixture
from tests.infra.conftest import REPO_ROOT
from tests.infra.eventbridge_matcher import expand, matches, validate

pytestmark = pytest.mark.infra

LABELS = ["HIGH", "CRITICAL"]


@functools.cache
def _stg() -> str:
    return (REPO_ROOT / "config" / "stg.yaml").read_text()


def _policy(*rules: dict[str, Any], labels: list[str] | None = LABELS) -> Policy:
    data = yaml.safe_load(_stg())
    data["rules"] = list(rules) or data["rules"]
    data["ingestion"] = {**data.get("ingestion", {}), "severity_labels": labels}
    data["accounts"] = ["111122223333", "444455556666"]
    data.pop("custom_action", None)
    data.pop("notifiers", None)
    for rule in data["rules"]:
        rule.pop("notify", None)
    return Policy.model_validate(data)


def _asff_event(severity: str = "MEDIUM", **vuln: Any) -> dict[str, Any]:
    return event(asff(product="inspector", severity=severity, Vulnerabilities=[{"Id": "CVE-2026-1", **vuln}]))


def _ocsf_event(severity_id: int = 3, **vuln: Any) -> dict[str, Any]:
    ev = load_fixture("ocsf_inspector_vulnerability.json")
    finding = ev["detail"]["findings"][0]
    finding["severity_id"], finding["severity"] = severity_id, {3: "Medium", 2: "Low", 4: "High"}[severity_id]
    finding["vulnerabilities"] = [{"cve": {"uid": "CVE-2026-1", **vuln.pop("cve", {})}, **vuln}]
    return ev


def _routes(policy: Policy, ev: dict[str, Any]) -> bool:
    """Whether the router would page or notify a finding of `ev` (or resolve one)."""
    compiled = CompiledPolicy(policy)
    return any(f.is_resolved or compiled.evaluate(f, NOW).action != "drop" for f in normalize_event(ev).findings)


EXPLOITS = {"name": "exploits", "match": {"exploit_available": True}, "action": "page"}


def test_a_medium_finding_with_an_exploit_passes_a_high_and_critical_pre_filter():
    policy = _policy(EXPLOITS)
    pattern = event_pattern(policy)
    validate(pattern)
    assert matches(pattern, _asff_event(ExploitAvailable="YES"))
    assert not matches(pattern, _asff_event(ExploitAvailable="NO"))
    assert not matches(pattern, _asff_event())
    assert matches(pattern, _ocsf_event(is_exploit_available=True))
    assert not matches(pattern, _ocsf_event(is_exploit_available=False))
    # Any vulnerability of the finding may be the exploitable one.
    two = event(
        asff(
            product="inspector",
            severity="LOW",
            Vulnerabilities=[{"Id": "CVE-1", "ExploitAvailable": "NO"}, {"Id": "CVE-2", "ExploitAvailable": "YES"}],
        )
    )
    assert matches(pattern, two)


def test_a_rule_kept_within_the_labels_adds_nothing():
    bounded = {**EXPLOITS, "match": {"exploit_available": True, "severity": ["CRITICAL"]}}
    above = {**EXPLOITS, "match": {"exploit_available": True, "min_severity": "HIGH"}}
    dropped = {**EXPLOITS, "action": "drop"}
    for rule in (bounded, above, dropped):
        assert vulnerability_admissions(_policy(rule)) == ([], [])
    assert vulnerability_admissions(_policy(EXPLOITS, labels=None)) == ([], [])
    # A floor below the labels does need it.
    below = {**EXPLOITS, "match": {"exploit_available": True, "min_severity": "MEDIUM"}}
    assert vulnerability_admissions(_policy(below)) != ([], [])


def test_the_shipped_policies_need_no_admission():
    for env in ("dev", "stg", "prod"):
        assert vulnerability_admissions(load_policy(REPO_ROOT / "config" / f"{env}.yaml")) == ([], [])


def test_fix_epss_cvss_and_cve_conditions():
    policy = _policy(
        {"name": "partial", "match": {"fix_available": ["PARTIAL"]}, "action": "notify"},
        {"name": "epss", "match": {"min_epss": 0.5}, "action": "page"},
        {"name": "cvss", "match": {"min_cvss": 9.0}, "action": "page"},
        {"name": "cve", "match": {"cve_id": ["CVE-2026-*"]}, "action": "page"},
    )
    pattern = event_pattern(policy)
    validate(pattern)
    assert len(expand(pattern)) <= 20
    assert len(json.dumps(pattern)) <= event_pattern_size(policy) <= EVENT_PATTERN_MAX_CHARS
    mixed = event(
        asff(
            product="inspector",
            severity="LOW",
            Vulnerabilities=[{"Id": "X-1", "FixAvailable": "YES"}, {"Id": "X-2", "FixAvailable": "NO"}],
        )
    )
    assert matches(pattern, mixed)  # YES and NO make PARTIAL
    assert matches(pattern, _asff_event(EpssScore=0.5))
    assert matches(pattern, _asff_event(Cvss=[{"BaseScore": 9.8}]))
    assert matches(pattern, _ocsf_event(cve={"epss": {"score": "0.01"}}))  # a string: any score passes
    assert matches(pattern, _ocsf_event(fix_coverage="partial"))
    assert matches(pattern, _ocsf_event(cve={"cvss": [{"base_score": 9.1}]}))
    # The cve_id rule admits any vulnerability: everything with one passes.
    assert matches(pattern, _asff_event())


VULN = st.fixed_dictionaries(
    {},
    optional={
        "ExploitAvailable": st.sampled_from(["YES", "NO"]),
        "FixAvailable": st.sampled_from(["YES", "NO", "PARTIAL"]),
        "EpssScore": st.floats(0, 1),
        "Cvss": st.lists(st.fixed_dictionaries({"BaseScore": st.floats(0, 10)}), max_size=2),
    },
)
OCSF_VULN = st.fixed_dictionaries(
    {},
    optional={
        "is_exploit_available": st.booleans(),
        "is_fix_available": st.booleans(),
        "fix_coverage": st.sampled_from(["COMPLETE", "partial", "None"]),
        "cve": st.fixed_dictionaries(
            {},
            optional={
                "epss": st.fixed_dictionaries({"score": st.floats(0, 1).map(str)}),
                "cvss": st.lists(st.fixed_dictionaries({"base_score": st.floats(0, 10)}), max_size=2),
            },
        ),
    },
)
RULES = st.lists(
    st.fixed_dictionaries(
        {"action": st.sampled_from(["page", "notify", "drop"])},
        optional={
            "exploit_available": st.booleans(),
            "fix_available": st.lists(st.sampled_from(["YES", "NO", "PARTIAL"]), min_size=1, max_size=2, unique=True),
            "min_epss": st.sampled_from([0.0, 0.1, 0.5, 0.9]),
            "min_cvss": st.sampled_from([4.0, 7.0, 9.0]),
            "severity": st.lists(st.sampled_from(["LOW", "MEDIUM", "HIGH", "CRITICAL"]), min_size=1, unique=True),
        },
    ).filter(lambda r: bool(set(r) & {"exploit_available", "fix_available", "min_epss", "min_cvss"})),
    min_size=1,
    max_size=3,
)


def _rules(drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": f"r{i}", "action": r["action"], "match": {k: v for k, v in r.items() if k != "action"}}
        for i, r in enumerate(drawn)
    ]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=RULES,
    severity=st.sampled_from(["LOW", "MEDIUM", "HIGH"]),
    asff_vulns=st.lists(VULN, min_size=1, max_size=3),
    ocsf_vulns=st.lists(OCSF_VULN, min_size=1, max_size=3),
)
def test_whatever_a_vulnerability_rule_would_page_passes_the_pre_filter(rules, severity, asff_vulns, ocsf_vulns):
    """(A rule without a vulnerability condition is held to the labels, as documented: not generated.)"""
    policy = _policy(*_rules(rules))
    pattern = event_pattern(policy)
    asff_ev = event(
        asff(
            product="inspector",
            severity=severity,
            Vulnerabilities=[{"Id": f"CVE-2026-{i}", **v} for i, v in enumerate(asff_vulns)],
        )
    )
    ocsf_ev = load_fixture("ocsf_inspector_vulnerability.json")
    ocsf_ev["detail"]["findings"][0]["severity_id"] = {"LOW": 2, "MEDIUM": 3, "HIGH": 4}[severity]
    ocsf_ev["detail"]["findings"][0]["severity"] = severity.title()
    ocsf_ev["detail"]["findings"][0]["vulnerabilities"] = [
        {**v, "cve": {"uid": f"CVE-2026-{i}", **v.get("cve", {})}} for i, v in enumerate(ocsf_vulns)
    ]
    for ev in (asff_ev, ocsf_ev):
        if _routes(policy, ev):
            assert matches(pattern, ev), (rules, ev["detail"]["findings"][0])
