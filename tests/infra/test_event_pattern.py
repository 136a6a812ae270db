"""The ingestion rule's event pattern against real Security Hub events, other events, and the router's own model.

The oracle is the runtime itself: an event must pass exactly when the router would see in it a finding of the
environment's accounts that it acts on: with a severity pre-filter, one of a pre-filtered label or a resolution
(`Finding.is_resolved`); a custom action event only when it is the environment's own action.
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

from findings_router.domain.model import Severity
from findings_router.domain.normalize import ASFF_DETAIL_TYPES, OCSF_DETAIL_TYPES, SECURITYHUB_SOURCE, normalize_event
from findings_router.settings.load import load_policy
from findings_router.settings.schema import Policy
from infra.derived import deployment_problems, ingestion_filter_warning
from infra.event_patterns import (
    DETAIL_TYPE_CUSTOM_ACTION,
    DETAIL_TYPE_IMPORTED,
    DETAIL_TYPE_IMPORTED_V2,
    EVENT_PATTERN_MAX_CHARS,
    EVENT_PATTERN_MAX_SUB_PATTERNS,
    OCSF_SEVERITY_IDS,
    action_target_arn,
    action_target_properties,
    event_pattern,
    event_pattern_size,
    ingestion_filter,
)
from tests.builders import FIXTURES, asff, control, event, load_fixture
from tests.infra.conftest import REPO_ROOT, dev_policy
from tests.infra.eventbridge_matcher import expand, matches, validate
from tests.property.filter_oracle import needed

pytestmark = pytest.mark.infra

ALL_LABELS = [s.value for s in Severity]
OCSF_SEVERITY_NAME = {0: "Unknown", 1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal"}
REGION, ACCOUNT = "eu-central-1", "111122223333"  # where the test stacks' action targets live (the builders' too)
OURS, OTHER = "111122223333", "999988887777"  # an account of the test policies, and one outside them
FIXTURE_ACCOUNTS = ["111122223333", "444455556666"]  # every account the shared fixtures use
ACTION_ID = "PageOnCallTest"
# EventBridge compiles each `$or` branch into its own sub-pattern; a handful per detail-type is plenty.
MAX_SUB_PATTERNS = 20


def _policy(accounts: list[str] | None = None, custom_action: dict[str, str] | bool = True, **ingestion: Any) -> Policy:
    """dev's policy with these accounts, custom action and ingestion settings; `severity_labels=None` without a
    `filter` means no filter at all (`filter: none`), as it did before the policy's own filter."""
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["ingestion"] = {**data.get("ingestion", {}), **ingestion}
    if "severity_labels" in ingestion and ingestion["severity_labels"] is None and "filter" not in ingestion:
        data["ingestion"]["filter"] = "none"
    data["accounts"] = accounts or [OURS]
    if custom_action is True:
        data["custom_action"] = {"id": ACTION_ID, "mode": "page"}
    elif custom_action:
        data["custom_action"] = custom_action
    else:
        data.pop("custom_action", None)
    return Policy.model_validate(data)


def _shipped(environment: str) -> Policy:
    return load_policy(REPO_ROOT / "config" / f"{environment}.yaml")


def _arn(policy: Policy) -> str | None:
    """The policy's own action target, deployed in REGION and ACCOUNT."""
    action = policy.custom_action
    return action_target_arn(action.id, region=REGION, account=ACCOUNT) if action else None


def _pattern(policy: Policy) -> dict[str, Any]:
    return event_pattern(policy, action_target_arn=_arn(policy))


def _raw_account(finding: Any) -> Any:
    if not isinstance(finding, dict):
        return None
    if "AwsAccountId" in finding:
        return finding["AwsAccountId"]
    return finding.get("cloud", {}).get("account", {}).get("uid")


