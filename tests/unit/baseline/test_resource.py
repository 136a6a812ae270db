"""The custom resource protocol: every request answered once, SUCCESS or FAILED with a reason naming the service and
the call, stable physical ids, and a rollback's Delete of a failed Create recognizable."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from findings_router.baseline.resource import (
    FAILED_CREATE_PREFIX,
    MAX_REASON_CHARS,
    SETTINGS_PROPERTY,
    BaselineError,
    Outcome,
    Request,
    aws_call,
    error_code,
    run,
    wait_until,
)
from tests.unit.baseline.helpers import REGION


def event(request_type: str = "Create", **extra: object) -> dict[str, object]:
    return {
        "RequestType": request_type,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/abc",
        "StackId": "arn:aws:cloudformation:eu-central-1:111122223333:stack/FindingsBaseline-dev/1",
        "RequestId": "req-1",
        "LogicalResourceId": "GuardDutyAdopt",
        "ResourceType": "Custom::FindingsBaselineGuardduty",
        "ResourceProperties": {"ServiceToken": "arn:…", SETTINGS_PROPERTY: json.dumps({"A": 1, "On": False})},
        **extra,
    }


def test_a_success_is_sent_once_with_the_physical_id_attributes_and_the_summary_as_reason():
    sent: list[tuple[str, dict]] = []
    seen: list[Request] = []

    def handler(request: Request) -> Outcome:
        seen.append(request)
        return Outcome("detector-1", {"Summary": "adopted", "DetectorId": "detector-1"})

    body = run(event(), handler, send=lambda url, data: sent.append((url, json.loads(data))))
    assert seen[0].settings == {"A": 1, "On": False}  # JSON keeps false a boolean (CloudFormation would send "false")
    assert [url for url, _ in sent] == ["https://cloudformation-custom-resource-response.example/abc"]
    assert sent[0][1] == body
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "detector-1"
    assert body["Data"] == {"Summary": "adopted", "DetectorId": "detector-1"}
    assert body["Reason"] == "adopted"
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        "arn:aws:cloudformation:eu-central-1:111122223333:stack/FindingsBaseline-dev/1",
        "req-1",
        "GuardDutyAdopt",
    )


def test_a_failed_create_names_service_and_call_and_gets_a_physical_id_its_rollback_recognizes():
    def handler(request: Request) -> Outcome:
        raise BaselineError("GuardDuty", "ListDetectors", "no detector in this account and Region")

    body = run(event(), handler, send=lambda *_: None)
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "GuardDuty ListDetectors: no detector in this account and Region"
    assert body["PhysicalResourceId"] == f"{FAILED_CREATE_PREFIX}req-1"
    rollback = Request.from_event(event("Delete", PhysicalResourceId=body["PhysicalResourceId"]))
    assert rollback.failed_create


def test_a_failed_update_keeps_the_existing_physical_id():
    def handler(request: Request) -> Outcome:
        raise BaselineError("Config", "PutConfigurationRecorder", "InvalidRoleException: no such role")

    body = run(event("Update", PhysicalResourceId="default"), handler, send=lambda *_: None)
    assert (body["Status"], body["PhysicalResourceId"]) == ("FAILED", "default")


def test_a_bug_still_answers_cloudformation_instead_of_leaving_it_waiting():
    def handler(request: Request) -> Outcome:
        raise KeyError("FindingPublishingFrequency")

    body = run(event(), handler, send=lambda *_: None)
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "unexpected KeyError: 'FindingPublishingFrequency'"


def test_a_long_reason_is_cut_to_fit_the_response():
    def handler(request: Request) -> Outcome:
        raise BaselineError("SecurityHub", "UpdateStandardsControl", "x" * 10_000)

    body = run(event(), handler, send=lambda *_: None)
    assert len(body["Reason"]) == MAX_REASON_CHARS


def test_a_response_that_cannot_be_sent_is_logged_not_raised(caplog):
    def broken(url: str, data: bytes) -> None:
        raise OSError("connection reset")

    body = run(event(), lambda request: Outcome("x", {"Summary": "ok"}), send=broken)
    assert body["Status"] == "SUCCESS"
    assert "could not send the response" in caplog.text


def test_settings_that_are_not_an_object_fail_the_request():
    bad = event(ResourceProperties={SETTINGS_PROPERTY: "[1, 2]"})
    body = run(bad, lambda request: Outcome("x"), send=lambda *_: None)
    assert body["Status"] == "FAILED"
    assert "must be a JSON object" in body["Reason"]


def test_old_settings_are_read_on_update():
    request = Request.from_event(
        event("Update", PhysicalResourceId="p", OldResourceProperties={SETTINGS_PROPERTY: json.dumps({"B": 2})})
    )
    assert (request.request_type, request.old_settings, request.physical_resource_id) == ("Update", {"B": 2}, "p")
    assert not request.failed_create


def test_aws_call_turns_an_aws_error_into_one_naming_service_call_code_and_message():
    client = boto3.client("guardduty", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        stubber.add_client_error("list_detectors", "BadRequestException", "The request is rejected", 400)
        with pytest.raises(BaselineError) as raised:
            aws_call("GuardDuty", "ListDetectors", client.list_detectors)
    assert str(raised.value) == "GuardDuty ListDetectors: BadRequestException: The request is rejected"
    assert error_code(raised.value) == "BadRequestException"
    assert error_code(ValueError("x")) is None


def test_wait_until_polls_until_done_or_out_of_time():
    now = [0.0]
    answers = iter(["pending", "pending", None])
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    assert (
        wait_until(lambda: next(answers), timeout_seconds=60, interval_seconds=5, sleep=sleep, clock=lambda: now[0])
        is None
    )
    assert slept == [5, 5]
    now[0] = 0.0
    assert (
        wait_until(lambda: "still pending", timeout_seconds=12, interval_seconds=5, sleep=sleep, clock=lambda: now[0])
        == "still pending"
    )
