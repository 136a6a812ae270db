"""The Security Hub write-back over real HTTP: `BotoSecurityHub` and a real boto3 client against the local stand-in
(findings_router_local/securityhub_local.py), which checks every request against botocore's service model.

botocore's retry delays are recorded instead of slept (`backoff`), so retries cost no wall-clock time."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import socket

import boto3
import pytest
from botocore.exceptions import ClientError

from findings_router.adapters.securityhub import BotoSecurityHub, FindingRef
from findings_router.domain.normalize import normalize_event
from findings_router_local.securityhub_local import (
    ACCESS_DENIED,
    ASFF_IMPORTED,
    ASFF_OPERATION,
    BAD_GATEWAY,
    DOCUMENTED_LIMITS,
    DROPPED_CONNECTION,
    OCSF_IMPORTED,
    OCSF_OPERATION,
    THROTTLED,
    SecurityHubContractError,
    SecurityHubStandIn,
    render_calls,
    securityhub_model,
    validate_request,
)
from tests.builders import asff, load_fixture

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 21, 12, 30, 15, 123000, tzinfo=dt.UTC)


@pytest.fixture
def hub():
    with SecurityHubStandIn(clock=lambda: NOW) as stand_in:
        yield stand_in


@pytest.fixture
def rounds() -> list[float]:
    """The adapter's own pauses between UnprocessedFindings rounds, recorded instead of slept."""
    return []


@pytest.fixture
def writeback(hub, backoff, rounds) -> BotoSecurityHub:
    return BotoSecurityHub(hub.client(max_attempts=3), sleep=rounds.append)


def asff_ref(finding: dict) -> FindingRef:
    return FindingRef("asff", finding["Id"], finding["ProductArn"], finding["AwsAccountId"])


def ocsf_finding() -> dict:
    return load_fixture("ocsf_guardduty_detection.json")["detail"]["findings"][0]


def ocsf_ref(finding: dict) -> FindingRef:
    # The router's identity spelling (…:product/…); the adapter sends …:productv2/… to BatchUpdateFindingsV2.
    product = finding["metadata"]["product"]["uid"].replace(":productv2/", ":product/", 1)
    return FindingRef("ocsf", finding["finding_info"]["uid"], product, finding["cloud"]["account"]["uid"])


# --------------------------------------------------------------------------- the happy paths


def test_asff_note_and_workflow_land_without_touching_updated_at(hub, writeback):
    finding = asff(severity="CRITICAL")
    key = hub.put_finding(finding)

    result = writeback.update([asff_ref(finding)], "Paged PagerDuty: PDEMO0001", "NOTIFIED")

    assert (result.updated, result.failed) == (1, [])
    stored = hub.finding(key)
    assert stored["Workflow"]["Status"] == "NOTIFIED" == hub.workflow(finding["Id"])
    assert stored["Note"] == {
        "Text": "Paged PagerDuty: PDEMO0001",
        "UpdatedBy": "findings-router",
        "UpdatedAt": "2026-11-21T12:30:15.123Z",
    }
    assert stored["UpdatedAt"] == finding["UpdatedAt"]  # BatchUpdateFindings does not change UpdatedAt
    assert hub.notes(key) == ["Paged PagerDuty: PDEMO0001"]
    [call] = hub.calls
    assert (call.method, call.path, call.operation, call.status, call.region) == (
        "PATCH",
        "/findings/batchupdate",
        ASFF_OPERATION,
        200,
        "eu-central-1",
    )
    assert call.request == {
        "FindingIdentifiers": [{"Id": finding["Id"], "ProductArn": finding["ProductArn"]}],
        "Note": {"Text": "Paged PagerDuty: PDEMO0001", "UpdatedBy": "findings-router"},
        "Workflow": {"Status": "NOTIFIED"},
    }


