"""Config adopt: the existing recorder keeps its name and role and gets the policy's recording, the existing channel
its snapshot frequency; Control Tower's recorder is left alone; no recorder or no channel is a clear failure."""

from __future__ import annotations

import pytest

from findings_router.baseline import config_recorder
from findings_router.baseline.resource import BaselineError
from findings_router.settings.baseline import Baseline, ConfigSettings, resolve_baseline
from tests.unit.baseline.helpers import ACCOUNT, make_request

RESOLVED = resolve_baseline(
    Baseline(config=ConfigSettings(mode="adopt", continuous_resource_types=["AWS::EC2::SecurityGroup"])),
    production=False,
).config
assert RESOLVED is not None
SETTINGS = {
    "RecordingGroup": RESOLVED.recording_group(),
    "RecordingMode": RESOLVED.recording_mode(),
    "DeliveryFrequency": RESOLVED.delivery_frequency,
}
ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"


def recorder(name: str = "default", **extra: object) -> dict:
    return {
        "name": name,
        "roleARN": ROLE,
        "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::S3::Bucket"]},
        **extra,
    }


def test_the_existing_recorder_and_channel_are_brought_to_the_policy_under_their_names(stubbed):
    cfg = stubbed("config")
    cfg.add_response("describe_configuration_recorders", {"ConfigurationRecorders": [recorder()]}, {})
    cfg.add_response(
        "put_configuration_recorder",
        {},
        {
            "ConfigurationRecorder": {
                "name": "default",
                "roleARN": ROLE,
                "recordingGroup": {
                    "recordingStrategy": {"useOnly": "ALL_SUPPORTED_RESOURCE_TYPES"},
                    "allSupported": True,
                    "includeGlobalResourceTypes": True,
                },
                "recordingMode": {
                    "recordingFrequency": "DAILY",
                    "recordingModeOverrides": [
                        {
                            "description": "findings-router baseline: continuous for these types",
                            "recordingFrequency": "CONTINUOUS",
                            "resourceTypes": ["AWS::EC2::SecurityGroup"],
                        }
                    ],
                },
            }
        },
    )
    channel = {"name": "default", "s3BucketName": "config-bucket-111122223333", "s3KeyPrefix": "org"}
    cfg.add_response(
        "describe_delivery_channels",
        {"DeliveryChannels": [{**channel, "configSnapshotDeliveryProperties": {"deliveryFrequency": "One_Hour"}}]},
        {},
    )
    cfg.add_response(
        "put_delivery_channel",
        {},
        {"DeliveryChannel": {**channel, "configSnapshotDeliveryProperties": {"deliveryFrequency": "TwentyFour_Hours"}}},
    )
    cfg.add_response(
        "describe_configuration_recorder_status",
        {"ConfigurationRecordersStatus": [{"name": "default", "recording": True}]},
        {"ConfigurationRecorderNames": ["default"]},
    )
    outcome = config_recorder.handle(make_request("Create", SETTINGS), cfg.client)
    assert outcome.physical_resource_id == "default"
    assert outcome.data["Summary"] == (
        "Config recorder default adopted: DAILY recording, snapshots TwentyFour_Hours to channel default"
    )


def test_a_stopped_recorder_is_started(stubbed):
    cfg = stubbed("config")
    cfg.add_response("describe_configuration_recorders", {"ConfigurationRecorders": [recorder("main")]}, {})
    cfg.add_response(
        "put_configuration_recorder",
        {},
        {
            "ConfigurationRecorder": {
                "name": "main",
                "roleARN": ROLE,
                "recordingGroup": SETTINGS["RecordingGroup"],
                "recordingMode": SETTINGS["RecordingMode"],
            }
        },
    )
    cfg.add_response("describe_delivery_channels", {"DeliveryChannels": [{"name": "main", "s3BucketName": "b"}]}, {})
    cfg.add_response(
        "put_delivery_channel",
        {},
        {
            "DeliveryChannel": {
                "name": "main",
                "s3BucketName": "b",
                "configSnapshotDeliveryProperties": {"deliveryFrequency": "TwentyFour_Hours"},
            }
        },
    )
    cfg.add_response(
        "describe_configuration_recorder_status",
        {"ConfigurationRecordersStatus": [{"name": "main", "recording": False}]},
        {"ConfigurationRecorderNames": ["main"]},
    )
    cfg.add_response("start_configuration_recorder", {}, {"ConfigurationRecorderName": "main"})
    outcome = config_recorder.handle(make_request("Update", SETTINGS, physical="main"), cfg.client)
    assert outcome.data["Summary"].endswith("; recorder started")


def test_control_towers_recorder_is_left_alone_and_the_summary_says_so(stubbed):
    cfg = stubbed("config")
    cfg.add_response(
        "describe_configuration_recorders",
        {"ConfigurationRecorders": [recorder("aws-controltower-BaselineConfigRecorder")]},
        {},
    )
    outcome = config_recorder.handle(make_request("Create", SETTINGS), cfg.client)  # no Put* stubbed: none made
    assert outcome.physical_resource_id == "aws-controltower-BaselineConfigRecorder"
    assert "AWS Control Tower's" in outcome.data["Summary"]
    assert "left as it is" in outcome.data["Summary"]


def test_no_recorder_fails_with_what_to_do_and_service_linked_recorders_do_not_count(stubbed):
    cfg = stubbed("config")
    linked = recorder("AWSConfigurationRecorderForSecurityHub", servicePrincipal="securityhub.amazonaws.com")
    cfg.add_response("describe_configuration_recorders", {"ConfigurationRecorders": [linked]}, {})
    with pytest.raises(
        BaselineError, match=r"^Config DescribeConfigurationRecorders: no configuration recorder.*manage"
    ):
        config_recorder.handle(make_request("Create", SETTINGS), cfg.client)


def test_a_recorder_without_channel_fails_clearly(stubbed):
    cfg = stubbed("config")
    cfg.add_response("describe_configuration_recorders", {"ConfigurationRecorders": [recorder()]}, {})
    cfg.add_response(
        "put_configuration_recorder",
        {},
        {
            "ConfigurationRecorder": {
                "name": "default",
                "roleARN": ROLE,
                "recordingGroup": SETTINGS["RecordingGroup"],
                "recordingMode": SETTINGS["RecordingMode"],
            }
        },
    )
    cfg.add_response("describe_delivery_channels", {"DeliveryChannels": []}, {})
    with pytest.raises(BaselineError, match="recorder default has no delivery channel"):
        config_recorder.handle(make_request("Create", SETTINGS), cfg.client)


def test_a_refused_put_names_the_call(stubbed):
    cfg = stubbed("config")
    cfg.add_response("describe_configuration_recorders", {"ConfigurationRecorders": [recorder()]}, {})
    cfg.add_client_error("put_configuration_recorder", "InvalidRoleException", "The role cannot be assumed", 400)
    with pytest.raises(BaselineError, match=r"^Config PutConfigurationRecorder: InvalidRoleException: The role cannot"):
        config_recorder.handle(make_request("Create", SETTINGS), cfg.client)


def test_delete_leaves_the_recorder_alone(stubbed):
    cfg = stubbed("config")
    assert (
        config_recorder.handle(make_request("Delete", SETTINGS, physical="default"), cfg.client).physical_resource_id
        == "default"
    )
