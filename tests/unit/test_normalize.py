"""Normalizing real-shaped Security Hub events (ASFF and OCSF) into the one finding type."""

from __future__ import annotations

import copy

import pytest

from findings_router.domain.keys import dedup_key
from findings_router.domain.model import FindingError, FindingFormat, Severity
from findings_router.domain.normalize import normalize_asff, normalize_document, normalize_event
from tests.builders import FIXTURES, asff, control, event, load_fixture

CUSTOM_ACTION = "Security Hub Findings - Custom Action"


def one(name: str):
    result = normalize_event(load_fixture(name))
    assert result.errors == []
    [finding] = result.findings
    return finding


def test_guardduty():
    f = one("asff_guardduty_ssh_bruteforce.json")
    assert f.format is FindingFormat.ASFF
    assert f.product_name == "GuardDuty"
    assert f.severity is Severity.HIGH
    assert f.account == "111122223333"
    assert f.region == "eu-central-1"
    assert f.resources[0].type == "AwsEc2Instance"
    assert f.resources[0].tag("team") == "iot-gateway"
    assert f.types == ("TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce",)
    assert not f.is_resolved
    assert f.source_url and f.source_url.startswith("https://")


def test_inspector_cves_and_max_cvss():
    f = one("asff_inspector_log4j.json")
    assert f.cve_ids == ("CVE-2021-44228",)
    assert f.max_cvss == 10.0
    assert f.severity is Severity.CRITICAL
    assert f.remediation_text


def test_inspector_label_medium_but_cvss_high():
    f = one("asff_inspector_cvss_high_label_medium.json")
    assert f.severity is Severity.MEDIUM
    assert f.max_cvss == 9.8


def test_config_rule():
    f = one("asff_config_rule_noncompliant.json")
    assert f.product_name == "Config"
    assert f.compliance_status == "FAILED"
    assert f.control_id is None


def test_control_failed_and_passed_share_a_key_and_passed_resolves():
    failed = one("asff_control_s3_failed.json")
    passed = one("asff_control_s3_passed.json")
    assert failed.control_id == "S3.8"
    assert failed.remediation_url
    assert not failed.is_resolved
    assert passed.is_resolved
    assert dedup_key(failed) == dedup_key(passed)


def test_legacy_control_findings_from_two_standards():
    result = normalize_event(load_fixture("asff_control_legacy_two_standards.json"))
    a, b = result.findings
    assert a.id != b.id
    assert a.control_id == b.control_id == "EC2.19"
    assert dedup_key(a) == dedup_key(b)


def test_macie_and_third_party():
    macie = one("asff_macie_sensitive_data.json")
    assert macie.product_name == "Macie"
    assert {r.type for r in macie.resources} >= {"AwsS3Bucket"}
    prowler = one("asff_third_party_prowler.json")  # carries unknown X* fields: ignored
    assert prowler.company_name == "Prowler"
    assert prowler.severity is Severity.CRITICAL
    assert prowler.primary_resource_id == "AWS::::Account:111122223333"


def test_archived():
    active = one("asff_guardduty_ssh_bruteforce.json")
    archived = one("asff_guardduty_archived.json")
    assert archived.record_state == "ARCHIVED"
    assert archived.is_resolved
    assert dedup_key(active) == dedup_key(archived)


def test_custom_action_carries_its_findings_and_action_name():
    result = normalize_event(load_fixture("asff_custom_action_two_findings.json"))
    assert len(result.findings) == 2
    assert {f.custom_action for f in result.findings} == {"page-oncall"}


def test_missing_required_field_names_field_and_finding():
    data = load_fixture("asff_missing_required_field.json")
    result = normalize_event(data)
    [error] = result.errors
    assert error.field == "AwsAccountId"
    assert error.finding_id == data["detail"]["findings"][0]["Id"]
    assert "AwsAccountId" in str(error) and data["detail"]["findings"][0]["Id"] in str(error)