def test_asff_echo_is_the_updated_finding_and_the_router_reads_it_back(hub, writeback):
    finding = asff()
    hub.put_finding(finding)
    writeback.update([asff_ref(finding)], "resolved by Ada", "RESOLVED")

    [echo] = hub.take_echoes()
    assert hub.take_echoes() == []  # taken once; `echoes` keeps the history
    assert len(hub.echoes) == 1
    assert echo["detail-type"] == ASFF_IMPORTED
    assert echo["source"] == "aws.securityhub"
    assert echo["region"] == "eu-central-1"
    assert echo["resources"] == [f"{finding['ProductArn']}/{finding['Id']}"]
    [echoed] = echo["detail"]["findings"]
    assert echoed["UpdatedAt"] == finding["UpdatedAt"]
    assert echoed["Workflow"]["Status"] == "RESOLVED"
    [normalized] = normalize_event(echo).findings
    assert (normalized.id, normalized.product_arn) == (finding["Id"], finding["ProductArn"])
    assert normalized.workflow_status == "RESOLVED"
    assert normalized.note == "resolved by Ada"


def test_ocsf_comment_and_status_land_without_touching_modified_time(hub, writeback):
    finding = ocsf_finding()
    key = hub.put_finding(finding)

    result = writeback.update([ocsf_ref(finding)], "Paged PagerDuty: PDEMO0002", "NOTIFIED")

    assert (result.updated, result.failed) == (1, [])
    stored = hub.finding(key)
    assert (stored["status_id"], stored["status"], stored["comment"]) == (
        2,
        "In Progress",
        "Paged PagerDuty: PDEMO0002",
    )
    assert hub.status_id(key) == 2
    assert stored["finding_info"]["modified_time"] == finding["finding_info"]["modified_time"]
    assert stored["finding_info"]["modified_time_dt"] == finding["finding_info"]["modified_time_dt"]
    assert hub.notes(key) == ["Paged PagerDuty: PDEMO0002"]
    [call] = hub.calls_to(OCSF_OPERATION)
    assert (call.method, call.path, call.status) == ("PATCH", "/findingsv2/batchupdatev2", 200)
    assert call.response == {
        "ProcessedFindings": [
            {
                "FindingIdentifier": {
                    "CloudAccountUid": "444455556666",
                    "FindingInfoUid": finding["finding_info"]["uid"],
                    "MetadataProductUid": finding["metadata"]["product"]["uid"],
                },
                "MetadataUid": finding["metadata"]["uid"],
            }
        ],
        "UnprocessedFindings": [],
    }

    [echo] = hub.take_echoes()
    assert (echo["detail-type"], echo["resources"]) == (OCSF_IMPORTED, [finding["metadata"]["uid"]])
    [normalized] = normalize_event(echo).findings
    assert (normalized.id, normalized.product_arn) == (ocsf_ref(finding).id, ocsf_ref(finding).product_arn)
    assert normalized.workflow_status == "NOTIFIED"


def test_asff_and_ocsf_copies_of_one_finding_are_kept_apart(hub, writeback):
    asff_copy = load_fixture("asff_guardduty_ssh_bruteforce.json")["detail"]["findings"][0]
    ocsf_copy = load_fixture("ocsf_guardduty_same_as_asff.json")["detail"]["findings"][0]
    asff_key, ocsf_key = hub.put_finding(asff_copy), hub.put_finding(ocsf_copy)
    assert asff_key.id == ocsf_key.id

    writeback.update([asff_ref(asff_copy), ocsf_ref(ocsf_copy)], "paged", "NOTIFIED")

    assert hub.workflow(asff_key.id) == "NOTIFIED"  # format-specific look-ups are unambiguous
    assert hub.status_id(ocsf_key.id) == 2
    with pytest.raises(ValueError, match="FindingKey"):
        hub.notes(asff_key.id)
    assert hub.notes(asff_key) == hub.notes(ocsf_key) == ["paged"]
    assert [c.operation for c in hub.calls] == [ASFF_OPERATION, OCSF_OPERATION]
    assert [e["detail-type"] for e in hub.take_echoes()] == [ASFF_IMPORTED, OCSF_IMPORTED]


# --------------------------------------------------------------------------- partial failures


