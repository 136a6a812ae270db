"""The ingestion rule's event pattern against real Security Hub events, other events, and the router's own model.

The oracle is the runtime itself: with a severity pre-filter, an event must pass exactly when the router would
see in it a finding of a pre-filtered label, a resolution (`Finding.is_resolved`), or an operator's custom action.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from findings_router.config import Policy, load_policy
from findings_router.model import Severity
from findings_router.normalize import ASFF_DETAIL_TYPES, OCSF_DETAIL_TYPES, SECURITYHUB_SOURCE, normalize_event
from infra.definitions import (
    DETAIL_TYPE_CUSTOM_ACTION,
    DETAIL_TYPE_IMPORTED,
    DETAIL_TYPE_IMPORTED_V2,
    OCSF_SEVERITY_IDS,
    event_pattern,
)
from tests.builders import FIXTURES, asff, control, event, load_fixture
from tests.infra.conftest import REPO_ROOT
from tests.infra.eventbridge_matcher import matches, validate

pytestmark = pytest.mark.infra

# EventBridge's default quota for an event pattern (adjustable to 4096 on request).
EVENT_PATTERN_MAX_CHARS = 2048
ALL_LABELS = [s.value for s in Severity]
OCSF_SEVERITY_NAME = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal"}


def _policy(**ingestion: Any) -> Policy:
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["ingestion"] = {**data.get("ingestion", {}), **ingestion}
    return Policy.model_validate(data)


def _shipped(environment: str) -> Policy:
    return load_policy(REPO_ROOT / "config" / f"{environment}.yaml")


def _oracle(policy: Policy, ev: dict[str, Any]) -> bool:
    """Whether the router needs this event, by the router's own reading of it."""
    if ev.get("source") != SECURITYHUB_SOURCE:
        return False
    detail_type = ev.get("detail-type")
    if detail_type == DETAIL_TYPE_IMPORTED_V2 and not policy.ingestion.include_ocsf:
        return False
    if detail_type not in ASFF_DETAIL_TYPES | OCSF_DETAIL_TYPES:
        return False
    labels = policy.ingestion.severity_labels
    if not labels or detail_type == DETAIL_TYPE_CUSTOM_ACTION:
        return True
    normalized = normalize_event(ev)
    if any(f.is_resolved or f.severity in labels for f in normalized.findings):
        return True
    # A finding the router cannot normalize is still wanted when its label is pre-filtered: the router logs and
    # dead-letters it, which is how a broken producer gets noticed. Only the raw label can say so here.
    raw_findings = ev["detail"]["findings"]
    return bool(normalized.errors) and any(
        isinstance(f, dict) and f.get("Severity", {}).get("Label") in labels for f in raw_findings
    )


FIXTURE_EVENTS = sorted(p.name for p in FIXTURES.glob("*.json") if p.name.startswith(("asff_", "ocsf_", "insight_")))


def test_detail_types_are_the_ones_the_router_reads():
    assert {DETAIL_TYPE_IMPORTED, DETAIL_TYPE_CUSTOM_ACTION} == ASFF_DETAIL_TYPES
    assert {DETAIL_TYPE_IMPORTED_V2} == OCSF_DETAIL_TYPES


@pytest.mark.parametrize("environment", ["dev", "stg", "prod"])
def test_patterns_are_valid_and_within_the_size_quota(environment):
    pattern = event_pattern(_shipped(environment))
    validate(pattern)
    assert len(json.dumps(pattern)) <= EVENT_PATTERN_MAX_CHARS


def test_largest_possible_pattern_is_within_the_size_quota():
    pattern = event_pattern(_policy(severity_labels=ALL_LABELS, include_ocsf=True))
    validate(pattern)
    assert len(json.dumps(pattern)) <= EVENT_PATTERN_MAX_CHARS


@pytest.mark.parametrize("fixture", FIXTURE_EVENTS)
@pytest.mark.parametrize("environment", ["dev", "stg", "prod"])
def test_fixture_events_pass_exactly_when_the_router_needs_them(environment, fixture):
    policy = _shipped(environment)
    ev = load_fixture(fixture)
    assert matches(event_pattern(policy), ev) is _oracle(policy, ev)