def _oracle(policy: Policy, ev: dict[str, Any]) -> bool:
    """Whether the router needs this event, by the router's own reading of it."""
    if ev.get("source") != SECURITYHUB_SOURCE:
        return False
    detail_type = ev.get("detail-type")
    if detail_type == DETAIL_TYPE_IMPORTED_V2 and not policy.ingestion.include_ocsf:
        return False
    if detail_type not in ASFF_DETAIL_TYPES | OCSF_DETAIL_TYPES:
        return False
    raw_findings = ev["detail"]["findings"]
    in_scope = [f for f in raw_findings if policy.all_accounts or _raw_account(f) in policy.accounts]
    if detail_type == DETAIL_TYPE_CUSTOM_ACTION:
        # Only this environment's own action, and only for findings of its accounts.
        return _arn(policy) in ev.get("resources", []) and bool(in_scope)
    labels = policy.ingestion.severity_labels
    if not labels:
        return bool(in_scope)
    normalized = normalize_event(ev)
    scoped = [f for f in normalized.findings if policy.in_scope(f.account)]
    if any(f.is_resolved or f.severity in labels for f in scoped):
        return True
    # A finding the router cannot normalize is still wanted when its label is pre-filtered: the router logs and
    # dead-letters it, which is how a broken producer gets noticed. Only the raw label can say so here.
    return bool(normalized.errors) and any(f.get("Severity", {}).get("Label") in labels for f in in_scope)


FIXTURE_EVENTS = sorted(p.name for p in FIXTURES.glob("*.json") if p.name.startswith(("asff_", "ocsf_", "insight_")))


def test_detail_types_are_the_ones_the_router_reads():
    assert {DETAIL_TYPE_IMPORTED, DETAIL_TYPE_CUSTOM_ACTION} == ASFF_DETAIL_TYPES
    assert {DETAIL_TYPE_IMPORTED_V2} == OCSF_DETAIL_TYPES


# ------------------------------------------------------------------------------------------ quotas


@pytest.mark.parametrize("environment", ["dev", "stg", "prod"])
def test_patterns_are_valid_and_within_the_size_quota(environment):
    policy = _shipped(environment)
    pattern = _pattern(policy)
    validate(pattern)
    assert len(json.dumps(pattern)) <= event_pattern_size(policy) <= EVENT_PATTERN_MAX_CHARS
    assert len(expand(pattern)) <= EVENT_PATTERN_MAX_SUB_PATTERNS
    chosen = ingestion_filter(policy)
    assert not chosen.coarsened and ingestion_filter_warning(policy) is None
    assert (chosen.size, chosen.sub_patterns) == (event_pattern_size(policy), len(expand(pattern)))


def test_largest_configurable_pattern_is_within_the_quotas():
    # Every label, OCSF, a custom action, and as many accounts as fit: deployment_problems refuses one more.
    accounts = [str(100000000000 + i) for i in range(18)]
    policy = _policy(accounts=accounts, severity_labels=ALL_LABELS, include_ocsf=True)
    pattern = _pattern(policy)
    validate(pattern)
    assert event_pattern_size(policy) <= EVENT_PATTERN_MAX_CHARS
    assert deployment_problems(policy) == []
    assert len(expand(pattern)) <= MAX_SUB_PATTERNS  # accounts add no branch: one list per finding type
    one_more = _policy(accounts=[*accounts, "100000000018"], severity_labels=ALL_LABELS, include_ocsf=True)
    assert event_pattern_size(one_more) > EVENT_PATTERN_MAX_CHARS
    (problem,) = deployment_problems(one_more)
    assert problem.startswith("accounts: 19 accounts make the ingestion rule's event pattern")


def test_pattern_size_allows_for_the_longest_action_target_arn():
    policy = _policy()
    longest = action_target_arn(ACTION_ID, region="ap-southeast-5", account="123456789012", partition="aws-iso-b")
    assert len(json.dumps(event_pattern(policy, action_target_arn=longest))) <= event_pattern_size(policy)


# ------------------------------------------------------------------------------------------ shape


def test_an_environment_of_every_account_has_no_account_condition():
    pattern = _pattern(_policy(accounts=["*"], custom_action=False, severity_labels=None))
    assert pattern == {"source": [SECURITYHUB_SOURCE], "detail-type": [DETAIL_TYPE_IMPORTED, DETAIL_TYPE_IMPORTED_V2]}


def test_a_single_remaining_branch_is_written_without_or():
    # EventBridge wants at least two objects in an `$or`: no custom action, no OCSF leaves one branch.
    pattern = _pattern(_policy(custom_action=False, include_ocsf=False, severity_labels=None))
    validate(pattern)
    assert pattern == {
        "source": [SECURITYHUB_SOURCE],
        "detail-type": [DETAIL_TYPE_IMPORTED],
        "detail": {"findings": {"AwsAccountId": [OURS]}},
    }