def test_unknown_findings_come_back_failed_and_known_ones_still_update(hub, writeback):
    known, unknown = asff(), asff()
    known_ocsf, unknown_ocsf = ocsf_finding(), copy.deepcopy(ocsf_finding())
    unknown_ocsf["finding_info"]["uid"] += "-gone"
    hub.put_finding(known)
    hub.put_finding(known_ocsf)

    refs = [asff_ref(known), asff_ref(unknown), ocsf_ref(known_ocsf), ocsf_ref(unknown_ocsf)]
    result = writeback.update(refs, "paged", "NOTIFIED")

    assert result.updated == 2
    assert result.failed == [(refs[1], "FindingNotFound"), (refs[3], "ResourceNotFoundException")]
    assert hub.calls[0].response["UnprocessedFindings"] == [
        {
            "FindingIdentifier": {"Id": unknown["Id"], "ProductArn": unknown["ProductArn"]},
            "ErrorCode": "FindingNotFound",
            "ErrorMessage": "Finding Not Found",
        }
    ]
    assert len(hub.take_echoes()) == 2  # only the updated findings echo
    assert [c.operation for c in hub.calls] == [ASFF_OPERATION, OCSF_OPERATION]  # permanent: not retried


def test_transient_unprocessed_finding_is_retried_by_the_adapter(hub, writeback, rounds):
    finding = asff()
    key = hub.put_finding(finding)
    hub.fail_findings(key, error_code="ConcurrentUpdateError")

    result = writeback.update([asff_ref(finding)], "paged", "NOTIFIED")

    assert (result.updated, result.failed) == (1, [])
    assert [c.response["UnprocessedFindings"][0]["ErrorCode"] for c in hub.calls[:1]] == ["ConcurrentUpdateError"]
    assert len(hub.calls) == 2 and len(rounds) == 1
    assert hub.notes(key) == ["paged"]  # applied once, by the second round


@pytest.mark.parametrize("code", ["ConflictException", "InternalServerException"])
def test_transient_unprocessed_ocsf_finding_is_retried_by_the_adapter(hub, writeback, code):
    finding = ocsf_finding()
    key = hub.put_finding(finding)
    hub.fail_findings(key, error_code=code)

    result = writeback.update([ocsf_ref(finding)], "paged", "NOTIFIED")

    assert (result.updated, result.failed) == (1, [])


def test_fail_findings_accepts_documented_codes_only(hub):
    with pytest.raises(ValueError, match="documented"):
        hub.fail_findings("any", error_code="ThrottlingException")


# --------------------------------------------------------------------------- whole-request faults and retries


def test_throttling_is_retried_by_botocore_then_succeeds(hub, writeback, backoff):
    finding = asff()
    key = hub.put_finding(finding)
    hub.fail_for(2, THROTTLED)

    result = writeback.update([asff_ref(finding)], "paged", "NOTIFIED")

    assert (result.updated, result.failed) == (1, [])
    assert [(c.status, c.error_code) for c in hub.calls] == [
        (429, "ThrottlingException"),
        (429, "ThrottlingException"),
        (200, None),
    ]
    assert len(backoff) == 2  # botocore's standard mode backed off twice (recorded, not slept)
    assert hub.notes(key) == ["paged"]
    assert len(hub.take_echoes()) == 1


def test_bad_gateway_is_retried_by_botocore(hub, writeback, backoff):
    finding = ocsf_finding()
    key = hub.put_finding(finding)
    hub.fail_for(2, dataclasses.replace(BAD_GATEWAY, operation=OCSF_OPERATION))

    result = writeback.update([ocsf_ref(finding)], "paged", "NOTIFIED")

    assert (result.updated, result.failed) == (1, [])
    assert [c.status for c in hub.calls] == [502, 502, 200]
    assert len(backoff) == 2
    assert hub.status_id(key) == 2


def test_dropped_connection_is_retried_by_botocore(hub, writeback, backoff):
    finding = asff()
    hub.put_finding(finding)
    hub.fail_next(DROPPED_CONNECTION)

    assert writeback.update([asff_ref(finding)], "paged").updated == 1
    assert [c.status for c in hub.calls] == [None, 200]


def test_throttling_beyond_max_attempts_surfaces_as_client_error(hub, backoff):
    finding = asff()
    hub.put_finding(finding)
    hub.fail_for(3, THROTTLED)
    client = hub.client(max_attempts=2)  # botocore's max_attempts counts retries after the first attempt

    with pytest.raises(ClientError) as caught:
        BotoSecurityHub(client).update([asff_ref(finding)], "paged")

    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(hub.calls) == 3


