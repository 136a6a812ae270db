"""Inspector ListFindings: the queries (checked against botocore's model by Stubber and ParamValidator), paging,
and findings → rows."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from botocore.stub import Stubber
from botocore.validate import ParamValidator

from findings_router.psirt import inspector
from findings_router.psirt.inspector import (
    CallStats,
    InspectorQuery,
    affected_from_inspector,
    cve_queries,
    digest_queries,
    fetch_affected,
    filter_criteria,
    pick_cvss,
)
from findings_router_local.fakes.inspector import dataset
from findings_router_local.fakes.inspector.dataset import LOG4SHELL, LOG4SHELL_2, WINDOWS_KB, log4shell_estate

ACTIVE = [{"comparison": "EQUALS", "value": "ACTIVE"}]


def _valid(client: Any, criteria: dict[str, Any]) -> None:
    """The request is what botocore's model accepts (unknown keys, types, list lengths)."""
    shape = client.meta.service_model.operation_model("ListFindings").input_shape
    report = ParamValidator().validate({"filterCriteria": criteria, "maxResults": 100}, shape)
    assert not report.has_errors(), report.generate_report()


def _finding(vulnerability_id: str = LOG4SHELL, **overrides: Any) -> dict[str, Any]:
    found = next(
        f for f in log4shell_estate() if f["packageVulnerabilityDetails"]["vulnerabilityId"] == vulnerability_id
    )
    return {**copy.deepcopy(found), **overrides}


def test_the_cve_query_is_exactly_vulnerability_id_and_active(inspector_client):
    criteria = filter_criteria([LOG4SHELL])
    assert criteria == {"vulnerabilityId": [{"comparison": "EQUALS", "value": LOG4SHELL}], "findingStatus": ACTIVE}
    _valid(inspector_client, criteria)
    related = filter_criteria([LOG4SHELL], related=True, accounts=["111122223333", "111122224444"])
    assert related == {
        "relatedVulnerabilities": [{"comparison": "EQUALS", "value": LOG4SHELL}],
        "findingStatus": ACTIVE,
        "awsAccountId": [
            {"comparison": "EQUALS", "value": "111122223333"},
            {"comparison": "EQUALS", "value": "111122224444"},
        ],
    }
    _valid(inspector_client, related)


def test_since_and_digest_filters_are_model_shapes(inspector_client):
    since = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    criteria = filter_criteria(
        [LOG4SHELL], status="CLOSED", updated=(since, None), severities=["CRITICAL", "HIGH"], exploit_available=True
    )
    assert criteria["updatedAt"] == [{"startInclusive": since}]
    assert criteria["exploitAvailable"] == [{"comparison": "EQUALS", "value": "YES"}]
    _valid(inspector_client, criteria)
    with pytest.raises(ValueError, match="severities"):
        filter_criteria(severities=["SEVERE"])
    with pytest.raises(ValueError, match="1 to 10"):
        filter_criteria([f"CVE-2021-{40000 + i}" for i in range(11)])


def test_queries_are_chunked_in_tens_of_ids_and_accounts_with_a_related_query_each(inspector_client):
    cves = [f"CVE-2021-{44000 + i}" for i in range(12)]
    accounts = [f"{100000000000 + i}" for i in range(11)]
    queries = cve_queries(cves, accounts=accounts)
    assert len(queries) == 2 * 2 * 2
    assert [q.kind for q in queries[:2]] == ["vulnerabilityId", "relatedVulnerabilities"]
    covered = {(c, a) for q in queries for c in q.vulnerability_ids for a in _values(q, "awsAccountId")}
    assert covered == {(c, a) for c in cves for a in accounts}
    for query in queries:
        _valid(inspector_client, query.filter_criteria)
    assert cve_queries([LOG4SHELL], related=False)[0].kind == "vulnerabilityId"
    assert len(cve_queries([LOG4SHELL], related=False)) == 1


def _values(query: InspectorQuery, key: str) -> list[str]:
    return [f["value"] for f in query.filter_criteria.get(key, [])]


def test_digest_queries_ask_for_severity_or_exploit_first_observed_in_the_period(inspector_client):
    start, end = dt.datetime(2026, 11, 26, tzinfo=dt.UTC), dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    queries = digest_queries(start, end, severities=["CRITICAL"], include_exploitable=True, accounts=["111122223333"])
    assert [q.kind for q in queries] == ["digest-severity", "digest-exploitable"]
    severity, exploitable = (q.filter_criteria for q in queries)
    assert (
        severity["severity"] == [{"comparison": "EQUALS", "value": "CRITICAL"}] and "exploitAvailable" not in severity
    )
    assert (
        exploitable["exploitAvailable"] == [{"comparison": "EQUALS", "value": "YES"}] and "severity" not in exploitable
    )
    for criteria in (severity, exploitable):
        assert criteria["firstObservedAt"] == [{"startInclusive": start, "endInclusive": end - dt.timedelta(seconds=1)}]
        assert criteria["findingType"] == [{"comparison": "EQUALS", "value": "PACKAGE_VULNERABILITY"}]
        _valid(inspector_client, criteria)
    assert len(digest_queries(start, end, severities=["CRITICAL"], include_exploitable=False)) == 1