def test_accounts_are_sorted_and_listed_once_per_finding_type():
    pattern = _pattern(_policy(accounts=["222233334444", "111122223333"], severity_labels=None))
    text = json.dumps(pattern)
    assert text.count('["111122223333", "222233334444"]') == 3  # ASFF, custom action, OCSF
    assert "222233334444" in json.dumps(pattern["$or"][2]["detail"]["findings"]["cloud"]["account"]["uid"])


def test_a_policy_with_a_custom_action_needs_its_arn():
    with pytest.raises(ValueError, match="action_target_arn"):
        event_pattern(_policy())


# ------------------------------------------------------------------------------------------ shipped files


@pytest.mark.parametrize("fixture", FIXTURE_EVENTS)
@pytest.mark.parametrize("environment", ["dev", "stg", "prod"])
def test_fixture_events_pass_exactly_when_the_router_needs_them(environment, fixture):
    policy = _shipped(environment)
    ev = load_fixture(fixture)
    if policy.ingestion.effective_filter != "policy":
        assert matches(_pattern(policy), ev) is _oracle(policy, ev)
        return
    # The policy's own filter admits every event the router acts on (tests/property/test_ingestion_filter.py proves
    # it over generated findings) and nothing of other accounts, foreign custom actions or other detail-types.
    if ev.get("detail-type") in (DETAIL_TYPE_IMPORTED, DETAIL_TYPE_IMPORTED_V2) and needed(policy, ev):
        assert matches(_pattern(policy), ev)
    if not _oracle(_policy_without_filter(policy), ev):
        assert not matches(_pattern(policy), ev)


def _policy_without_filter(policy: Policy) -> Policy:
    return policy.model_copy(update={"ingestion": policy.ingestion.model_copy(update={"filter": "none"})})


@pytest.mark.parametrize("fixture", FIXTURE_EVENTS)
@pytest.mark.parametrize("labels", [None, ["CRITICAL"]])
def test_fixture_events_of_in_scope_accounts(fixture, labels):
    policy = _policy(accounts=FIXTURE_ACCOUNTS, severity_labels=labels)
    ev = load_fixture(fixture)
    assert matches(_pattern(policy), ev) is _oracle(policy, ev)


@pytest.mark.parametrize(
    ("fixture", "passes_critical_filter"),
    [
        ("asff_inspector_log4j.json", True),  # CRITICAL
        ("asff_guardduty_ssh_bruteforce.json", False),  # HIGH, active
        ("asff_guardduty_archived.json", True),  # HIGH but archived: a resolution
        ("asff_control_s3_passed.json", True),  # PASSED: a resolution
        ("asff_custom_action_two_findings.json", False),  # another tool's custom action
        ("ocsf_detection_resolved.json", True),  # OCSF status Resolved
        ("ocsf_guardduty_detection.json", False),  # OCSF High, new
        ("ocsf_control_compliance_failed.json", True),  # OCSF Critical
        ("insight_results.json", False),  # no findings
    ],
)
def test_critical_pre_filter_on_known_events(fixture, passes_critical_filter):
    # Resolutions must pass a CRITICAL-only filter; custom actions pass only when they are the environment's own.
    if not (FIXTURES / fixture).exists():
        pytest.skip(f"fixture {fixture} not present")
    policy = _policy(accounts=FIXTURE_ACCOUNTS, severity_labels=["CRITICAL"])
    assert matches(_pattern(policy), load_fixture(fixture)) is passes_critical_filter


def _other_events() -> list[dict[str, Any]]:
    imported = event(asff(severity="CRITICAL", account=OURS))
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


@pytest.mark.parametrize("accounts", [[OURS], ["*"]])
def test_other_sources_and_detail_types_never_pass(accounts):
    pattern = _pattern(_policy(accounts=accounts, severity_labels=None))
    for ev in _other_events():
        assert not matches(pattern, ev), (ev["source"], ev["detail-type"])