def test_one_bad_finding_does_not_hide_its_neighbours():
    bad = asff()
    del bad["Title"]
    result = normalize_event(event(asff(), bad, asff()))
    assert len(result.findings) == 2
    assert [e.field for e in result.errors] == ["Title"]


def test_insight_results_are_ignored():
    result = normalize_event(load_fixture("insight_results.json"))
    assert result.findings == [] and result.ignored_reason


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.update(source="aws.guardduty"), "source"),
        (lambda e: e.update({"detail-type": "Something Else"}), "detail-type"),
        (lambda e: e.pop("detail"), "detail"),
        (lambda e: e["detail"].update(findings={"not": "a list"}), "detail.findings"),
    ],
)
def test_broken_envelopes(mutate, field):
    ev = event(asff())
    mutate(ev)
    with pytest.raises(FindingError) as info:
        normalize_event(ev)
    assert info.value.field == field


def test_wrong_types_are_clear_errors():
    result = normalize_event(event(asff(Resources="i-0abc"), asff(Severity={"Label": "SEVERE"}), {"Id": 5}))
    fields = [e.field for e in result.errors]
    assert fields == ["Resources", "Severity.Label", "detail.findings[2].Id"]


def test_severity_from_normalized_when_label_is_missing():
    result = normalize_event(event(asff(Severity={"Normalized": 75})))
    assert result.findings[0].severity is Severity.HIGH


# ------------------------------------------------------------------------------------------ OCSF


def test_ocsf_detection():
    f = one("ocsf_guardduty_detection.json")
    assert f.format is FindingFormat.OCSF
    assert f.product_name == "GuardDuty"
    assert f.product_arn.endswith(":product/aws/guardduty")  # productv2 folded
    assert f.severity is Severity.HIGH
    assert f.account == "444455556666"
    assert f.resources[0].id.startswith("arn:aws:ec2:")  # the ARN from uid_alt
    assert not f.is_resolved


def test_ocsf_and_asff_copies_of_one_finding_share_a_key():
    v1 = one("asff_guardduty_ssh_bruteforce.json")
    v2 = one("ocsf_guardduty_same_as_asff.json")
    assert v1.id == v2.id
    assert dedup_key(v1) == dedup_key(v2)


def test_ocsf_compliance_and_vulnerability():
    ctl = one("ocsf_control_compliance_failed.json")
    assert ctl.control_id == "IAM.6"
    assert ctl.compliance_status == "FAILED"
    assert ctl.severity is Severity.CRITICAL
    vuln = one("ocsf_inspector_vulnerability.json")
    assert vuln.cve_ids == ("CVE-2024-3094",)
    assert vuln.max_cvss == 10.0


def test_ocsf_resolved():
    f = one("ocsf_detection_resolved.json")
    assert f.is_resolved
    assert dedup_key(f) == dedup_key(one("ocsf_guardduty_detection.json"))


def test_ocsf_missing_uid():
    ev = load_fixture("ocsf_guardduty_detection.json")
    del ev["detail"]["findings"][0]["finding_info"]["uid"]
    [error] = normalize_event(ev).errors
    assert error.field == "finding_info.uid"


# ------------------------------------------------------------------------------ exported documents


def test_get_findings_output_and_bare_findings():
    out = normalize_document(load_fixture("get_findings_output.json"))
    assert len(out.findings) == 3
    bare = load_fixture("get_findings_output.json")["Findings"][0]
    assert len(normalize_document(bare).findings) == 1
    ocsf_bare = load_fixture("ocsf_guardduty_detection.json")["detail"]["findings"][0]
    assert normalize_document(ocsf_bare).findings[0].format is FindingFormat.OCSF


def test_unknown_document_is_an_error():
    with pytest.raises(FindingError, match="not a Security Hub event"):
        normalize_document({"hello": "world"})


# ---------------------------------------------------- severity and types from FindingProviderFields


PROVIDER_ONLY = {"Severity": {"Label": "CRITICAL", "Original": "9.8"}, "Types": ["Effects/Data Exfiltration"]}