def _page(findings: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    return {"findings": findings, **({"nextToken": token} if token else {})}


def test_pages_of_25_are_followed_by_next_token_and_counted(inspector_client, stubbed):
    findings = dataset.synthetic_findings(57, seed="pages")
    criteria = filter_criteria([LOG4SHELL])
    stub: Stubber = stubbed["inspector2"]
    expected = {"filterCriteria": criteria, "maxResults": 100}
    stub.add_response("list_findings", _page(findings[:25], "t1"), expected)
    stub.add_response("list_findings", _page(findings[25:50], "t2"), {**expected, "nextToken": "t1"})
    stub.add_response("list_findings", _page(findings[50:], None), {**expected, "nextToken": "t2"})
    stats, pages = CallStats(), []
    got = list(inspector.iter_findings(inspector_client, criteria, stats=stats, on_page=pages.append))
    assert [f["findingArn"] for f in got] == [f["findingArn"] for f in findings]
    assert pages == [25, 25, 7]
    assert stats.calls == {"inspector2:ListFindings": 3} and stats.total == 3


def test_a_windows_kb_finding_is_found_by_the_related_query_and_reported_for_the_cve(inspector_client, stubbed):
    kb = _finding(WINDOWS_KB)
    linux = _finding(LOG4SHELL)
    stub: Stubber = stubbed["inspector2"]
    queries = cve_queries([LOG4SHELL])
    stub.add_response(
        "list_findings", _page([linux], None), {"filterCriteria": queries[0].filter_criteria, "maxResults": 100}
    )
    stub.add_response(
        "list_findings", _page([kb, linux], None), {"filterCriteria": queries[1].filter_criteria, "maxResults": 100}
    )
    rows = fetch_affected(inspector_client, queries, cves={LOG4SHELL})
    assert len(rows) == 2  # the Linux finding, returned by both queries, counts once
    windows = next(r for r in rows if r.vulnerability_id == WINDOWS_KB)
    assert windows.cve == LOG4SHELL
    assert windows.resource_type == "AWS_EC2_INSTANCE"
    assert windows.resource_label == "i-0f9e8d7c6b5a40312 (scada-historian)"
    assert (windows.cvss, windows.cvss_version, windows.cvss_source) == (8.8, "3.1", "NVD")  # Inspector's adjusted


def test_an_image_finding_becomes_one_row_per_package_with_everything_a_psirt_needs():
    finding = _finding(LOG4SHELL)
    finding["packageVulnerabilityDetails"]["vulnerablePackages"].append(
        {"name": "org.apache.logging.log4j:log4j-api", "version": "2.14.1", "fixedInVersion": "NotAvailable"}
    )
    rows = affected_from_inspector(finding, {LOG4SHELL})
    assert [r.package for r in rows] == [dataset.LOG4J_CORE, "org.apache.logging.log4j:log4j-api"]
    core, api = rows
    assert core.resource_label == "iot-gateway-api:2026.11.03,prod"
    assert (core.installed_version, core.fixed_version, api.fixed_version) == ("2.14.1", "2.15.0", None)
    assert (core.cvss, core.cvss_version, core.cvss_source) == (10.0, "3.1", "NVD")
    assert (core.epss, core.exploit_available, core.fix_available, core.in_use_count) == (0.94358, True, "YES", 6)
    assert core.first_observed == "2026-11-19T10:12:00Z" and core.status == "ACTIVE"
    assert core.finding_ids == (finding["findingArn"],) and core.sources == frozenset({"inspector"})
    assert affected_from_inspector(finding, {"CVE-2099-0001"}) == []


def test_cvss_prefers_inspectors_adjusted_score_else_the_highest_newest():
    finding = {"packageVulnerabilityDetails": {"cvss": [
        {"baseScore": 9.3, "version": "2.0", "source": "NVD"},
        {"baseScore": 9.8, "version": "3.1", "source": "NVD"},
        {"baseScore": 9.8, "version": "3.0", "source": "GITHUB"},
    ]}}  # fmt: skip
    assert pick_cvss(finding) == (9.8, "3.1", "NVD")
    finding["inspectorScoreDetails"] = {"adjustedCvss": {"score": 7.2, "version": "3.1", "scoreSource": "AMAZON_CVE"}}
    assert pick_cvss(finding) == (7.2, "3.1", "AMAZON_CVE")
    assert pick_cvss({}) == (None, None, None)


def test_lambda_layers_and_odd_or_missing_fields_do_not_crash():
    layer = next(f for f in log4shell_estate() if f["resources"][0]["type"] == "AWS_LAMBDA_FUNCTION")
    (row,) = affected_from_inspector(layer)
    assert row.resource_label == "device-shadow-sync (layer shared-java-libs:7)"
    bare = {"findingArn": "arn:x", "packageVulnerabilityDetails": {"vulnerabilityId": LOG4SHELL_2}, "resources": [
        {"type": "AWS_ECR_CONTAINER_IMAGE", "id": "img"},
        {"type": "SOMETHING_NEW", "id": "thing", "details": "not a dict"},
        {"type": "AWS_EC2_INSTANCE"},  # no id: skipped
    ], "epss": "high", "inspectorScore": "n/a", "firstObservedAt": "not a date"}  # fmt: skip
    rows = affected_from_inspector(bare)
    assert [(r.resource_type, r.resource_label, r.package, r.cvss, r.epss) for r in rows] == [
        ("AWS_ECR_CONTAINER_IMAGE", "img", None, None, None),
        ("SOMETHING_NEW", "thing", None, None, None),
    ]
    assert rows[0].account == "?" and rows[0].first_observed is None
    assert affected_from_inspector({"type": "NETWORK_REACHABILITY", "resources": []}) == []
