"""GuardDuty adopt: the existing detector is updated (never a second one created), a member account's detector is left
to its administrator, no detector is a clear failure, and Delete touches nothing."""

from __future__ import annotations

import pytest

from findings_router.baseline import guardduty
from findings_router.baseline.resource import BaselineError, run
from findings_router.settings.baseline import GuardDutyProtections, guardduty_features
from tests.unit.baseline.helpers import make_request

FEATURES = [f.api() for f in guardduty_features(GuardDutyProtections(), production=True)]
SETTINGS = {"FindingPublishingFrequency": "FIFTEEN_MINUTES", "Features": FEATURES}
# GetAdministratorAccount of an account that left its administrator. (A standalone account's answer has no
# Administrator at all, which botocore's model marks required, so the Stubber cannot return it: see
# test_a_standalone_account_has_no_administrator.)
NO_ADMINISTRATOR = {"Administrator": {"AccountId": "999988887777", "RelationshipStatus": "Removed"}}


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_an_existing_detector_is_updated_not_created(stubbed, request_type):
    gd = stubbed("guardduty")
    gd.add_response("list_detectors", {"DetectorIds": ["12abc34d567e8fa901bc2d34e56789f0"]}, {})
    gd.add_response("get_administrator_account", NO_ADMINISTRATOR, {"DetectorId": "12abc34d567e8fa901bc2d34e56789f0"})
    gd.add_response(
        "update_detector",
        {},
        {
            "DetectorId": "12abc34d567e8fa901bc2d34e56789f0",
            "Enable": True,
            "FindingPublishingFrequency": "FIFTEEN_MINUTES",
            "Features": FEATURES,
        },
    )
    outcome = guardduty.handle(make_request(request_type, SETTINGS), gd.client)
    assert outcome.physical_resource_id == "12abc34d567e8fa901bc2d34e56789f0"
    assert outcome.data["DetectorId"] == "12abc34d567e8fa901bc2d34e56789f0"
    assert "findings every FIFTEEN_MINUTES" in outcome.data["Summary"]
    assert "RUNTIME_MONITORING" in outcome.data["Summary"]


def test_the_features_sent_are_the_api_shapes_with_agent_management():
    runtime = next(f for f in FEATURES if f["Name"] == "RUNTIME_MONITORING")
    assert runtime == {
        "Name": "RUNTIME_MONITORING",
        "Status": "ENABLED",
        "AdditionalConfiguration": [
            {"Name": "EKS_ADDON_MANAGEMENT", "Status": "ENABLED"},
            {"Name": "ECS_FARGATE_AGENT_MANAGEMENT", "Status": "ENABLED"},
            {"Name": "EC2_AGENT_MANAGEMENT", "Status": "ENABLED"},
        ],
    }
    # Never both runtime features (GuardDuty refuses the pair), never the legacy DataSources.
    assert "EKS_RUNTIME_MONITORING" not in {f["Name"] for f in FEATURES}


def test_detectors_are_listed_across_pages(stubbed):
    gd = stubbed("guardduty")
    gd.add_response("list_detectors", {"DetectorIds": [], "NextToken": "t1"}, {})
    gd.add_response("list_detectors", {"DetectorIds": ["d2"]}, {"NextToken": "t1"})
    gd.add_response("get_administrator_account", NO_ADMINISTRATOR, {"DetectorId": "d2"})
    gd.add_response("update_detector", {}, {"DetectorId": "d2", "Enable": True, **SETTINGS})
    assert guardduty.handle(make_request("Create", SETTINGS), gd.client).physical_resource_id == "d2"


def test_a_standalone_account_has_no_administrator():
    class StandaloneClient:
        def get_administrator_account(self, DetectorId: str) -> dict:
            return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    assert guardduty._administrator(StandaloneClient(), "d1") is None


def test_no_detector_fails_with_what_to_do(stubbed):
    gd = stubbed("guardduty")
    gd.add_response("list_detectors", {"DetectorIds": []}, {})
    body = run(
        {"RequestType": "Create", "RequestId": "r", "ResourceProperties": {"Settings": "{}"}},
        lambda request: guardduty.handle(request, gd.client),
        send=lambda *_: None,
    )
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("GuardDuty ListDetectors: no detector in this account and Region")
    assert "mode to manage" in body["Reason"]


def test_a_member_accounts_detector_is_left_to_its_administrator(stubbed):
    gd = stubbed("guardduty")
    gd.add_response("list_detectors", {"DetectorIds": ["d1"]}, {})
    gd.add_response(
        "get_administrator_account",
        {"Administrator": {"AccountId": "999988887777", "RelationshipStatus": "Enabled", "InvitationId": "i"}},
        {"DetectorId": "d1"},
    )
    outcome = guardduty.handle(make_request("Update", SETTINGS), gd.client)  # no UpdateDetector stubbed: none made
    assert outcome.physical_resource_id == "d1"
    assert "member of administrator account 999988887777" in outcome.data["Summary"]


def test_a_refused_update_names_the_call_and_guardduty_answer(stubbed):
    gd = stubbed("guardduty")
    gd.add_response("list_detectors", {"DetectorIds": ["d1"]}, {})
    gd.add_response("get_administrator_account", NO_ADMINISTRATOR, {"DetectorId": "d1"})
    gd.add_client_error(
        "update_detector", "BadRequestException", "The request is rejected because an invalid feature was given.", 400
    )
    with pytest.raises(BaselineError, match=r"^GuardDuty UpdateDetector: BadRequestException: The request is rejected"):
        guardduty.handle(make_request("Create", SETTINGS), gd.client)


@pytest.mark.parametrize("physical", ["d1", "failed-create-r"])
def test_delete_of_an_adopted_detector_makes_no_call(stubbed, physical):
    gd = stubbed("guardduty")  # nothing stubbed: any call would fail the test
    outcome = guardduty.handle(make_request("Delete", SETTINGS, physical=physical), gd.client)
    assert outcome.physical_resource_id == physical