@pytest.mark.parametrize("top_level", [None, {}, {"Original": "HIGH"}, {"Product": 8}])
def test_severity_falls_back_to_finding_provider_fields(top_level):
    f = normalize_asff(asff(Severity=top_level, FindingProviderFields=PROVIDER_ONLY))
    assert f.severity is Severity.CRITICAL
    assert f.severity_score == 90.0


def test_top_level_severity_and_types_win_over_finding_provider_fields():
    # The top level holds a customer's BatchUpdateFindings override; FindingProviderFields the provider's original.
    f = normalize_asff(asff(severity="LOW", Types=["TTPs/Discovery"], FindingProviderFields=PROVIDER_ONLY))
    assert f.severity is Severity.LOW
    assert f.types == ("TTPs/Discovery",)


def test_provider_normalized_is_used_when_it_has_no_label():
    f = normalize_asff(asff(Severity=None, FindingProviderFields={"Severity": {"Normalized": 75}}))
    assert f.severity is Severity.HIGH


def test_provider_original_is_never_read_as_a_label():
    # Original is the provider's own string (GuardDuty "8", Prowler "critical"): no scale to map from.
    bad = asff(Severity=None, FindingProviderFields={"Severity": {"Original": "CRITICAL"}})
    [error] = normalize_event(event(bad)).errors
    assert error.field == "Severity" and error.finding_id == bad["Id"]


def test_an_unknown_provider_label_names_the_provider_field():
    bad = asff(Severity=None, FindingProviderFields={"Severity": {"Label": "SEVERE"}})
    [error] = normalize_event(event(bad)).errors
    assert error.field == "FindingProviderFields.Severity.Label"


@pytest.mark.parametrize("top_level", [None, []])
def test_types_fall_back_to_finding_provider_fields(top_level):
    f = normalize_asff(asff(Types=top_level, FindingProviderFields=PROVIDER_ONLY))
    assert f.types == ("Effects/Data Exfiltration",)


def test_partner_finding_with_only_finding_provider_fields():
    # The BatchImportFindings request body a partner sends: Severity and Types only inside FindingProviderFields.
    out = normalize_document(load_fixture("batch_import_findings_provider_fields_only.json"))
    assert out.errors == []
    [f] = out.findings
    assert f.severity is Severity.HIGH  # the Label; Original "7.5" is the partner's own score
    assert f.types == ("Software and Configuration Checks/AWS Security Best Practices",)
    assert f.product_arn.endswith(":product/111122223333/default")


# ------------------------------------------------------------------ OCSF singular `resource`


def test_ocsf_singular_resource_gives_the_same_primary_resource_as_the_asff_copy():
    asff_copy = one("asff_control_s3_failed.json")
    ocsf_copy = one("ocsf_control_s3_failed_singular_resource.json")  # OCSF 1.1 Compliance Finding: `resource`
    assert ocsf_copy.format is FindingFormat.OCSF and ocsf_copy.id == asff_copy.id
    assert ocsf_copy.primary_resource_id == asff_copy.primary_resource_id == "arn:aws:s3:::iot-telemetry-raw"
    assert ocsf_copy.resources[0].tag("team") == "data-platform"
    assert dedup_key(ocsf_copy) == dedup_key(asff_copy)


def test_ocsf_resource_and_resources_are_both_read_and_deduplicated():
    kms = {"type": "AWS::KMS::Key", "uid": "arn:aws:kms:eu-central-1:111122223333:key/1a2b3c4d"}
    bare_bucket = {"type": "AWS::S3::Bucket", "uid": "iot-telemetry-raw"}  # the same bucket as `resource`, no ARN
    ev = load_fixture("ocsf_control_s3_failed_singular_resource.json")
    finding = ev["detail"]["findings"][0]
    finding["resources"] = [kms]
    [both] = normalize_event(copy.deepcopy(ev)).findings
    assert both.resource_ids == (kms["uid"], "arn:aws:s3:::iot-telemetry-raw")  # the list first, then `resource`
    finding["resources"] = [kms, bare_bucket]
    [deduplicated] = normalize_event(ev).findings
    assert deduplicated.resource_ids == (kms["uid"], "iot-telemetry-raw")


