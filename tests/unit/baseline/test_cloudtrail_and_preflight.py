"""CloudTrail adopt checks an existing trail and changes nothing; the preflight turns "one per account and Region"
into a clear failure before `manage` creates anything."""

from __future__ import annotations

import pytest

from findings_router.baseline import cloudtrail, preflight
from findings_router.baseline.resource import BaselineError
from tests.unit.baseline.helpers import ACCOUNT, REGION, make_request

ORG_TRAIL = "arn:aws:cloudtrail:us-east-1:999988887777:trail/aws-controltower-BaselineCloudTrail"


def test_an_organization_trail_that_logs_is_adopted(stubbed):
    ct = stubbed("cloudtrail")
    ct.add_response(
        "describe_trails",
        {
            "trailList": [
                {
                    "Name": "regional",
                    "TrailARN": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/regional",
                    "IsMultiRegionTrail": False,
                },
                {
                    "Name": "aws-controltower-BaselineCloudTrail",
                    "TrailARN": ORG_TRAIL,
                    "IsMultiRegionTrail": True,
                    "IsOrganizationTrail": True,
                },
            ]
        },
        {"includeShadowTrails": True},
    )
    ct.add_response("get_trail_status", {"IsLogging": True}, {"Name": ORG_TRAIL})
    outcome = cloudtrail.handle(make_request("Create", {}), ct.client)
    assert outcome.physical_resource_id == ORG_TRAIL
    assert outcome.data["Summary"] == f"CloudTrail adopted: organization trail {ORG_TRAIL} logs every Region"


def test_no_logging_trail_fails_with_what_to_do(stubbed):
    ct = stubbed("cloudtrail")
    stopped = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/old"
    ct.add_response(
        "describe_trails",
        {"trailList": [{"Name": "old", "TrailARN": stopped, "IsMultiRegionTrail": True}]},
        {"includeShadowTrails": True},
    )
    ct.add_response("get_trail_status", {"IsLogging": False}, {"Name": stopped})
    with pytest.raises(
        BaselineError, match=rf"^CloudTrail DescribeTrails: no multi-Region trail is logging.*{stopped}.*manage"
    ):
        cloudtrail.handle(make_request("Update", {}), ct.client)


def test_cloudtrail_delete_makes_no_call(stubbed):
    ct = stubbed("cloudtrail")
    cloudtrail.handle(make_request("Delete", {}, physical=ORG_TRAIL), ct.client)


def clients(stubbed) -> dict:
    return {service: stubbed(service) for service in ("guardduty", "securityhub", "config")}


def test_the_preflight_passes_in_an_account_with_none_of_them(stubbed):
    stubs = clients(stubbed)
    stubs["guardduty"].add_response("list_detectors", {"DetectorIds": []}, {})
    stubs["securityhub"].add_client_error(
        "describe_hub", "InvalidAccessException", "Account 111122223333 is not subscribed to AWS Security Hub", 401
    )
    stubs["config"].add_response("describe_configuration_recorders", {"ConfigurationRecorders": []}, {})
    stubs["config"].add_response("describe_delivery_channels", {"DeliveryChannels": []}, {})
    request = make_request("Create", {"Services": ["guardduty", "securityhub", "config"]})
    outcome = preflight.handle(request, {name: stub.client for name, stub in stubs.items()})
    assert outcome.data["Summary"] == "preflight: none exists yet of guardduty, securityhub, config"


def test_the_preflight_names_everything_that_exists_and_says_to_adopt(stubbed):
    stubs = clients(stubbed)
    stubs["guardduty"].add_response("list_detectors", {"DetectorIds": ["d1"]}, {})
    stubs["securityhub"].add_response(
        "describe_hub", {"HubArn": f"arn:aws:securityhub:{REGION}:{ACCOUNT}:hub/default"}, {}
    )
    stubs["config"].add_response(
        "describe_configuration_recorders",
        {"ConfigurationRecorders": [{"name": "aws-controltower-BaselineConfigRecorder"}]},
        {},
    )
    request = make_request("Create", {"Services": ["guardduty", "securityhub", "config"]})
    with pytest.raises(BaselineError) as raised:
        preflight.handle(request, {name: stub.client for name, stub in stubs.items()})
    message = str(raised.value)
    assert message.startswith("Preflight checks: GuardDuty ListDetectors: detector d1 exists already")
    assert "baseline.guardduty.mode to adopt" in message
    assert (
        "SecurityHub DescribeHub: arn:aws:securityhub:eu-central-1:111122223333:hub/default is enabled already"
        in message
    )
    assert (
        "Config DescribeConfigurationRecorders: recorder aws-controltower-BaselineConfigRecorder exists already"
        in message
    )


def test_a_lone_delivery_channel_is_named_too(stubbed):
    stubs = clients(stubbed)
    stubs["config"].add_response("describe_configuration_recorders", {"ConfigurationRecorders": []}, {})
    stubs["config"].add_response("describe_delivery_channels", {"DeliveryChannels": [{"name": "default"}]}, {})
    with pytest.raises(BaselineError, match="delivery channel default exists already without a recorder"):
        preflight.handle(make_request("Create", {"Services": ["config"]}), {n: s.client for n, s in stubs.items()})


def test_an_update_checks_only_the_services_that_became_managed(stubbed):
    stubs = clients(stubbed)
    stubs["guardduty"].add_response("list_detectors", {"DetectorIds": []}, {})
    request = make_request(
        "Update",
        {"Services": ["securityhub", "guardduty"]},
        old={"Services": ["securityhub"]},
        physical="baseline-preflight",
    )
    assert "of guardduty" in preflight.handle(request, {n: s.client for n, s in stubs.items()}).data["Summary"]


def test_other_security_hub_errors_are_not_taken_for_not_enabled(stubbed):
    stubs = clients(stubbed)
    stubs["securityhub"].add_client_error("describe_hub", "AccessDeniedException", "not authorized", 403)
    with pytest.raises(BaselineError, match="SecurityHub DescribeHub: AccessDeniedException"):
        preflight.handle(make_request("Create", {"Services": ["securityhub"]}), {n: s.client for n, s in stubs.items()})


def test_the_preflight_delete_makes_no_call(stubbed):
    stubs = clients(stubbed)
    preflight.handle(
        make_request("Delete", {"Services": ["guardduty"]}, physical="baseline-preflight"),
        {n: s.client for n, s in stubs.items()},
    )
