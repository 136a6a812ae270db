"""The policy's ingestion filter (`ingestion.filter: policy`) never hides a finding the router would act on.

Property: for every event and policy, if the router would page or notify a finding of it (live or shadow view), or
it is a resolution of the environment's accounts, the EventBridge pattern compiled from the policy admits the event
(with the project's own matcher, tests/infra/eventbridge_matcher.py). Over the fixture corpus (tests/fixtures and the
demo's day, findings_router_local/corpus) against each shipped policy and generated ones, and over generated ASFF
and OCSF findings; then every resolution of a finding that pages must pass too. Each pattern also stays within
EventBridge's size quota and our sub-pattern budget (coarsened, never refused, when a policy is too rich).

Generated values are those Security Hub documents (ASFF's upper-case enums, numeric CVSS and EPSS scores); the
wildcards of policy conditions include forms EventBridge cannot test (`a*b`, `?`), which must widen, not narrow.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from findings_router.settings.load import load_policy
from findings_router.settings.schema import Policy, Rule
from infra.event_patterns import (
    DETAIL_TYPE_IMPORTED,
    DETAIL_TYPE_IMPORTED_V2,
    EVENT_PATTERN_MAX_CHARS,
    EVENT_PATTERN_MAX_SUB_PATTERNS,
    action_target_arn,
    event_pattern,
    event_pattern_size,
    ingestion_filter,
)
from tests.builders import FIXTURES, asff, event, load_fixture
from tests.infra.eventbridge_matcher import expand, matches, validate
from tests.property.filter_oracle import needed, views

REPO = Path(__file__).resolve().parents[2]
OURS, SECOND, OTHER = "111122223333", "444455556666", "999988887777"
ARN = action_target_arn("PageOnCallTest", region="eu-central-1", account=OURS)

# ------------------------------------------------------------------------------------------ the corpus


def _corpus() -> list[dict[str, Any]]:
    events = [
        load_fixture(p.name)
        for p in sorted(FIXTURES.glob("*.json"))
        if p.name.startswith(("asff_", "ocsf_")) and isinstance(load_fixture(p.name), dict)
    ]
    day = REPO / "findings_router_local" / "corpus" / "iot-platform-day.jsonl"
    events += [json.loads(line) for line in day.read_text().splitlines() if line.strip()]
    return [e for e in events if e.get("detail-type") in (DETAIL_TYPE_IMPORTED, DETAIL_TYPE_IMPORTED_V2)]


CORPUS = _corpus()


def _pattern(policy: Policy) -> dict[str, Any]:
    return event_pattern(policy, action_target_arn=ARN if policy.custom_action else None)


def _admits_what_the_router_needs(policy: Policy, events: list[dict[str, Any]]) -> None:
    pattern = _pattern(policy)
    validate(pattern)
    compiled = views(policy)
    missed = [
        e["detail"]["findings"]
        for e in events
        if not (e["detail-type"] == DETAIL_TYPE_IMPORTED_V2 and not policy.ingestion.include_ocsf)
        and needed(policy, e, compiled)
        and not matches(pattern, e)
    ]
    assert missed == [], json.dumps(pattern)[:2000]


def _within_the_quota(policy: Policy) -> None:
    pattern = _pattern(policy)
    assert event_pattern_size(policy) <= EVENT_PATTERN_MAX_CHARS
    assert len(expand(pattern)) <= EVENT_PATTERN_MAX_SUB_PATTERNS


@pytest.mark.parametrize("environment", ["dev", "stg", "prod"])
def test_the_shipped_policies_compiled_admit_every_corpus_event_they_act_on(environment):
    shipped = load_policy(REPO / "config" / f"{environment}.yaml")
    # As shipped (dev and stg pre-filter by severity), and with the policy's own filter; for the corpus' accounts.
    for policy in (shipped, _with(shipped, accounts=[OURS, SECOND], ingestion={"filter": "policy"})):
        _admits_what_the_router_needs(policy, CORPUS)
        _within_the_quota(policy)


def test_prod_filters_on_its_rules():
    policy = load_policy(REPO / "config" / "prod.yaml")
    chosen = ingestion_filter(policy)
    assert (chosen.requested, chosen.level, chosen.widened, chosen.reason) == ("policy", "policy", (), None)
    pattern = _pattern(policy)
    low = event(asff(severity="LOW", account=OURS))
    medium_inspector = event(asff(product="inspector", severity="MEDIUM", account=OURS))
    assert not matches(pattern, low)
    assert not matches(pattern, medium_inspector)
    assert matches(pattern, event(asff(severity="MEDIUM", account=OURS)))  # GuardDuty MEDIUM: notify
    assert matches(pattern, event(asff(severity="LOW", account=OURS, RecordState="ARCHIVED")))


# ------------------------------------------------------------------------------------------ generated policies

PRODUCTS = {  # ProductName → ProductArn's product part
    "GuardDuty": "aws/guardduty",
    "Inspector": "aws/inspector",
    "Security Hub": "aws/securityhub",
    "Config": "aws/config",
    "Prowler": "prowler/prowler",
}
CONTROLS = ["S3.8", "IAM.6", "EC2.19", "Config.1"]
TYPES = [
    "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce",
    "Software and Configuration Checks/Vulnerabilities/CVE",
    "Software and Configuration Checks/Industry and Regulatory Standards",
]
REGIONS = ["eu-central-1", "us-east-1"]
RESOURCES = [
    ("AwsEc2Instance", "AWS::EC2::Instance", f"arn:aws:ec2:eu-central-1:{OURS}:instance/i-0abc", "i-0abc"),
    ("AwsS3Bucket", "AWS::S3::Bucket", "arn:aws:s3:::iot-telemetry-raw", "iot-telemetry-raw"),
    ("AwsAccount", "AWS::::Account", f"AWS::::Account:{OURS}", OURS),
]
CVES = ["CVE-2021-44228", "CVE-2024-3094", "CVE-2018-18074"]
TITLES = ["SSH brute force attacks against i-0abc", "CVE-2021-44228 - log4j-core", "S3.8 control failed"]
LABELS = ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]


def _product_arn(product: str, region: str = "eu-central-1") -> str:
    return f"arn:aws:securityhub:{region}::product/{PRODUCTS[product]}"


def _wild(values: list[str], forms: list[str]) -> st.SearchStrategy[list[str]]:
    """Policy patterns: exact values, and wildcard forms (prefix, suffix and untestable ones)."""
    return st.lists(st.sampled_from([*values, *forms]), min_size=1, max_size=3, unique=True)


MATCH = st.fixed_dictionaries(
    {},
    optional={
        "severity": st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True),
        "min_severity": st.sampled_from(LABELS),
        "product": _wild(
            list(PRODUCTS), ["Guard*", "*Hub", "?nspector", _product_arn("Inspector"), "arn:aws:securityhub:*"]
        ),
        "generator_id": _wild(["security-control/S3.8", "arn:aws:guardduty:generator", "AWSInspector"], ["security-*"]),
        "control_id": _wild(CONTROLS, ["S3.*", "*.6", "IAM.?"]),
        "finding_type": _wild(TYPES, ["TTPs/*", "Software and Configuration Checks/*", "*CVE"]),
        "account": st.lists(st.sampled_from([OURS, SECOND, OTHER]), min_size=1, max_size=2, unique=True),
        "region": _wild(REGIONS, ["eu-*", "*-1"]),
        "resource_type": _wild([r[0] for r in RESOURCES] + [r[1] for r in RESOURCES], ["AwsEc2*", "*Bucket"]),
        "resource_id": _wild([r[2] for r in RESOURCES], ["arn:aws:s3:::*", "*i-0abc"]),
        "resource_tag": st.lists(
            st.tuples(st.sampled_from(["env", "team", "a.b"]), st.sampled_from(["prod", "*", "iot-*", "dev"])),
            min_size=1,
            max_size=2,
            unique_by=lambda tag: tag[0],
        ).map(dict),
        "min_cvss": st.sampled_from([4.0, 7.0, 9.0, 9.8]),
        "cve_id": _wild(CVES, ["CVE-2021-*", "*3094"]),
        "exploit_available": st.booleans(),
        "fix_available": st.lists(st.sampled_from(["YES", "NO", "PARTIAL"]), min_size=1, max_size=2, unique=True),
        "min_epss": st.sampled_from([0.0, 0.1, 0.5, 0.9]),
        "title": _wild(TITLES, ["CVE-*", "*i-0abc", "S3.? control*"]),
        "sample": st.booleans(),
    },
).filter(bool)

RULES = st.lists(
    st.fixed_dictionaries(
        {"action": st.sampled_from(["page", "notify", "drop"]), "match": MATCH},
        optional={"shadow": st.booleans()},
    ),
    min_size=1,
    max_size=4,
)


@functools.cache
def _dev_data() -> str:
    return (REPO / "config" / "dev.yaml").read_text()


def _with(policy: Policy, **changes: Any) -> Policy:
    data = policy.model_dump(mode="json", exclude_none=True)
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    if data.get("ingestion", {}).get("filter") == "policy":
        data["ingestion"].pop("severity_labels", None)
    return Policy.model_validate(data)


def _policy(
    rules: list[dict[str, Any]],
    *,
    accounts: list[str],
    include_ocsf: bool = True,
    default_action: str = "drop",
    shadow_mode: bool = False,
    suppress: dict[str, Any] | None = None,
    resolutions: str = "all",
) -> Policy:
    data = yaml.safe_load(_dev_data())
    data.pop("baseline", None)
    data["accounts"] = accounts
    shadow_rules = "shadow" in Rule.model_fields  # shadow rules, where the schema has them
    data["rules"] = [
        {"name": f"r{i}", **{k: v for k, v in rule.items() if k != "shadow" or shadow_rules}}
        for i, rule in enumerate(rules)
    ]
    data["default_action"] = default_action
    data["ingestion"] = {"filter": "policy", "include_ocsf": include_ocsf, "resolutions": resolutions}
    data["custom_action"] = {"id": "PageOnCallTest", "mode": "page"}
    if shadow_mode and "mode" in Policy.model_fields:
        data["mode"] = "shadow"
    if suppress:
        data["suppressions"] = [
            {"name": "s", "match": suppress, "owner": "secops@example.com", "reason": "generated by the property test"}
        ]
    return Policy.model_validate(data)


# ------------------------------------------------------------------------------------------ generated findings


@st.composite
def asff_findings(draw: st.DrawFn) -> dict[str, Any]:
    product = draw(st.sampled_from(list(PRODUCTS)))
    region = draw(st.sampled_from(REGIONS))
    account = draw(st.sampled_from([OURS, SECOND, OTHER]))
    finding = asff(
        product=PRODUCTS[product].split("/")[-1],
        severity=draw(st.sampled_from(LABELS)),
        account=account,
        region=region,
        ProductName=draw(st.sampled_from([product, product, None, ""])),
        ProductArn=_product_arn(product, region),
        GeneratorId=draw(st.sampled_from(["arn:aws:guardduty:generator", "AWSInspector", "prowler-iam"])),
        Types=draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True)),
        Title=draw(st.sampled_from(TITLES)),
        Resources=[_asff_resource(draw, account) for _ in range(draw(st.integers(1, 2)))],
        RecordState=draw(st.sampled_from(["ACTIVE", "ACTIVE", "ARCHIVED"])),
        Workflow={"Status": draw(st.sampled_from(["NEW", "NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED"]))},
    )
    if draw(st.booleans()):
        finding["Region"] = draw(st.sampled_from([None, ""])) or finding.pop("Region")
    if draw(st.booleans()):  # a control finding: its id in one of the three places normalize reads
        control = draw(st.sampled_from(CONTROLS))
        where = draw(st.sampled_from(["consolidated", "legacy", "generator"]))
        status = draw(st.sampled_from(["FAILED", "FAILED", "PASSED", "WARNING", "NOT_AVAILABLE"]))
        finding["Compliance"] = {"Status": status}
        if where == "consolidated":
            finding["Compliance"]["SecurityControlId"] = control
            finding["GeneratorId"] = f"security-control/{control}"
        elif where == "legacy":
            finding["ProductFields"] = {"ControlId": control}
        else:
            finding["GeneratorId"] = f"security-control/{control}"
    if draw(st.booleans()):
        finding["Vulnerabilities"] = [_asff_vulnerability(draw) for _ in range(draw(st.integers(1, 3)))]
    if draw(st.integers(0, 3)) == 0:  # a note: findings-router's (on what it paged), or anyone's
        finding["Note"] = {"Text": "Paged on-call", "UpdatedBy": draw(st.sampled_from(["findings-router", "alice"]))}
    sample = draw(st.sampled_from(["no", "no", "flag", "guardduty"]))
    if sample == "flag":
        finding["Sample"] = True
    elif sample == "guardduty":
        finding.setdefault("ProductFields", {})["aws/guardduty/service/additionalInfo/sample"] = "true"
    if draw(st.integers(0, 9)) == 0:  # the provider's own severity only: normalize falls back on it
        label = finding.pop("Severity")["Label"]
        finding["FindingProviderFields"] = {"Severity": {"Label": label}, "Types": finding.pop("Types")}
    return finding


def _asff_resource(draw: st.DrawFn, account: str) -> dict[str, Any]:
    kind, _, rid, _ = draw(st.sampled_from(RESOURCES))
    tags = {
        k: draw(st.sampled_from(["prod", "iot-edge", "dev"]))
        for k in draw(st.sets(st.sampled_from(["env", "team", "a.b"])))
    }
    return {"Type": kind, "Id": rid, "Region": "eu-central-1", "Tags": tags}


def _asff_vulnerability(draw: st.DrawFn) -> dict[str, Any]:
    vuln: dict[str, Any] = {"Id": draw(st.sampled_from(CVES))}
    if draw(st.booleans()):
        vuln["Cvss"] = [{"BaseScore": draw(st.floats(0, 10).map(lambda x: round(x, 1)))} for _ in range(2)]
    if draw(st.booleans()):
        vuln["ExploitAvailable"] = draw(st.sampled_from(["YES", "NO"]))
    if draw(st.booleans()):
        vuln["FixAvailable"] = draw(st.sampled_from(["YES", "NO", "PARTIAL"]))
    if draw(st.booleans()):
        vuln["EpssScore"] = draw(st.floats(0, 1).map(lambda x: round(x, 5)))
    return vuln


_OCSF_TEMPLATE = load_fixture("ocsf_guardduty_detection.json")["detail"]["findings"][0]
OCSF_SEVERITY = {"INFORMATIONAL": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}


@st.composite
def ocsf_findings(draw: st.DrawFn) -> dict[str, Any]:
    finding = copy.deepcopy(_OCSF_TEMPLATE)
    product = draw(st.sampled_from(list(PRODUCTS)))
    label = draw(st.sampled_from(LABELS))
    severity_id = draw(st.sampled_from([OCSF_SEVERITY[label], OCSF_SEVERITY[label], 0, 99, 6]))
    finding.update(
        severity_id=severity_id,
        severity=draw(st.sampled_from([label.title(), label.lower(), "Other"])),
        status_id=draw(st.sampled_from([1, 1, 2, 3, 4, 5])),
        activity_id=draw(st.sampled_from([1, 2, 2, 3])),
    )
    if draw(st.integers(0, 5)) == 0:
        finding.pop("severity_id")
    finding["cloud"] = {
        **finding["cloud"],
        "account": {"uid": draw(st.sampled_from([OURS, SECOND, OTHER]))},
        "region": draw(st.sampled_from([*REGIONS, ""])),
    }
    finding["metadata"]["product"] = {
        "name": draw(st.sampled_from([product, product, ""])),
        "uid": _product_arn(product).replace(":product/", ":productv2/"),
    }
    info = finding["finding_info"]
    info["types"] = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True))
    info["title"] = draw(st.sampled_from(TITLES))
    info["analytic"] = {"uid": draw(st.sampled_from(["arn:aws:guardduty:generator", "AWSInspector"]))}
    resources = [_ocsf_resource(draw) for _ in range(draw(st.integers(1, 2)))]
    if draw(st.integers(0, 4)) == 0:
        finding.pop("resources")
        finding["resource"] = resources[0]
    else:
        finding["resources"] = resources
    if draw(st.booleans()):
        status = draw(st.sampled_from([(3, "Fail"), (1, "Pass"), (2, "Warning")]))
        finding["compliance"] = {
            "control": draw(st.sampled_from(CONTROLS)),
            "status_id": status[0],
            "status": status[1],
        }
    if draw(st.booleans()):
        finding["vulnerabilities"] = [_ocsf_vulnerability(draw) for _ in range(draw(st.integers(1, 3)))]
    if draw(st.integers(0, 3)) == 0:
        finding["comment"] = "Paged on-call"
    return finding


def _ocsf_resource(draw: st.DrawFn) -> dict[str, Any]:
    _, kind, arn, uid = draw(st.sampled_from(RESOURCES))
    resource: dict[str, Any] = {"type": kind, "uid": uid, "region": "eu-central-1"}
    if arn.startswith("arn:"):
        resource["uid_alt"] = arn
    tags = {
        k: draw(st.sampled_from(["prod", "iot-edge", "dev"])) for k in draw(st.sets(st.sampled_from(["env", "team"])))
    }
    if draw(st.booleans()):
        resource["tags"] = [{"name": k, "value": v} for k, v in tags.items()]
    elif tags:
        resource["tags"] = tags
    return resource


def _ocsf_vulnerability(draw: st.DrawFn) -> dict[str, Any]:
    cve: dict[str, Any] = {"uid": draw(st.sampled_from(CVES))}
    if draw(st.booleans()):
        cve["cvss"] = [{"base_score": draw(st.floats(0, 10).map(lambda x: round(x, 1)))}]
    if draw(st.booleans()):
        cve["epss"] = {"score": str(draw(st.floats(0, 1).map(lambda x: round(x, 5))))}
    vuln: dict[str, Any] = {"cve": cve}
    if draw(st.booleans()):
        vuln["is_exploit_available"] = draw(st.booleans())
    if draw(st.booleans()):
        vuln["fix_coverage"] = draw(st.sampled_from(["COMPLETE", "PARTIAL", "NONE"]))
    elif draw(st.booleans()):
        vuln["is_fix_available"] = draw(st.booleans())
    return vuln


@st.composite
def security_hub_events(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return event(*draw(st.lists(asff_findings(), min_size=1, max_size=2)))
    return event(draw(ocsf_findings()), detail_type=DETAIL_TYPE_IMPORTED_V2)


POLICIES = st.builds(
    _policy,
    RULES,
    accounts=st.sampled_from([[OURS], [OURS, SECOND], ["*"]]),
    include_ocsf=st.booleans(),
    default_action=st.sampled_from(["drop", "drop", "drop", "notify"]),
    shadow_mode=st.booleans(),
    suppress=st.one_of(st.none(), MATCH),
    resolutions=st.sampled_from(["all", "noted"]),
)

# FILTER_PROPERTY_EXAMPLES=5000 for a longer hunt (the suite runs 300).
EXAMPLES = int(os.environ.get("FILTER_PROPERTY_EXAMPLES", "300"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@PROPERTY
@given(policy=POLICIES, events=st.lists(security_hub_events(), min_size=1, max_size=4))
def test_whatever_the_router_acts_on_passes_the_policys_filter(policy, events):
    _admits_what_the_router_needs(policy, events)
    _within_the_quota(policy)


@settings(max_examples=max(60, EXAMPLES // 5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=POLICIES)
def test_the_corpus_passes_every_generated_policys_filter(policy):
    _admits_what_the_router_needs(policy, CORPUS)


# ------------------------------------------------------------------------------------------ resolutions


def _asff_resolutions(finding: dict[str, Any]) -> list[dict[str, Any]]:
    # The router noted the finding when it paged it (adapters/securityhub.py): its note stays on every later copy.
    finding = {**finding, "Note": {"Text": "Paged on-call via PagerDuty", "UpdatedBy": "findings-router"}}
    later = {"UpdatedAt": "2026-11-21T11:00:00.000Z"}
    passed = {
        **finding,
        **later,
        "Compliance": {**finding.get("Compliance", {}), "Status": "PASSED"},
        "Severity": {"Label": "INFORMATIONAL", "Normalized": 0},
        "Workflow": {"Status": "RESOLVED"},
    }
    return [
        {**finding, **later, "RecordState": "ARCHIVED"},
        passed,
        {**finding, **later, "Workflow": {"Status": "RESOLVED"}},
        {**finding, **later, "Workflow": {"Status": "SUPPRESSED"}, "Severity": {"Label": "LOW"}},
    ]


def _ocsf_resolutions(finding: dict[str, Any]) -> list[dict[str, Any]]:
    finding = {**finding, "comment": "Paged on-call via PagerDuty"}
    return [
        {**finding, "status_id": 4, "status": "Resolved"},
        {**finding, "status_id": 5, "status": "Archived", "severity_id": 1, "severity": "Informational"},
        {**finding, "status_id": 3, "status": "Suppressed"},
        {**finding, "activity_id": 3},
        {**finding, "compliance": {"control": "S3.8", "status_id": 1, "status": "Pass"}, "severity_id": 1},
    ]


@PROPERTY
@given(policy=POLICIES, asff_finding=asff_findings(), ocsf_finding=ocsf_findings())
def test_the_resolution_of_a_finding_that_pages_passes(policy, asff_finding, ocsf_finding):
    pattern = _pattern(policy)
    compiled = views(policy)
    active = {"RecordState": "ACTIVE", "Workflow": {"Status": "NEW"}}
    asff_active = {**asff_finding, **active}
    if "Compliance" in asff_active:
        asff_active["Compliance"] = {**asff_active["Compliance"], "Status": "FAILED"}
    if needed(policy, event(asff_active), compiled):
        for resolved in _asff_resolutions(asff_active):
            assert matches(pattern, event(resolved)), resolved
            if policy.ingestion.resolutions == "all":  # noted or not
                assert matches(pattern, event({k: v for k, v in resolved.items() if k != "Note"})), resolved
    ocsf_active = {**ocsf_finding, "status_id": 1, "activity_id": 1}
    ocsf_active.pop("compliance", None)
    if policy.ingestion.include_ocsf and needed(policy, event(ocsf_active, detail_type=DETAIL_TYPE_IMPORTED_V2)):
        for resolved in _ocsf_resolutions(ocsf_active):
            assert matches(pattern, event(resolved, detail_type=DETAIL_TYPE_IMPORTED_V2)), resolved


# ------------------------------------------------------------------------------------------ too rich a policy


def test_a_policy_too_rich_for_the_quota_is_coarsened_not_refused():
    # 30 rules, each paging one product and control at one label: far above 2048 characters when compiled.
    rules = [
        {
            "action": "page",
            "match": {
                "severity": [LABELS[i % 5]],
                "product": [f"Product{i}"],
                "control_id": [f"Control.{i}"],
                "title": [f"A title long enough to matter {i}"],
            },
        }
        for i in range(30)
    ]
    policy = _policy(rules, accounts=[OURS, SECOND])
    chosen = ingestion_filter(policy)
    assert chosen.coarsened and chosen.reason is not None
    assert chosen.size <= EVENT_PATTERN_MAX_CHARS and chosen.sub_patterns <= EVENT_PATTERN_MAX_SUB_PATTERNS
    _within_the_quota(policy)
    # Still a superset: every rule's finding passes.
    for i in range(30):
        finding = asff(
            severity=LABELS[i % 5], product=f"Product{i}", Title=f"A title long enough to matter {i}", account=OURS
        )
        finding["Compliance"] = {"Status": "FAILED", "SecurityControlId": f"Control.{i}"}
        finding["ProductName"] = f"Product{i}"
        assert matches(_pattern(policy), event(finding))