def test_findings_imported_v2_is_dropped_when_ocsf_is_off():
    ocsf_event = load_fixture("ocsf_control_compliance_failed.json")
    accounts = FIXTURE_ACCOUNTS
    assert matches(_pattern(_policy(accounts, include_ocsf=True, severity_labels=None)), ocsf_event)
    assert not matches(_pattern(_policy(accounts, include_ocsf=False, severity_labels=None)), ocsf_event)
    assert not matches(_pattern(_policy(accounts, include_ocsf=False, severity_labels=["CRITICAL"])), ocsf_event)


# ------------------------------------------------------------------------------------------ accounts


def _ocsf(account: str, severity_id: int = 5, status_id: int = 1) -> dict[str, Any]:
    finding = copy.deepcopy(_OCSF_TEMPLATE)
    finding.update(severity_id=severity_id, severity=OCSF_SEVERITY_NAME[severity_id], status_id=status_id)
    finding["cloud"] = {**finding["cloud"], "account": {**finding["cloud"]["account"], "uid": account}}
    return finding


@pytest.mark.parametrize("labels", [None, ["CRITICAL"]])
def test_only_findings_of_the_environments_accounts_pass(labels):
    policy = _policy(accounts=[OURS, "222233334444"], severity_labels=labels)
    pattern = _pattern(policy)
    assert matches(pattern, event(asff(severity="CRITICAL", account=OURS)))
    assert matches(pattern, event(asff(severity="CRITICAL", account="222233334444")))
    assert not matches(pattern, event(asff(severity="CRITICAL", account=OTHER)))
    assert matches(pattern, event(_ocsf(OURS), detail_type=DETAIL_TYPE_IMPORTED_V2))
    assert not matches(pattern, event(_ocsf(OTHER), detail_type=DETAIL_TYPE_IMPORTED_V2))
    # A resolution of another account's finding is not ours to resolve either.
    assert not matches(pattern, event(asff(severity="LOW", account=OTHER, RecordState="ARCHIVED")))
    # Every account: no condition at all.
    everyone = _pattern(_policy(accounts=["*"], severity_labels=labels))
    assert matches(everyone, event(asff(severity="CRITICAL", account=OTHER)))
    assert matches(everyone, event(_ocsf(OTHER), detail_type=DETAIL_TYPE_IMPORTED_V2))


def test_account_and_severity_must_be_those_of_one_finding():
    # Array consistency: our LOW finding next to another account's CRITICAL one does not pass a CRITICAL filter.
    policy = _policy(severity_labels=["CRITICAL"])
    pattern = _pattern(policy)
    mixed = event(asff(severity="LOW", account=OURS), asff(severity="CRITICAL", account=OTHER))
    assert _oracle(policy, mixed) is False
    assert not matches(pattern, mixed)
    archived_elsewhere = event(
        asff(severity="LOW", account=OURS), asff(severity="LOW", account=OTHER, RecordState="ARCHIVED")
    )
    assert not matches(pattern, archived_elsewhere)
    assert matches(pattern, event(asff(severity="LOW", account=OTHER), asff(severity="CRITICAL", account=OURS)))
    ocsf_mixed = event(_ocsf(OURS, severity_id=2), _ocsf(OTHER, severity_id=5), detail_type=DETAIL_TYPE_IMPORTED_V2)
    assert not matches(pattern, ocsf_mixed)


# ------------------------------------------------------------------------------------------ custom action


def _custom_action(*findings: dict[str, Any], arn: str | None) -> dict[str, Any]:
    return event(*findings, detail_type=DETAIL_TYPE_CUSTOM_ACTION, resources=[arn] if arn else [], actionName="x")


@pytest.mark.parametrize("labels", [None, ["CRITICAL"]])
def test_only_the_environments_own_custom_action_passes(labels):
    policy = _policy(severity_labels=labels)
    pattern = _pattern(policy)
    ours = _arn(policy)
    assert ours == f"arn:aws:securityhub:{REGION}:{ACCOUNT}:action/custom/{ACTION_ID}"
    low = asff(severity="LOW", account=OURS)
    # Whatever the severity: an operator asked.
    assert matches(pattern, _custom_action(low, arn=ours))
    for other in (
        action_target_arn("Remediate", region=REGION, account=ACCOUNT),  # another tool's action
        action_target_arn(f"X{ACTION_ID}", region=REGION, account=ACCOUNT),  # an id that merely ends like ours
        action_target_arn(ACTION_ID, region="eu-west-1", account=ACCOUNT),  # the same id, another region
        action_target_arn(ACTION_ID, region=REGION, account=OTHER),  # the same id, another account
        None,  # no action ARN at all
    ):
        assert not matches(pattern, _custom_action(low, arn=other)), other
    # Our action, but only another account's findings: not ours to page.
    assert not matches(pattern, _custom_action(asff(severity="CRITICAL", account=OTHER), arn=ours))
    assert matches(pattern, _custom_action(asff(account=OTHER), low, arn=ours))