def test_access_denied_surfaces_and_is_not_retried(hub, writeback):
    finding = asff()
    key = hub.put_finding(finding)
    hub.fail_next(ACCESS_DENIED)

    with pytest.raises(ClientError) as caught:
        writeback.update([asff_ref(finding)], "paged", "NOTIFIED")

    error = caught.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert "not authorized to perform: securityhub:BatchUpdateFindings" in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(hub.calls) == 1
    assert hub.workflow(key) == "NEW"
    assert hub.notes(key) == []
    assert hub.take_echoes() == []


def test_requests_signed_for_another_region_are_refused(hub):
    client = boto3.client(
        "securityhub",
        endpoint_url=hub.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with pytest.raises(ClientError) as caught:
        client.batch_update_findings(FindingIdentifiers=[{"Id": "x", "ProductArn": "y"}])
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# --------------------------------------------------------------------------- the contract


PRODUCT = "arn:aws:securityhub:eu-central-1::product/aws/guardduty"
IDENT = {"Id": "arn:aws:guardduty:eu-central-1:111122223333:detector/d/finding/1", "ProductArn": PRODUCT}
OCSF_IDENT = {
    "CloudAccountUid": "111122223333",
    "FindingInfoUid": "arn:aws:guardduty:eu-central-1:111122223333:detector/d/finding/1",
    "MetadataProductUid": "arn:aws:securityhub:eu-central-1::productv2/aws/guardduty",
}


@pytest.mark.parametrize(
    ("method", "kwargs", "expected"),
    [
        ("batch_update_findings", {"FindingIdentifiers": [{"Id": "x"}]}, 'FindingIdentifiers[0]: "ProductArn"'),
        (
            "batch_update_findings",
            {"FindingIdentifiers": [{"Id": 5, "ProductArn": PRODUCT}]},
            "FindingIdentifiers[0].Id",
        ),
        ("batch_update_findings", {"FindingIdentifiers": [{"Id": " ", "ProductArn": PRODUCT}]}, "must match"),
        ("batch_update_findings", {"FindingIdentifiers": [IDENT] * 101}, "valid max length: 100"),
        ("batch_update_findings", {"FindingIdentifiers": [IDENT], "Workflow": {"Status": "DONE"}}, "Workflow.Status"),
        (
            "batch_update_findings",
            {"FindingIdentifiers": [IDENT], "Note": {"Text": "x" * 513, "UpdatedBy": "findings-router"}},
            "Note.Text, value: 513, valid max length: 512",
        ),
        (
            "batch_update_findings",
            {"FindingIdentifiers": [IDENT], "Note": {"Text": "ok", "UpdatedBy": "y" * 513}},
            "Note.UpdatedBy",
        ),
        ("batch_update_findings", {"FindingIdentifiers": [IDENT], "Note": {"Text": "no author"}}, '"UpdatedBy"'),
        ("batch_update_findings", {"FindingIdentifiers": [IDENT], "Confidence": 101}, "valid max range: 100"),
        ("batch_update_findings_v2", {"FindingIdentifiers": [OCSF_IDENT], "Comment": "x" * 513}, "Comment"),
        ("batch_update_findings_v2", {"FindingIdentifiers": [OCSF_IDENT], "StatusId": 7}, "StatusId, value: 7"),
        ("batch_update_findings_v2", {"FindingIdentifiers": [OCSF_IDENT], "SeverityId": "High"}, "SeverityId"),
        ("batch_update_findings_v2", {"FindingIdentifiers": [OCSF_IDENT] * 101}, "valid max length: 100"),
        (
            "batch_update_findings_v2",
            {"FindingIdentifiers": [OCSF_IDENT], "MetadataUids": ["abc"], "Comment": "x"},
            "cannot use MetadataUids together with FindingIdentifiers",
        ),
        ("batch_update_findings_v2", {"Comment": "x"}, "MetadataUids or FindingIdentifiers"),
    ],
)
def test_contract_violations_are_answered_400(hub, method, kwargs, expected):
    client = hub.client(parameter_validation=False)  # send what the client-side validator would have stopped

    with pytest.raises(ClientError) as caught:
        getattr(client, method)(**kwargs)

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == (
        "InvalidInputException" if method == "batch_update_findings" else "ValidationException"
    )
    assert expected in error["Error"]["Message"]
    assert len(hub.calls) == 1  # a 400 is not retried
    [rejected] = hub.take_rejected()
    assert any(expected in e for e in rejected.errors)


def test_botocore_client_side_validation_lets_an_overlong_note_through(hub):
    """Only the server knows Note.Text's 512 limit: this is why the adapter clips notes."""
    client = hub.client()  # client-side validation on
    with pytest.raises(ClientError, match="valid max length: 512"):
        client.batch_update_findings(FindingIdentifiers=[IDENT], Note={"Text": "x" * 600, "UpdatedBy": "me"})
    hub.take_rejected()

    hub.put_finding(asff(id=IDENT["Id"]))
    assert BotoSecurityHub(client).update([FindingRef("asff", IDENT["Id"], PRODUCT, "1")], "x" * 600).updated == 1
    assert len(hub.notes(IDENT["Id"])[0]) == 512


def test_unknown_members_are_contract_violations():
    # botocore's serializer cannot even send an unknown member, so this is checked on the validator itself.
    errors = validate_request(ASFF_OPERATION, {"FindingIdentifiers": [IDENT], "Workflow": {"Status": "NEW", "X": 1}})
    assert errors == ['Unknown parameter in Workflow: "X", must be one of: Status']
    assert validate_request(OCSF_OPERATION, {"FindingIdentifiers": [OCSF_IDENT], "Comment": "ok", "StatusId": 4}) == []


def test_untaken_contract_violation_fails_the_block():
    with pytest.raises(SecurityHubContractError, match=r"Workflow\.Status"), SecurityHubStandIn() as stand_in:
        client = stand_in.client(parameter_validation=False)
        with contextlib.suppress(ClientError):  # swallowed, as the router swallows write-back errors
            client.batch_update_findings(FindingIdentifiers=[IDENT], Workflow={"Status": "CLOSED"})


@pytest.mark.parametrize(
    "limit", [lim for lim in DOCUMENTED_LIMITS if lim.doc_shape], ids=lambda limit: f"{limit.operation}.{limit.path}"
)
def test_documented_limits_are_quoted_from_botocores_model(limit):
    """The limits the model's shapes do not carry are still in its documentation (Note.UpdatedBy's is only in the
    CloudFormation docs)."""
    shape = securityhub_model().shape_for(limit.doc_shape)
    assert limit.quote in shape.members[limit.doc_member].documentation


def test_routes_are_the_models_http_traits():
    model = securityhub_model()
    assert model.operation_model(ASFF_OPERATION).http == {"method": "PATCH", "requestUri": "/findings/batchupdate"}
    assert model.operation_model(OCSF_OPERATION).http == {"method": "PATCH", "requestUri": "/findingsv2/batchupdatev2"}


# --------------------------------------------------------------------------- lifecycle and wiring


def test_service_endpoint_environment_reaches_the_stand_in(hub, monkeypatch):
    """How to point the real handler's `boto3.client("securityhub")` here while other services stay on moto."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # e.g. moto; must not be used for securityhub
    for name, value in hub.environment().items():
        monkeypatch.setenv(name, value)
    finding = asff()
    hub.put_finding(finding)
    client = boto3.client(
        "securityhub", region_name="eu-central-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    response = client.batch_update_findings(
        FindingIdentifiers=[{"Id": finding["Id"], "ProductArn": finding["ProductArn"]}]
    )
    assert response["ProcessedFindings"] == [{"Id": finding["Id"], "ProductArn": finding["ProductArn"]}]
    assert len(hub.calls) == 1


def test_binds_loopback_only_and_stops_with_the_block():
    with SecurityHubStandIn() as stand_in:
        host, port = stand_in._http.address
        assert host == "127.0.0.1"
        assert stand_in.url == f"http://127.0.0.1:{port}"
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(RuntimeError):
        _ = stand_in.url


def test_render_calls_lists_each_call(hub, writeback):
    finding = asff()
    hub.put_finding(finding)
    hub.fail_next(THROTTLED)
    writeback.update([asff_ref(finding)], "paged", "NOTIFIED")
    table = render_calls(hub.calls)
    assert "ThrottlingException" in table
    assert "NOTIFIED" in table
