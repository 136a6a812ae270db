"""Normalizing real-shaped Security Hub events (ASFF and OCSF) into the one finding type."""

from __future__ import annotations

import pytest

from findings_router.dedup import dedup_key
from findings_router.model import FindingError, FindingFormat, Severity
from findings_router.normalize import normalize_document, normalize_event
from tests.builders import asff, event, load_fixture


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