def test_without_a_custom_action_no_custom_action_event_passes():
    policy = _policy(accounts=["*"], custom_action=False, severity_labels=None)
    pattern = _pattern(policy)
    assert DETAIL_TYPE_CUSTOM_ACTION not in json.dumps(pattern)
    any_arn = action_target_arn(ACTION_ID, region=REGION, account=ACCOUNT)
    assert not matches(pattern, _custom_action(asff(severity="CRITICAL"), arn=any_arn))
    assert not matches(pattern, load_fixture("asff_custom_action_two_findings.json"))


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
    assert matches(_pattern(policy), ev) is expected


def test_any_finding_of_a_multi_finding_event_lets_it_pass():
    policy = _policy(severity_labels=["HIGH"])
    quiet, loud = asff(severity="LOW"), asff(severity="HIGH")
    assert not matches(_pattern(policy), event(quiet, quiet))
    assert matches(_pattern(policy), event(quiet, loud))
    assert matches(_pattern(policy), event(quiet, asff(severity="LOW", RecordState="ARCHIVED")))


@pytest.mark.parametrize("mode", ["page", "notify", "policy"])
@pytest.mark.parametrize("environment", ["prod", "staging", "a" * 16])
def test_action_target_tells_operators_what_it_does(mode, environment):
    policy = dev_policy(environment, custom_action={"id": "PageOnCallX", "mode": mode})
    properties = action_target_properties(policy)
    assert properties is not None
    assert properties["Id"] == "PageOnCallX"
    # Security Hub: Name up to 20 characters; the console shows the Description next to it (up to 256).
    assert 0 < len(properties["Name"]) <= 20
    assert 0 < len(properties["Description"]) <= 256
    verb = {"page": "Page", "notify": "Notify", "policy": "Send to"}[mode]
    assert properties["Name"].startswith(verb)
    assert environment in properties["Description"]
    assert "on-call" in properties["Description"]
    if len(f"{verb} on-call {environment}") <= 20:
        assert properties["Name"] == f"{verb} on-call {environment}"
    if mode == "notify":
        assert "low urgency" in properties["Description"]


def test_shipped_action_targets():
    names = {
        env: action_target_properties(load_policy(REPO_ROOT / "config" / f"{env}.yaml")) for env in ("dev", "prod")
    }
    assert names["prod"] is not None and names["prod"]["Name"] == "Page on-call prod"
    assert names["dev"] is not None and names["dev"]["Name"] == "Notify on-call dev"
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data.pop("custom_action")
    assert action_target_properties(Policy.model_validate(data)) is None


# ------------------------------------------------------------------------------------------ generated events

_ASFF_TEMPLATE = asff(account=OURS)
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


def _asff_state(label: str, record: str, workflow: str, compliance: str | None, account: str = OURS) -> dict[str, Any]:
    finding = copy.deepcopy(_ASFF_TEMPLATE)
    finding.update(Severity={"Label": label}, RecordState=record, Workflow={"Status": workflow}, AwsAccountId=account)
    if compliance is not None:
        finding["Compliance"] = {"Status": compliance}
    return finding


def _ocsf_state(
    severity_id: int, status_id: int, activity_id: int, compliance: tuple[int, str] | None, account: str = OURS
) -> dict[str, Any]:
    finding = copy.deepcopy(_OCSF_TEMPLATE)
    finding.update(
        severity_id=severity_id,
        severity=OCSF_SEVERITY_NAME.get(severity_id, "Other"),
        status_id=status_id,
        activity_id=activity_id,
    )
    finding["cloud"] = {**finding["cloud"], "account": {**finding["cloud"]["account"], "uid": account}}
    finding.pop("compliance", None)
    if compliance is not None:
        finding["compliance"] = {"status_id": compliance[0], "status": compliance[1], "control": "S3.8"}
    return finding