@pytest.mark.parametrize(("resource", "field"), [("iot-telemetry-raw", "resource"), ({"type": "x"}, "resource.uid")])
def test_ocsf_malformed_singular_resource(resource, field):
    ev = load_fixture("ocsf_control_s3_failed_singular_resource.json")
    ev["detail"]["findings"][0]["resource"] = resource
    [error] = normalize_event(ev).errors
    assert error.field == field
    assert error.finding_id == ev["detail"]["findings"][0]["finding_info"]["uid"]


def test_ocsf_account_resource_matches_the_asff_account_resource():
    # ASFF names a whole account "AWS::::Account:<id>"; the new Security Hub gives the bare id with that type.
    ocsf_copy = one("ocsf_control_compliance_failed.json")  # IAM.6 on AWS::::Account 111122223333
    asff_copy = control("IAM.6", severity="CRITICAL")
    asff_copy["Resources"] = [
        {"Type": "AwsAccount", "Id": "AWS::::Account:111122223333", "Partition": "aws", "Region": "eu-central-1"}
    ]
    asff_finding = normalize_asff(asff_copy)
    assert ocsf_copy.primary_resource_id == asff_finding.primary_resource_id == "AWS::::Account:111122223333"
    assert dedup_key(ocsf_copy) == dedup_key(asff_finding)


# ------------------------------------------------------------------------------ account ids


BAD_ACCOUNTS = [
    "11112222333",  # 11 digits
    "1111222233334",  # 13
    "11112222333a",
    " 111122223333",
    "111122223333\n",
    "١١١١٢٢٢٢٣٣٣٣",  # Arabic-Indic digits: str.isdigit() and \d say yes
    111122223333,  # a number, not the documented string
]


@pytest.mark.parametrize("account", BAD_ACCOUNTS)
def test_asff_account_id_must_be_12_digits(account):
    bad = asff(AwsAccountId=account)
    result = normalize_event(event(asff(), bad))
    assert len(result.findings) == 1
    [error] = result.errors
    assert error.field == "AwsAccountId" and error.finding_id == bad["Id"]
    assert "AwsAccountId" in str(error) and bad["Id"] in str(error) and "12 digits" in str(error)


@pytest.mark.parametrize("account", BAD_ACCOUNTS)
def test_ocsf_account_id_must_be_12_digits(account):
    ev = load_fixture("ocsf_guardduty_detection.json")
    finding = ev["detail"]["findings"][0]
    finding["cloud"]["account"]["uid"] = account
    [error] = normalize_event(ev).errors
    assert error.field == "cloud.account.uid" and error.finding_id == finding["finding_info"]["uid"]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FIXTURES.glob("*.json") if p.name.startswith(("asff_", "ocsf_")))
)
def test_every_fixture_account_is_accepted(name):
    result = normalize_document(load_fixture(name))  # asff_missing_required_field.json lacks its account: not malformed
    assert not [e for e in result.errors if "malformed account id" in str(e)]


# ------------------------------------------------------------------------------ sample findings


def test_guardduty_sample_finding_is_flagged():
    # GuardDuty's `service.additionalInfo.sample`, as Security Hub flattens it into ProductFields. No `Sample` key.
    f = one("asff_guardduty_sample.json")
    assert f.sample
    assert not one("asff_guardduty_ssh_bruteforce.json").sample  # `Sample: false`, empty additionalInfo


GD_SAMPLE_KEY = "aws/guardduty/service/additionalInfo/sample"
GD_INFO_KEY = "aws/guardduty/service/additionalInfo/value"