@pytest.mark.parametrize(
    ("fixture", "passes_dev_filter"),
    [
        ("asff_inspector_log4j.json", True),  # CRITICAL
        ("asff_guardduty_ssh_bruteforce.json", False),  # HIGH, active
        ("asff_guardduty_archived.json", True),  # HIGH but archived: a resolution
        ("asff_control_s3_passed.json", True),  # PASSED: a resolution
        ("asff_custom_action_two_findings.json", True),  # LOW/MEDIUM, sent by hand
        ("ocsf_detection_resolved.json", True),  # OCSF status Resolved
        ("ocsf_guardduty_detection.json", False),  # OCSF High, new
        ("ocsf_control_compliance_failed.json", True),  # OCSF Critical
        ("insight_results.json", False),  # no findings
    ],
)
def test_dev_pre_filter_on_known_events(fixture, passes_dev_filter):
    # dev pre-filters to CRITICAL: resolutions and custom actions must still pass.
    if not (FIXTURES / fixture).exists():
        pytest.skip(f"fixture {fixture} not present")
    assert matches(event_pattern(_shipped("dev")), load_fixture(fixture)) is passes_dev_filter


def _other_events() -> list[dict[str, Any]]:
    imported = event(asff(severity="CRITICAL"))
    guardduty = copy.deepcopy(imported) | {"source": "aws.guardduty", "detail-type": "GuardDuty Finding"}
    spoofed = copy.deepcopy(imported) | {"source": "custom.securityhub"}
    cloudtrail = {
        **copy.deepcopy(imported),
        "detail-type": "AWS API Call via CloudTrail",
        "detail": {"eventSource": "securityhub.amazonaws.com", "eventName": "BatchUpdateFindings"},
    }
    standard_results = copy.deepcopy(imported) | {"detail-type": "Security Hub Standard Results"}
    plain_findings = copy.deepcopy(imported) | {"detail-type": "Security Hub Findings"}
    return [guardduty, spoofed, cloudtrail, standard_results, plain_findings, load_fixture("insight_results.json")]


@pytest.mark.parametrize("environment", ["dev", "stg", "prod"])
def test_other_sources_and_detail_types_never_pass(environment):
    pattern = event_pattern(_shipped(environment))
    for ev in _other_events():
        assert not matches(pattern, ev), (ev["source"], ev["detail-type"])


def test_findings_imported_v2_is_dropped_when_ocsf_is_off():
    ocsf_event = load_fixture("ocsf_control_compliance_failed.json")
    assert matches(event_pattern(_policy(include_ocsf=True, severity_labels=None)), ocsf_event)
    assert not matches(event_pattern(_policy(include_ocsf=False, severity_labels=None)), ocsf_event)
    assert not matches(event_pattern(_policy(include_ocsf=False, severity_labels=["CRITICAL"])), ocsf_event)


@pytest.mark.parametrize(
    ("finding", "expected"),
    [
        (asff(severity="LOW"), False),
        (asff(severity="CRITICAL"), True),
        (asff(severity="LOW", RecordState="ARCHIVED"), True),
        (asff(severity="LOW", Workflow={"Status": "SUPPRESSED"}), True),
        (asff(severity="LOW", Workflow={"Status": "RESOLVED"}), True),
        (asff(severity="LOW", Workflow={"Status": "NOTIFIED"}), False),
        (asff(severity="LOW", Workflow=None, WorkflowState="RESOLVED"), True),
        (control("S3.8", "PASSED", severity="INFORMATIONAL"), True),
        (control("S3.8", "FAILED", severity="MEDIUM"), False),
        (control("S3.8", "WARNING", severity="LOW"), False),
    ],
)
def test_inline_asff_events_under_a_critical_only_filter(finding, expected):
    policy = _policy(severity_labels=["CRITICAL"])
    ev = event(finding)
    assert _oracle(policy, ev) is expected
    assert matches(event_pattern(policy), ev) is expected


def test_any_finding_of_a_multi_finding_event_lets_it_pass():
    policy = _policy(severity_labels=["HIGH"])
    quiet, loud = asff(severity="LOW"), asff(severity="HIGH")
    assert not matches(event_pattern(policy), event(quiet, quiet))
    assert matches(event_pattern(policy), event(quiet, loud))
    assert matches(event_pattern(policy), event(quiet, asff(severity="LOW", RecordState="ARCHIVED")))


# ------------------------------------------------------------------------------------------ generated events

_ASFF_TEMPLATE = asff()
_OCSF_TEMPLATE = load_fixture("ocsf_guardduty_detection.json")["detail"]["findings"][0]