@pytest.mark.parametrize("account", [OURS, OTHER])
@pytest.mark.parametrize("labels", LABEL_SETS, ids="+".join)
def test_every_single_finding_state_passes_exactly_when_needed(labels, account):
    # Exhaustive over the fields the pattern and Finding.is_resolved look at (200 ASFF and 1400 OCSF states), for
    # a finding of the environment's account and one of another account.
    policy = _policy(severity_labels=labels, include_ocsf=True)
    pattern = _pattern(policy)
    wrong: list[tuple[str, tuple[Any, ...]]] = []
    for state in ASFF_STATES:
        ev = event(_asff_state(*state, account=account))
        if matches(pattern, ev) is not _oracle(policy, ev):
            wrong.append(("asff", state))
    for ocsf_state in OCSF_STATES:
        ev = event(_ocsf_state(*ocsf_state, account=account), detail_type=DETAIL_TYPE_IMPORTED_V2)
        if matches(pattern, ev) is not _oracle(policy, ev):
            wrong.append(("ocsf", ocsf_state))
    assert wrong == []


ACTION_ARNS = [
    action_target_arn(ACTION_ID, region=REGION, account=ACCOUNT),
    action_target_arn("Remediate", region=REGION, account=ACCOUNT),
    action_target_arn(ACTION_ID, region="us-east-1", account=ACCOUNT),
]


@st.composite
def _security_hub_event(draw: st.DrawFn) -> dict[str, Any]:
    detail_type = draw(st.sampled_from([DETAIL_TYPE_IMPORTED, DETAIL_TYPE_CUSTOM_ACTION, DETAIL_TYPE_IMPORTED_V2]))
    accounts = st.sampled_from([OURS, "222233334444", OTHER])
    if detail_type == DETAIL_TYPE_IMPORTED_V2:
        strategy = st.tuples(st.sampled_from(OCSF_STATES), accounts).map(lambda s: _ocsf_state(*s[0], account=s[1]))
    else:
        strategy = st.tuples(st.sampled_from(ASFF_STATES), accounts).map(lambda s: _asff_state(*s[0], account=s[1]))
    findings = draw(st.lists(strategy, min_size=1, max_size=3))
    resources = [draw(st.sampled_from(ACTION_ARNS))] if detail_type == DETAIL_TYPE_CUSTOM_ACTION else None
    return event(*findings, detail_type=detail_type, resources=resources)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ev=_security_hub_event(),
    labels=st.one_of(st.none(), st.sets(st.sampled_from(ALL_LABELS), min_size=1)),
    include_ocsf=st.booleans(),
    accounts=st.sampled_from([[OURS], [OURS, "222233334444"], ["*"]]),
    custom_action=st.booleans(),
)
def test_generated_events_pass_exactly_when_the_router_needs_them(ev, labels, include_ocsf, accounts, custom_action):
    # Multi-finding events of several accounts, custom actions (ours, others'), OCSF on/off, with and without a
    # custom action, on top of the exhaustive single-finding check.
    policy = _policy(
        accounts=accounts,
        custom_action=custom_action,
        severity_labels=sorted(labels) if labels else None,
        include_ocsf=include_ocsf,
    )
    pattern = _pattern(policy)
    assert matches(pattern, ev) is _oracle(policy, ev)
    # The compiled form (one sub-pattern per `$or` branch) decides the same.
    assert any(matches(branch, ev) for branch in expand(pattern)) is matches(pattern, ev)


def test_fixture_directory_is_present():
    # The pattern tests above lean on the shared Security Hub fixtures.
    assert Path(FIXTURES).is_dir()
    assert any(name.startswith("ocsf_") for name in FIXTURE_EVENTS)
    assert any(name.startswith("asff_") for name in FIXTURE_EVENTS)


# ------------------------------------------------------------------------------------------ the canary


