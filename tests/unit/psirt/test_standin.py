"""The stand-in answers as botocore's models say the services do: its answers, parsed by real boto3 clients (served
in-process), are checked against the output shapes (required members, enums, list limits), and its filters, pages
and errors behave as the services'."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from findings_router.psirt.inspector import filter_criteria
from findings_router.psirt.securityhub import findings_v1_filters, findings_v2_filters
from findings_router_local.fakes.inspector import InspectorStandIn, synthetic_findings
from findings_router_local.fakes.inspector.dataset import LOG4SHELL, LOG4SHELL_2, NOW
from tests.unit.psirt.conftest import make_client


def _strict(value: Any, shape: Any, where: str = "") -> list[str]:
    """What ParamValidator does not check: enums, the maximum length of lists, required members (recursively)."""
    problems: list[str] = []
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict) and not shape.is_document_type:
        problems += [f"{where}.{m}: required" for m in shape.required_members if m not in value]
        for name, member in value.items():
            if name in shape.members:
                problems += _strict(member, shape.members[name], f"{where}.{name}")
    elif kind == "list" and isinstance(value, list):
        limit = shape.metadata.get("max")
        if limit is not None and len(value) > limit:
            problems.append(f"{where}: {len(value)} items, at most {limit}")
        for i, item in enumerate(value):
            problems += _strict(item, shape.member, f"{where}[{i}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            problems += _strict(item, shape.value, f"{where}[{key}]")
    elif kind == "string" and getattr(shape, "enum", None) and value not in shape.enum:
        problems.append(f"{where}: {value!r} is not one of {shape.enum}")
    return problems


def _check(client: Any, operation: str, response: dict[str, Any]) -> None:
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    shape = client.meta.service_model.operation_model(operation).output_shape
    report = ParamValidator().validate(body, shape)
    assert not report.has_errors(), report.generate_report()
    assert _strict(body, shape) == []


def test_list_findings_answers_in_pages_of_25_that_botocore_accepts(standin: InspectorStandIn):
    standin.findings = synthetic_findings(60, seed="shape")
    client = standin.attach(make_client("inspector2"))
    first = client.list_findings(filterCriteria=filter_criteria([LOG4SHELL]), maxResults=100)
    _check(client, "ListFindings", first)
    assert len(first["findings"]) == 25 and first["nextToken"]
    assert isinstance(first["findings"][0]["firstObservedAt"], dt.datetime)  # epoch seconds on the wire, parsed
    pages = client.get_paginator("list_findings").paginate(filterCriteria=filter_criteria([LOG4SHELL]))
    sizes = [len(p["findings"]) for p in pages]
    assert sizes == [25, 25, 10]


def test_the_whole_estate_is_valid_inspector_output_and_its_security_hub_copies_too(standin: InspectorStandIn):
    inspector = standin.attach(make_client("inspector2"))
    for page in inspector.get_paginator("list_findings").paginate(filterCriteria={}):
        _check(inspector, "ListFindings", page)
    securityhub = standin.attach(make_client("securityhub"))
    for page in securityhub.get_paginator("get_findings").paginate():
        _check(securityhub, "GetFindings", page)
    for page in securityhub.get_paginator("get_findings_v2").paginate():
        _check(securityhub, "GetFindingsV2", page)
    aggregations = inspector.list_finding_aggregations(
        aggregationType="TITLE", aggregationRequest={"titleAggregation": {"vulnerabilityIds": [{"comparison": "EQUALS", "value": LOG4SHELL}]}}
    )  # fmt: skip
    _check(inspector, "ListFindingAggregations", aggregations)
    assert sum(r["titleAggregation"]["severityCounts"]["all"] for r in aggregations["responses"]) == 10  # eu-central-1


def test_inspector_filters_apply_as_the_service_applies_them(standin: InspectorStandIn):
    client = standin.attach(make_client("inspector2"))

    def arns(**criteria: Any) -> set[str]:
        pages = client.get_paginator("list_findings").paginate(filterCriteria=criteria)
        return {f["findingArn"].rsplit("/", 1)[-1][:6] for p in pages for f in p["findings"]}

    active = arns(**filter_criteria([LOG4SHELL]))
    assert len(active) == 10  # eu-central-1 only: the request is signed for it
    assert arns(**filter_criteria([LOG4SHELL], related=True)) == arns(
        vulnerabilityId=[{"comparison": "EQUALS", "value": "KB5008212"}]
    )  # only the Windows KB finding lists log4shell among its related vulnerabilities (in this Region)
    assert len(arns(**filter_criteria([LOG4SHELL], status="CLOSED"))) == 2
    assert len(arns(**filter_criteria([LOG4SHELL, LOG4SHELL_2]))) == 10 + 4
    assert arns(**filter_criteria([LOG4SHELL], accounts=["999988887777"])) == arns(
        ecrImageRepositoryName=[{"comparison": "PREFIX", "value": "legacy"}], vulnerabilityId=[{"comparison": "EQUALS", "value": LOG4SHELL}]
    )  # fmt: skip
    not_prod = arns(
        vulnerabilityId=[{"comparison": "EQUALS", "value": LOG4SHELL}],
        awsAccountId=[{"comparison": "NOT_EQUALS", "value": "111122223333"}, {"comparison": "NOT_EQUALS", "value": "111122224444"}],
        findingStatus=[{"comparison": "EQUALS", "value": "ACTIVE"}],
    )  # fmt: skip
    assert len(not_prod) == 4  # negatives are ANDed: stg (2), dev and the unowned account
    recent = filter_criteria([LOG4SHELL], first_observed=(NOW - dt.timedelta(days=1), None))
    assert len(arns(**recent)) == 1  # telemetry-ingest
    assert (
        len(arns(inspectorScore=[{"lowerInclusive": 9.0}], **filter_criteria([LOG4SHELL]))) == 9
    )  # not build-runner (8.1)


def test_a_filter_the_service_refuses_or_the_stand_in_lacks_is_a_validation_error(standin: InspectorStandIn):
    client = standin.attach(make_client("inspector2"))
    with pytest.raises(ClientError) as contains:
        client.list_findings(filterCriteria={"title": [{"comparison": "CONTAINS", "value": "log4j"}]})
    assert contains.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError, match="not implemented by the local stand-in"):
        client.list_findings(filterCriteria={"portRange": [{"beginInclusive": 1}]})
    with pytest.raises(ClientError, match="nextToken"):
        client.list_findings(filterCriteria=filter_criteria([LOG4SHELL]), nextToken="forged")


def test_security_hub_v2_filters_on_the_cve_and_v1_on_the_title(standin: InspectorStandIn):
    client = standin.attach(make_client("securityhub"))
    v2 = client.get_findings_v2(Filters=findings_v2_filters([LOG4SHELL]))["Findings"]
    assert len(v2) == 11  # 10 by cve.uid and the Windows KB finding by related_vulnerabilities
    v1 = client.get_findings(Filters=findings_v1_filters(["CVE-2021-4422"]))["Findings"]
    assert {f["Title"].split(" ")[0] for f in v1} == {LOG4SHELL}  # the prefix matches the longer id
    assert len(v1) == 10  # closed (ARCHIVED) findings are not ACTIVE; the KB finding's title is its KB id


def test_errors_are_the_services_own(standin: InspectorStandIn, sleeps: list[float]):
    inspector = standin.attach(make_client("inspector2", max_attempts=1))  # retries: one
    securityhub = standin.attach(make_client("securityhub", max_attempts=0))
    standin.deny("securityhub")
    with pytest.raises(ClientError) as denied:
        securityhub.get_findings(Filters=findings_v1_filters([LOG4SHELL]))
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "securityhub:GetFindings" in denied.value.response["Error"]["Message"]
    standin.throttle(2, "inspector2")
    with pytest.raises(ClientError) as throttled:
        inspector.list_findings(filterCriteria=filter_criteria([LOG4SHELL]))
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert standin.calls["inspector2:ListFindings"] == 2 and len(sleeps) == 1  # one retry, not slept
    disabled = InspectorStandIn(v2_enabled=False)
    client = disabled.attach(make_client("securityhub", max_attempts=0))
    with pytest.raises(ClientError) as not_enabled:
        client.get_findings_v2(Filters=findings_v2_filters([LOG4SHELL]))
    assert not_enabled.value.response["Error"]["Code"] == "ValidationException"


def test_attaching_a_client_twice_serves_each_request_once(standin: InspectorStandIn):
    client = standin.attach(standin.attach(make_client("inspector2")))
    client.list_findings(filterCriteria=filter_criteria([LOG4SHELL]))
    assert standin.calls == {"inspector2:ListFindings": 1}
    assert len(standin.accepted) == 1