@pytest.mark.parametrize(
    ("fields", "sample"),
    [
        ({"Sample": True}, True),  # ASFF's own flag (Macie samples set it)
        ({"Sample": False}, False),
        ({"ProductFields": {GD_SAMPLE_KEY: "true"}}, True),
        ({"ProductFields": {GD_SAMPLE_KEY: "false"}}, False),
        ({"ProductFields": {GD_INFO_KEY: '{"sample":true}'}}, True),
        ({"ProductFields": {GD_INFO_KEY: '{"unusual":"Rostelecom","sample":false}'}}, False),
        ({"ProductFields": {GD_INFO_KEY: '{"sample": tru'}}, False),  # broken JSON: not a sample, not an error
        ({"ProductFields": {GD_INFO_KEY: '["sample", true]'}}, False),
        ({"Title": "[SAMPLE] Unprotected port on EC2 instance i-99999999 is being probed"}, False),  # title alone
    ],
)
def test_sample_signals(fields, sample):
    result = normalize_event(event(asff(**fields)))
    assert result.errors == []
    assert result.findings[0].sample is sample


def test_ocsf_findings_are_never_flagged_as_samples():
    # Nothing in the new Security Hub's OCSF findings is documented to mark a sample.
    assert not one("ocsf_guardduty_detection.json").sample


# ------------------------------------------------------------------------------ custom actions


def test_custom_action_arn_comes_from_the_event_resources():
    result = normalize_event(load_fixture("asff_custom_action_two_findings.json"))
    arns = {f.custom_action_arn for f in result.findings}
    assert arns == {"arn:aws:securityhub:eu-central-1:111122223333:action/custom/page-oncall"}


def test_custom_action_arn_is_the_entry_naming_the_action():
    action = "arn:aws:securityhub:eu-central-1:111122223333:action/custom/page-oncall"
    ev = event(asff(), detail_type=CUSTOM_ACTION, actionName="page-oncall")
    ev["resources"] = ["arn:aws:securityhub:eu-central-1::product/aws/guardduty/x", 7, action]
    [f] = normalize_event(ev).findings
    assert f.custom_action == "page-oncall" and f.custom_action_arn == action


@pytest.mark.parametrize("resources", [[], ["arn:aws:securityhub:eu-central-1::product/aws/guardduty"], None, "x"])
def test_custom_action_without_its_arn_still_normalizes(resources):
    ev = event(asff(), detail_type=CUSTOM_ACTION, actionName="page-oncall")
    ev["resources"] = resources
    result = normalize_event(ev)
    assert result.errors == []
    [f] = result.findings
    assert f.custom_action == "page-oncall" and f.custom_action_arn is None


def test_imported_findings_have_no_custom_action():
    f = one("asff_guardduty_ssh_bruteforce.json")
    assert f.custom_action is None and f.custom_action_arn is None


# ------------------------------------------------------------------------------ vulnerability facts


def _asff_vulns(*vulns: dict):
    [f] = normalize_event(event(asff(product="inspector", Vulnerabilities=list(vulns)))).findings
    return f


def _ocsf_vulns(*vulns: object):
    ev = load_fixture("ocsf_inspector_vulnerability.json")
    ev["detail"]["findings"][0]["vulnerabilities"] = list(vulns)
    result = normalize_event(ev)
    assert result.errors == []
    return result.findings[0]


def test_inspector_fixtures_carry_exploit_fix_and_epss():
    asff_f = one("asff_inspector_log4j.json")
    assert (asff_f.exploit_available, asff_f.fix_available, asff_f.max_epss) == (True, "YES", 0.94358)
    ocsf_f = one("ocsf_inspector_vulnerability.json")  # EPSS is a string in OCSF
    assert (ocsf_f.exploit_available, ocsf_f.fix_available, ocsf_f.max_epss) == (True, "YES", 0.84216)