def test_the_environments_canary_passes_the_rule_from_any_account_and_whatever_the_pre_filter():
    import datetime as dt

    from findings_router.domain.canary import synthetic_finding

    at = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    # The deploying account need not be one of `accounts`; dev pre-filters CRITICAL, the canary is INFORMATIONAL.
    policy = dev_policy(canary={"enabled": True, "routing_key_secret": "findings-router/dev/canary"})
    pattern = event_pattern(policy, action_target_arn="arn:aws:securityhub:eu-central-1:444455556666:action/custom/X")
    validate(pattern)
    own = synthetic_finding("dev", account="999988887777", region="eu-central-1", partition="aws", now=at)
    other = synthetic_finding("prod", account="999988887777", region="eu-central-1", partition="aws", now=at)
    assert matches(pattern, event(own))
    assert not matches(pattern, event(other))  # another environment's canary stays out of this queue
    # Without a canary key the router could not page it: the rule does not admit it either.
    assert not matches(event_pattern(dev_policy(), action_target_arn="arn:x"), event(own))


# ------------------------------------------------------------------------------------------ the policy's filter
# (tests/property/test_ingestion_filter.py proves it admits whatever the router acts on; these pin its shape)


def _rules_policy(*rules: dict[str, Any], **ingestion: Any) -> Policy:
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["accounts"] = [OURS]
    data["rules"] = [{"name": f"r{i}", **rule} for i, rule in enumerate(rules)]
    data["ingestion"] = {"filter": "policy", **ingestion}
    return Policy.model_validate(data)


def _findings_or(pattern: dict[str, Any], detail_type: str) -> list[dict[str, Any]]:
    (branch,) = [b for b in pattern["$or"] if b["detail-type"] == [detail_type] and "resources" not in b]
    findings = branch["detail"]["findings"]
    return findings.get("$or", [findings])


def test_the_filter_setting():
    assert _rules_policy({"action": "page"}).ingestion.effective_filter == "policy"
    assert dev_policy().ingestion.effective_filter == "severity"  # dev lists severity_labels
    with pytest.raises(ValueError, match="filter severity needs severity_labels"):
        _rules_policy({"action": "page"}, filter="severity")
    with pytest.raises(ValueError, match="severity_labels are for filter severity"):
        _rules_policy({"action": "page"}, severity_labels=["HIGH"])


def test_a_rule_matching_everything_leaves_only_the_accounts():
    for rules in ([{"action": "notify"}], [{"action": "page", "match": {"title": ["a*b"]}}]):
        assert _pattern(_rules_policy(*rules)) == _pattern(_rules_policy(*rules, filter="none")), rules


def test_drop_rules_and_suppressions_add_nothing():
    paging = {"action": "page", "match": {"severity": ["CRITICAL"]}}
    dropping = {"action": "drop", "match": {"product": ["Macie"]}}
    assert _pattern(_rules_policy(dropping, paging)) == _pattern(_rules_policy(paging))


def test_wildcards_become_prefixes_and_suffixes_or_widen():
    policy = _rules_policy(
        {"action": "page", "match": {"finding_type": ["TTPs/*"], "product": ["*/guardduty", "Guard*"]}},
        {"action": "page", "match": {"finding_type": ["TTPs/*/x"], "severity": ["HIGH"]}},
    )
    fragments = _findings_or(_pattern(policy), DETAIL_TYPE_IMPORTED)
    text = json.dumps(fragments)
    assert '{"prefix": "TTPs/"}' in text and '{"suffix": "/guardduty"}' in text and '{"prefix": "Guard"}' in text
    assert "TTPs/*/x" not in text  # untestable: the second rule filters on its severity alone
    assert {"Severity": {"Label": ["HIGH", {"exists": False}]}} in fragments


def test_products_by_name_or_arn_in_both_formats():
    arn = "arn:aws:securityhub:eu-central-1::product/aws/inspector"
    pattern = _pattern(_rules_policy({"action": "page", "match": {"product": ["GuardDuty", arn]}}))
    asff_fragments = _findings_or(pattern, DETAIL_TYPE_IMPORTED)
    assert {"ProductName": ["GuardDuty", "", {"exists": False}]} in asff_fragments
    assert {"ProductArn": [arn]} in asff_fragments
    ocsf = json.dumps(_findings_or(pattern, DETAIL_TYPE_IMPORTED_V2))
    assert arn.replace(":product/", ":productv2/") in ocsf
    v2 = load_fixture("ocsf_inspector_vulnerability.json")
    v2["detail"]["findings"][0]["cloud"]["account"]["uid"] = OURS
    v2["detail"]["findings"][0]["metadata"]["product"] = {
        "name": "Amazon Inspector",
        "uid": "arn:aws:securityhub:eu-central-1::productv2/aws/inspector",
    }
    assert matches(pattern, v2)  # by its productv2 ARN