LABEL_SETS = [["CRITICAL"], ["HIGH", "CRITICAL"], ["INFORMATIONAL"], ["LOW", "MEDIUM"], ALL_LABELS]
ASFF_STATES = list(
    itertools.product(
        ALL_LABELS,
        ["ACTIVE", "ARCHIVED"],
        ["NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"],
        [None, "PASSED", "WARNING", "FAILED", "NOT_AVAILABLE"],
    )
)
OCSF_STATES = list(
    itertools.product(
        sorted({i for ids in OCSF_SEVERITY_IDS.values() for i in ids}),
        [0, 1, 2, 3, 4, 5, 99],
        [0, 1, 2, 3, 99],
        [None, (1, "Pass"), (2, "Warning"), (3, "Fail"), (0, "Unknown")],
    )
)


def _asff_state(label: str, record: str, workflow: str, compliance: str | None) -> dict[str, Any]:
    finding = copy.deepcopy(_ASFF_TEMPLATE)
    finding.update(Severity={"Label": label}, RecordState=record, Workflow={"Status": workflow})
    if compliance is not None:
        finding["Compliance"] = {"Status": compliance}
    return finding


def _ocsf_state(
    severity_id: int, status_id: int, activity_id: int, compliance: tuple[int, str] | None
) -> dict[str, Any]:
    finding = copy.deepcopy(_OCSF_TEMPLATE)
    finding.update(
        severity_id=severity_id,
        severity=OCSF_SEVERITY_NAME.get(severity_id, "Other"),
        status_id=status_id,
        activity_id=activity_id,
    )
    finding.pop("compliance", None)
    if compliance is not None:
        finding["compliance"] = {"status_id": compliance[0], "status": compliance[1], "control": "S3.8"}
    return finding


@pytest.mark.parametrize("labels", LABEL_SETS, ids="+".join)
def test_every_single_finding_state_passes_exactly_when_needed(labels):
    # Exhaustive over the fields the pattern and Finding.is_resolved look at (200 ASFF and 1400 OCSF states).
    policy = _policy(severity_labels=labels, include_ocsf=True)
    pattern = event_pattern(policy)
    wrong: list[tuple[str, tuple[Any, ...]]] = []
    for state in ASFF_STATES:
        ev = event(_asff_state(*state))
        if matches(pattern, ev) is not _oracle(policy, ev):
            wrong.append(("asff", state))
    for ocsf_state in OCSF_STATES:
        ev = event(_ocsf_state(*ocsf_state), detail_type=DETAIL_TYPE_IMPORTED_V2)
        if matches(pattern, ev) is not _oracle(policy, ev):
            wrong.append(("ocsf", ocsf_state))
    assert wrong == []


@st.composite
def _security_hub_event(draw: st.DrawFn) -> dict[str, Any]:
    detail_type = draw(st.sampled_from([DETAIL_TYPE_IMPORTED, DETAIL_TYPE_CUSTOM_ACTION, DETAIL_TYPE_IMPORTED_V2]))
    if detail_type == DETAIL_TYPE_IMPORTED_V2:
        strategy = st.sampled_from(OCSF_STATES).map(lambda state: _ocsf_state(*state))
    else:
        strategy = st.sampled_from(ASFF_STATES).map(lambda state: _asff_state(*state))
    findings = draw(st.lists(strategy, min_size=1, max_size=3))
    return event(*findings, detail_type=detail_type)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ev=_security_hub_event(),
    labels=st.one_of(st.none(), st.sets(st.sampled_from(ALL_LABELS), min_size=1)),
    include_ocsf=st.booleans(),
)
def test_generated_events_pass_exactly_when_the_router_needs_them(ev, labels, include_ocsf):
    # Multi-finding events, custom actions and OCSF on/off, on top of the exhaustive single-finding check.
    policy = _policy(severity_labels=sorted(labels) if labels else None, include_ocsf=include_ocsf)
    assert matches(event_pattern(policy), ev) is _oracle(policy, ev)


def test_fixture_directory_is_present():
    # The pattern tests above lean on the shared Security Hub fixtures.
    assert Path(FIXTURES).is_dir()
    assert any(name.startswith("ocsf_") for name in FIXTURE_EVENTS)
    assert any(name.startswith("asff_") for name in FIXTURE_EVENTS)