def test_findings_without_vulnerabilities_say_nothing_about_them():
    f = one("asff_guardduty_ssh_bruteforce.json")
    assert (f.exploit_available, f.fix_available, f.max_epss) == (None, None, None)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["YES"], True),
        (["NO"], False),
        (["NO", "YES"], True),  # any exploit
        (["NO", None], False),  # all that say, say none
        ([None, None], None),
        (["no", "Yes"], True),  # any case
        (["MAYBE", 1, {"x": 1}], None),  # malformed says nothing
    ],
)
def test_asff_exploit_available_across_vulnerabilities(values, expected):
    vulns = [
        {"Id": f"CVE-2026-{i:04d}", **({} if v is None else {"ExploitAvailable": v})} for i, v in enumerate(values)
    ]
    assert _asff_vulns(*vulns).exploit_available is expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["YES", "YES"], "YES"),
        (["NO", "NO"], "NO"),
        (["YES", "NO"], "PARTIAL"),
        (["YES", "PARTIAL"], "PARTIAL"),
        (["YES", None], "YES"),  # only what is said counts
        ([None], None),
        (["partial"], "PARTIAL"),
        ([7, "SOON"], None),
    ],
)
def test_asff_fix_available_across_vulnerabilities(values, expected):
    vulns = [{"Id": f"CVE-2026-{i:04d}", **({} if v is None else {"FixAvailable": v})} for i, v in enumerate(values)]
    assert _asff_vulns(*vulns).fix_available == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.2, 0.7], 0.7),
        ([0.2, "0.9"], 0.9),
        ([1.5, -0.1, 0.3], 0.3),  # outside 0..1: not an EPSS score
        (["NaN", "inf", True, None], None),
        ([0, None], 0.0),
    ],
)
def test_asff_max_epss(values, expected):
    vulns = [{"Id": f"CVE-2026-{i:04d}", **({} if v is None else {"EpssScore": v})} for i, v in enumerate(values)]
    assert _asff_vulns(*vulns).max_epss == expected


def test_ocsf_fix_coverage_wins_over_is_fix_available():
    f = _ocsf_vulns(
        {"cve": {"uid": "CVE-2026-0001"}, "fix_coverage": "partial", "is_fix_available": True},
    )
    assert f.fix_available == "PARTIAL"
    assert _ocsf_vulns({"cve": {"uid": "CVE-2026-0001"}, "fix_coverage": "NONE"}).fix_available == "NO"
    assert _ocsf_vulns({"cve": {"uid": "CVE-2026-0001"}, "fix_coverage": "Complete"}).fix_available == "YES"
    # An unknown coverage word says nothing, so is_fix_available decides.
    assert _ocsf_vulns({"cve": {"uid": "X"}, "fix_coverage": "SOME", "is_fix_available": False}).fix_available == "NO"


def test_ocsf_booleans_across_vulnerabilities():
    f = _ocsf_vulns(
        {
            "cve": {"uid": "CVE-2026-0001", "epss": {"score": "0.01"}},
            "is_exploit_available": False,
            "is_fix_available": True,
        },
        {
            "cve": {"uid": "CVE-2026-0002", "epss": {"score": "0.5"}},
            "is_exploit_available": True,
            "is_fix_available": False,
        },
    )
    assert (f.cve_ids, f.exploit_available, f.fix_available, f.max_epss) == (
        ("CVE-2026-0001", "CVE-2026-0002"),
        True,
        "PARTIAL",
        0.5,
    )


@pytest.mark.parametrize(
    "vuln",
    [
        {"cve": {"uid": "CVE-2026-0001", "epss": {"score": "not a number"}}},
        {"cve": {"uid": "CVE-2026-0001", "epss": "0.5"}},
        {"cve": {"uid": "CVE-2026-0001", "epss": ["0.5"]}},
        {"cve": {"uid": "CVE-2026-0001", "epss": {"score": "7"}}},
        {"cve": {"uid": "CVE-2026-0001"}, "is_exploit_available": "sometimes", "fix_coverage": 3},
    ],
)
def test_malformed_ocsf_vulnerability_facts_are_ignored_and_the_finding_still_routes(vuln):
    f = _ocsf_vulns(vuln)
    assert f.cve_ids == ("CVE-2026-0001",)
    assert f.max_epss is None
    assert f.exploit_available is None or isinstance(f.exploit_available, bool)
    assert f.fix_available in (None, "YES", "NO", "PARTIAL")
