"""The sweep over Regions and sources: Inspector cross-checked with Security Hub v2 (else v1), errors as one line
naming the missing permission, throttling ridden out by botocore's retries (recorded, never slept)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.stub import Stubber

from findings_router.psirt.inspector import cve_queries
from findings_router.psirt.securityhub import findings_v1_requests, findings_v2_requests
from findings_router.psirt.sweep import SweepError, SweepRequest, sweep
from findings_router_local.fakes.inspector import InspectorStandIn
from findings_router_local.fakes.inspector.dataset import LOG4SHELL, asff_of, log4shell_estate, ocsf_of
from tests.unit.psirt.conftest import REGION, served_clients

ONE = SweepRequest(cves=(LOG4SHELL,), regions=(REGION,), accounts=("111122223333",))


def _estate(account: str = "111122223333") -> list[dict[str, Any]]:
    return [
        f
        for f in log4shell_estate()
        if f["awsAccountId"] == account and f["status"] == "ACTIVE" and f["findingArn"].split(":")[3] == REGION
    ]


def _by_id(findings: list[dict[str, Any]], vulnerability_id: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["packageVulnerabilityDetails"]["vulnerabilityId"] == vulnerability_id]


def _clients(stubbed: dict[str, Stubber]) -> Any:
    return lambda service, region: stubbed[service].client


def _stub_inspector(stub: Stubber, request: SweepRequest, cve_findings: list, related: list) -> None:
    first, second = cve_queries(request.cves, accounts=request.accounts)
    stub.add_response(
        "list_findings", {"findings": cve_findings}, {"filterCriteria": first.filter_criteria, "maxResults": 100}
    )
    stub.add_response(
        "list_findings", {"findings": related}, {"filterCriteria": second.filter_criteria, "maxResults": 100}
    )


def _v2_params(request: SweepRequest) -> dict[str, Any]:
    (v2,) = findings_v2_requests(request.cves, accounts=request.accounts)
    return {**v2, "MaxResults": 100}


def test_inspector_rows_are_confirmed_by_security_hub_v2_and_merged(stubbed):
    findings = _estate()
    linux, windows = _by_id(findings, LOG4SHELL), _by_id(findings, "KB5008212")
    _stub_inspector(stubbed["inspector2"], ONE, linux, windows)
    # Security Hub also holds a finding Inspector did not give (another scanner's, say): it is kept, marked.
    other = copy.deepcopy(ocsf_of(linux[0]))
    other["finding_info"]["uid"] = "arn:aws:securityhub:eu-central-1:111122223333:finding/trivy-1"
    other["resources"][0]["uid"] = "arn:aws:ecr:eu-central-1:111122223333:repository/scanner-only/sha256:1"
    other["resources"][0]["image"]["repository_name"] = "scanner-only"
    v2 = [ocsf_of(f) for f in linux + windows] + [other]
    stubbed["securityhub"].add_response("get_findings_v2", {"Findings": v2}, _v2_params(ONE))
    result = sweep(ONE, _clients(stubbed), environments={"111122223333": "prod"})
    assert len(result.rows) == len(linux) + len(windows) + 1
    sources = {r.resource_label: r.sources for r in result.rows}
    assert sources["i-0f9e8d7c6b5a40312 (scada-historian)"] == {"inspector", "securityhub-v2"}
    assert sources["scanner-only:2026.11.03"] == {"securityhub-v2"}  # OCSF has one image tag
    assert all(r.environment == "prod" for r in result.rows)
    assert result.sources == {REGION: ["ListFindings", "GetFindingsV2"]}
    assert result.stats.calls == {"inspector2:ListFindings": 2, "securityhub:GetFindingsV2": 1}
    assert result.notes == []


def test_where_security_hub_v2_is_not_enabled_v1_answers_and_its_false_positive_is_dropped(stubbed):
    linux = _by_id(_estate(), LOG4SHELL)
    _stub_inspector(stubbed["inspector2"], ONE, linux, [])
    sh = stubbed["securityhub"]
    sh.add_client_error(
        "get_findings_v2", "ValidationException", "Security Hub V2 is not enabled", 400, expected_params=_v2_params(ONE)
    )
    impostor = copy.deepcopy(asff_of(linux[0]))  # a title with the prefix, about another CVE
    impostor["Id"] = impostor["Id"] + "-other"
    impostor["Title"] = f"{LOG4SHELL}1 - some-package"
    impostor["Vulnerabilities"][0]["Id"] = f"{LOG4SHELL}1"
    (v1,) = findings_v1_requests([LOG4SHELL], accounts=ONE.accounts)
    asff = [asff_of(f) for f in linux] + [impostor]
    sh.add_response("get_findings", {"Findings": asff}, {**v1, "MaxResults": 100})
    result = sweep(ONE, _clients(stubbed))
    assert len(result.rows) == len(linux)
    assert all(r.sources == {"inspector", "securityhub"} for r in result.rows)
    assert result.sources == {REGION: ["ListFindings", "GetFindings"]}
    (note,) = result.notes
    assert note.startswith(f"Security Hub v2 (GetFindingsV2) is not available in {REGION} (ValidationException")
    assert "used GetFindings (v1" in note


def test_inspector_access_denied_is_one_line_naming_the_action_and_the_delegated_administrator(stubbed):
    first, _ = cve_queries(ONE.cves, accounts=ONE.accounts)
    stubbed["inspector2"].add_client_error(
        "list_findings",
        "AccessDeniedException",
        "User: arn:aws:sts::444455556666:assumed-role/dev/ada is not authorized to perform: inspector2:ListFindings",
        403,
        expected_params={"filterCriteria": first.filter_criteria, "maxResults": 100},
    )
    with pytest.raises(SweepError) as denied:
        sweep(ONE, _clients(stubbed))
    message = str(denied.value)
    assert "\n" not in message
    assert message.startswith(f"inspector2:ListFindings denied in {REGION} (User: arn:aws:sts::444455556666")
    assert "allow inspector2:ListFindings" in message
    assert "Amazon Inspector delegated administrator account" in message


def test_security_hub_denied_is_a_note_under_auto_and_an_error_under_source_securityhub(stubbed):
    linux = _by_id(_estate(), LOG4SHELL)
    _stub_inspector(stubbed["inspector2"], ONE, linux, [])
    sh = stubbed["securityhub"]
    for _ in range(2):  # v2 refused, then v1 (asked after a v2 refusal) refused too
        sh.add_client_error("get_findings_v2", "AccessDeniedException", "not authorized: securityhub:GetFindings", 403)
        sh.add_client_error("get_findings", "AccessDeniedException", "not authorized: securityhub:GetFindings", 403)
    result = sweep(ONE, _clients(stubbed))
    assert len(result.rows) == len(linux) and result.sources == {REGION: ["ListFindings"]}
    assert result.notes[-1].startswith(f"no Security Hub cross-check: securityhub:GetFindings denied in {REGION}")
    strict = SweepRequest(cves=ONE.cves, regions=ONE.regions, accounts=ONE.accounts, source="securityhub")
    with pytest.raises(SweepError, match=r"^securityhub:GetFindings denied in eu-central-1 .*Security Hub delegated"):
        sweep(strict, _clients(stubbed))


def test_throttling_is_retried_by_botocore_and_the_report_is_complete(sleeps):
    standin = InspectorStandIn()
    standin.throttle(3)  # the first three calls, whatever they are: 429 ThrottlingException
    request = SweepRequest(cves=(LOG4SHELL,), regions=(REGION,))
    result = sweep(request, served_clients(standin))
    calm = sweep(request, served_clients(InspectorStandIn()))
    assert [r.resource_id for r in result.rows] == [r.resource_id for r in calm.rows] and len(result.rows) == 11
    assert standin.calls["inspector2:ListFindings"] == 2 + 3  # two queries, three retries
    assert result.stats.calls["inspector2:ListFindings"] == 5 and result.stats.retries["inspector2:ListFindings"] == 3
    assert len(sleeps) == 3 and all(0 <= s <= 4 for s in sleeps)  # jittered backoff, recorded instead of slept


def test_throttling_beyond_the_retries_is_a_clear_message(sleeps):
    standin = InspectorStandIn()
    standin.throttle(50, "inspector2")
    with pytest.raises(SweepError) as throttled:
        sweep(SweepRequest(cves=(LOG4SHELL,), regions=(REGION,)), served_clients(standin, max_attempts=3))
    assert str(throttled.value) == (
        f"inspector2:ListFindings in {REGION} is still throttled after 4 attempts (ThrottlingException): wait a "
        "minute and run it again, or ask for fewer Regions at a time"
    )
    assert len(sleeps) == 3


def test_regions_are_swept_one_by_one_and_aggregated_security_hub_rows_elsewhere_are_counted(sleeps):
    standin = InspectorStandIn(aggregator_region=REGION)
    request = SweepRequest(cves=(LOG4SHELL,), regions=(REGION,), count_first=True)
    progress: list[tuple[int, int | None]] = []
    result = sweep(request, served_clients(standin), progress=lambda done, total: progress.append((done, total)))
    assert {r.region for r in result.rows} == {REGION}
    assert result.elsewhere == {"us-east-1": 2}
    assert "Regions not asked for: us-east-1 (2)" in result.notes[-1]
    # ListFindingAggregations expected the 10 vulnerabilityId findings of eu-central-1; the Windows KB finding came
    # too, then Security Hub's 11 (13 with those of us-east-1, left out)
    assert progress == [(10, 10), (11, 11), (11 + 13, 11 + 13)]  # a page each: vulnerabilityId, related, v2
    both = sweep(SweepRequest(cves=(LOG4SHELL,), regions=(REGION, "us-east-1")), served_clients(InspectorStandIn()))
    assert {r.region for r in both.rows} == {REGION, "us-east-1"} and len(both.rows) == 13
    assert both.elsewhere == {}


@pytest.mark.parametrize(
    ("source", "asked", "answered"),
    [
        ("inspector", {"inspector2:ListFindings": 2}, ["ListFindings"]),
        ("securityhub", {"securityhub:GetFindingsV2": 1}, ["GetFindingsV2"]),
    ],
)
def test_one_source_alone_asks_only_that_service(source, asked, answered):
    standin = InspectorStandIn()
    request = SweepRequest(cves=(LOG4SHELL,), regions=(REGION,), source=source)
    result = sweep(request, served_clients(standin))
    assert standin.calls == asked and result.sources == {REGION: answered}
    assert len(result.rows) == 11
    assert all(r.sources == {"inspector" if source == "inspector" else "securityhub-v2"} for r in result.rows)


def test_a_region_without_security_hub_is_one_note_and_inspector_still_answers():
    standin = InspectorStandIn(securityhub_enabled=False)
    result = sweep(SweepRequest(cves=(LOG4SHELL,), regions=(REGION,)), served_clients(standin))
    assert len(result.rows) == 11 and result.sources == {REGION: ["ListFindings"]}
    assert result.notes == [
        f"no Security Hub cross-check: Security Hub is not enabled in {REGION} (Account 111122223333 is not subscribed "
        f"to AWS Security Hub) (and Security Hub v2 (GetFindingsV2) is not available in {REGION} "
        "(InvalidAccessException: Account 111122223333 is not subscribed to AWS Security Hub))"
    ]
    assert standin.calls == {"inspector2:ListFindings": 2, "securityhub:GetFindingsV2": 1, "securityhub:GetFindings": 1}