def test_conditions_on_one_array_keep_the_most_selective():
    # normalize folds over all vulnerabilities: exploit and CVSS may hold on two of them, which one EventBridge object
    # pattern cannot say; the exploit condition alone is kept (a superset).
    pattern = _pattern(_rules_policy({"action": "page", "match": {"exploit_available": True, "min_cvss": 7.0}}))
    assert _findings_or(pattern, DETAIL_TYPE_IMPORTED)[0] == {"Vulnerabilities": {"ExploitAvailable": ["YES"]}}
    two = event(
        asff(
            account=OURS,
            severity="LOW",
            Vulnerabilities=[{"Id": "CVE-1", "ExploitAvailable": "YES"}, {"Id": "CVE-2", "Cvss": [{"BaseScore": 8.1}]}],
        )
    )
    assert matches(pattern, two)


def test_a_too_rich_policy_falls_back_with_a_warning():
    rules = [
        {"action": "page", "match": {"severity": ["HIGH"], "product": [f"Product{i}"], "control_id": [f"C.{i}"]}}
        for i in range(6)
    ]
    policy = _rules_policy(*rules)
    chosen = ingestion_filter(policy)
    assert (chosen.requested, chosen.level, chosen.labels) == ("policy", "severity", (Severity.HIGH,))
    assert chosen.size <= EVENT_PATTERN_MAX_CHARS and chosen.sub_patterns <= EVENT_PATTERN_MAX_SUB_PATTERNS
    warning = ingestion_filter_warning(policy)
    assert warning is not None and "filters on the labels the rules page (HIGH)" in warning
    # Fewer rules fit once their three-way control conditions are left out.
    three = _rules_policy(*rules[:3])
    assert ingestion_filter(three).level == "policy"
    assert ingestion_filter(three).widened == ("rule r0: control_id", "rule r1: control_id", "rule r2: control_id")


def test_noted_resolutions_leave_out_the_passed_results_of_findings_nobody_paged():
    policy = _rules_policy({"action": "page", "match": {"severity": ["CRITICAL"]}}, resolutions="noted")
    pattern = _pattern(policy)
    passed = control("S3.8", "PASSED", severity="INFORMATIONAL", account=OURS, Workflow={"Status": "RESOLVED"})
    assert not matches(pattern, event(passed))  # a daily re-evaluation of a control nobody paged
    noted = {**passed, "Note": {"Text": "Paged on-call via PagerDuty", "UpdatedBy": "findings-router"}}
    assert matches(pattern, event(noted))
    for resolution in (
        asff(severity="LOW", account=OURS, RecordState="ARCHIVED"),
        asff(severity="LOW", account=OURS, Workflow={"Status": "RESOLVED"}),
        control("S3.8", "FAILED", severity="LOW", account=OURS, Workflow={"Status": "SUPPRESSED"}),
    ):
        assert matches(pattern, event(resolution)), resolution
    ocsf_passed = _ocsf_state(1, 4, 2, (1, "Pass"))
    assert not matches(pattern, event(ocsf_passed, detail_type=DETAIL_TYPE_IMPORTED_V2))
    assert matches(pattern, event({**ocsf_passed, "comment": "Paged"}, detail_type=DETAIL_TYPE_IMPORTED_V2))
    assert matches(pattern, event(_ocsf_state(2, 5, 2, None), detail_type=DETAIL_TYPE_IMPORTED_V2))
    # The router notes findings only with its write-back on.
    data = policy.model_dump(mode="json", exclude_none=True)
    data["securityhub"] = {"writeback": False}
    (problem,) = [p for p in deployment_problems(Policy.model_validate(data)) if p.startswith("ingestion.resolutions")]
    assert "securityhub.writeback" in problem
