"""Security Hub: the GetFindingsV2 request (a CVE filter) and the GetFindings one (title prefix, then confirmed in
code), checked against botocore's model; OCSF and ASFF findings → rows."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import ParamValidator

from findings_router.psirt.securityhub import (
    affected_from_asff,
    affected_from_ocsf,
    findings_v1_filters,
    findings_v1_requests,
    findings_v2_filters,
    findings_v2_requests,
)
from findings_router_local.fakes.inspector.dataset import LOG4SHELL, asff_of, log4shell_estate, ocsf_of
from tests.builders import FIXTURES as FIXTURES_DIR


def _valid(client: Any, operation: str, request: dict[str, Any]) -> None:
    shape = client.meta.service_model.operation_model(operation).input_shape
    report = ParamValidator().validate({**request, "MaxResults": 100}, shape)
    assert not report.has_errors(), report.generate_report()


def test_the_v2_request_filters_on_the_cve_its_related_ids_and_not_resolved(securityhub_client):
    filters = findings_v2_filters([LOG4SHELL], accounts=["111122223333"])
    assert filters == {
        "CompositeOperator": "AND",
        "CompositeFilters": [
            {"Operator": "OR", "StringFilters": [
                {"FieldName": "vulnerabilities.cve.uid", "Filter": {"Value": LOG4SHELL, "Comparison": "EQUALS"}},
                {"FieldName": "vulnerabilities.related_vulnerabilities",
                 "Filter": {"Value": LOG4SHELL, "Comparison": "EQUALS"}},
            ]},
            {"Operator": "AND", "StringFilters": [
                {"FieldName": "status", "Filter": {"Value": "Resolved", "Comparison": "NOT_EQUALS"}}]},
            {"Operator": "OR", "StringFilters": [
                {"FieldName": "cloud.account.uid", "Filter": {"Value": "111122223333", "Comparison": "EQUALS"}}]},
        ],
    }  # fmt: skip
    _valid(securityhub_client, "GetFindingsV2", {"Filters": filters})
    requests = findings_v2_requests(
        [f"CVE-2021-{44000 + i}" for i in range(11)], accounts=[str(10**11 + i) for i in range(21)]
    )
    assert len(requests) == 2 * 2  # 10 ids (20 string filters) and 20 accounts per request
    for request in requests:
        _valid(securityhub_client, "GetFindingsV2", request)
        assert all(len(c["StringFilters"]) <= 20 for c in request["Filters"]["CompositeFilters"])


def test_the_v1_request_is_a_title_prefix_and_botocore_refuses_a_cve_key(securityhub_client):
    filters = findings_v1_filters([LOG4SHELL])
    assert filters == {
        "Title": [{"Value": LOG4SHELL, "Comparison": "PREFIX"}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        "Type": [{"Value": "Software and Configuration Checks/Vulnerabilities", "Comparison": "PREFIX"}],
    }
    for request in findings_v1_requests([LOG4SHELL], accounts=["111122223333"]):
        _valid(securityhub_client, "GetFindings", request)
    with pytest.raises(ParamValidationError, match="VulnerabilitiesId"):  # why v1 needs the title heuristic
        securityhub_client.get_findings(Filters={"VulnerabilitiesId": [{"Value": LOG4SHELL, "Comparison": "EQUALS"}]})


def test_a_title_prefix_false_positive_is_filtered_out_in_code():
    finding = asff_of(log4shell_estate()[0])  # CVE-2021-44228 on the demo's image
    assert finding["Title"].startswith("CVE-2021-4422")  # what GetFindings(Title PREFIX CVE-2021-4422) returns
    assert affected_from_asff(finding, {"CVE-2021-4422"}) == []
    rows = affected_from_asff(finding, {LOG4SHELL})
    assert [(r.cve, r.resource_type, r.resource_label, r.fixed_version) for r in rows] == [
        (LOG4SHELL, "AWS_ECR_CONTAINER_IMAGE", "iot-gateway-api:2026.11.03,prod", "2.15.0")
    ]
    assert rows[0].sources == frozenset({"securityhub"}) and rows[0].inspector_score == 10.0


def test_the_asff_fixture_of_a_real_inspector_finding_parses():
    event = json.loads((FIXTURES_DIR / "asff_inspector_log4j.json").read_text())
    (row,) = affected_from_asff(event["detail"]["findings"][0], {LOG4SHELL})
    assert (row.account, row.region, row.package, row.installed_version) == (
        "111122223333", "eu-central-1", "org.apache.logging.log4j:log4j-core", "2.14.1"
    )  # fmt: skip
    assert (row.cvss, row.cvss_version, row.epss, row.exploit_available, row.status) == (
        10.0,
        "3.1",
        0.94358,
        True,
        "ACTIVE",
    )


def test_the_ocsf_fixture_parses_with_epss_as_a_string():
    event = json.loads((FIXTURES_DIR / "ocsf_inspector_vulnerability.json").read_text())
    (row,) = affected_from_ocsf(event["detail"]["findings"][0], {"CVE-2024-3094"})
    assert (row.account, row.resource_type, row.resource_id, row.resource_label) == (
        "444455556666", "AWS_EC2_INSTANCE", "i-02c6e8a4f1b9d7350", "i-02c6e8a4f1b9d7350"
    )  # fmt: skip
    assert (row.epss, row.cvss, row.fixed_version, row.fix_available, row.severity) == (
        0.84216, 10.0, "0:5.4.6-3.fc40", "YES", "HIGH"
    )  # fmt: skip
    assert row.first_observed == "2026-11-19T20:51:33Z" and row.status == "New"


def test_an_ocsf_windows_finding_matches_through_related_vulnerabilities():
    kb = next(f for f in log4shell_estate() if f["packageVulnerabilityDetails"]["vulnerabilityId"].startswith("KB"))
    (row,) = affected_from_ocsf(ocsf_of(kb), {LOG4SHELL})
    assert (row.cve, row.vulnerability_id, row.resource_label) == (
        LOG4SHELL,
        "KB5008212",
        "i-0f9e8d7c6b5a40312 (scada-historian)",
    )


def test_absent_or_odd_fields_give_none_not_an_error():
    finding = copy.deepcopy(ocsf_of(log4shell_estate()[0]))
    vulnerability = finding["vulnerabilities"][0]
    vulnerability["cve"]["epss"] = {"score": "n/a"}
    vulnerability["cve"]["cvss"] = [{"base_score": "ten"}]
    vulnerability.pop("affected_packages")
    vulnerability["is_exploit_available"] = "maybe"
    finding["resources"].append({"type": "AWS::S3::Bucket"})  # no uid: skipped
    finding["finding_info"] = None
    (row,) = affected_from_ocsf(finding, {LOG4SHELL})
    assert (row.epss, row.cvss, row.package, row.exploit_available, row.first_observed) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert affected_from_ocsf({"vulnerabilities": "nope", "resources": None}, {LOG4SHELL}) == []
    assert (
        affected_from_asff({"Vulnerabilities": [{"Id": LOG4SHELL}], "Resources": [{"Type": "Other"}]}, {LOG4SHELL})
        == []
    )
