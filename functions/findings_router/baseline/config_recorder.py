"""Config `adopt`: the account's configuration recorder exists (one customer managed recorder per account and Region);
bring its recording to the policy under its existing name, never create or delete it.

* Create / Update: DescribeConfigurationRecorders (customer managed ones; service-linked recorders are other
  services'). None is an error (adopt never creates: use `manage`). Control Tower's recorder
  (`aws-controltower-BaselineConfigRecorder`) is left alone: Control Tower's SCPs refuse changes to it and its drift
  detection would undo them; the summary says so. Otherwise PutConfigurationRecorder (the existing name and role,
  the policy's recording group and mode), PutDeliveryChannel (the existing channel with the policy's snapshot
  frequency; none is an error: it needs a bucket, which adopt does not create), and StartConfigurationRecorder if
  it is not recording.
* Delete: nothing (the recorder keeps recording as it was last set).

Settings (JSON): {"RecordingGroup": {…}, "RecordingMode": {…}, "DeliveryFrequency": "One_Hour"} (the Config API's
shapes).
"""

from __future__ import annotations

from typing import Any

from findings_router.baseline.resource import BOTO_CONFIG, BaselineError, Outcome, Request, aws_call, run

SERVICE = "Config"
CONTROL_TOWER_RECORDER = "aws-controltower-BaselineConfigRecorder"
# DeliveryChannel fields PutDeliveryChannel takes back unchanged.
CHANNEL_FIELDS = ("name", "s3BucketName", "s3KeyPrefix", "s3KmsKeyArn", "snsTopicARN")


def _recorder(client: Any) -> dict[str, Any]:
    answer = aws_call(SERVICE, "DescribeConfigurationRecorders", client.describe_configuration_recorders)
    # Service-linked recorders (servicePrincipal set, names AWSConfigurationRecorderFor…) belong to other services.
    customer = [r for r in answer.get("ConfigurationRecorders", []) if not r.get("servicePrincipal")]
    if not customer:
        raise BaselineError(
            SERVICE,
            "DescribeConfigurationRecorders",
            "no configuration recorder in this account and Region: adopt never creates one. Set "
            "baseline.config.mode to manage (the stack creates the recorder, channel and bucket), or set Config up "
            "first",
        )
    return dict(customer[0])


def handle(request: Request, client: Any) -> Outcome:
    if request.request_type == "Delete":
        return Outcome(request.physical_resource_id or "none")
    recorder = _recorder(client)
    name = str(recorder["name"])
    if name == CONTROL_TOWER_RECORDER:
        return Outcome(
            name,
            {
                "Summary": (
                    f"Config recorder {name} is AWS Control Tower's: its SCPs refuse changes and its drift "
                    "detection would undo them, so it is left as it is (set recording in Control Tower's landing "
                    "zone settings)"
                ),
                "RecorderName": name,
            },
        )
    settings = request.settings
    configuration: dict[str, Any] = {
        "name": name,
        "recordingGroup": settings["RecordingGroup"],
        "recordingMode": settings["RecordingMode"],
    }
    if recorder.get("roleARN"):
        configuration["roleARN"] = recorder["roleARN"]
    aws_call(
        SERVICE, "PutConfigurationRecorder", client.put_configuration_recorder, ConfigurationRecorder=configuration
    )
    channels = aws_call(SERVICE, "DescribeDeliveryChannels", client.describe_delivery_channels).get(
        "DeliveryChannels", []
    )
    if not channels:
        raise BaselineError(
            SERVICE,
            "DescribeDeliveryChannels",
            f"recorder {name} has no delivery channel, and adopt does not create one (it needs a bucket): create "
            "the channel, or set baseline.config.mode to manage",
        )
    channel = {k: v for k, v in channels[0].items() if k in CHANNEL_FIELDS and v}
    channel["configSnapshotDeliveryProperties"] = {"deliveryFrequency": settings["DeliveryFrequency"]}
    aws_call(SERVICE, "PutDeliveryChannel", client.put_delivery_channel, DeliveryChannel=channel)
    status = aws_call(
        SERVICE,
        "DescribeConfigurationRecorderStatus",
        client.describe_configuration_recorder_status,
        ConfigurationRecorderNames=[name],
    ).get("ConfigurationRecordersStatus", [])
    started = ""
    if not (status and status[0].get("recording")):
        aws_call(
            SERVICE, "StartConfigurationRecorder", client.start_configuration_recorder, ConfigurationRecorderName=name
        )
        started = "; recorder started"
    frequency = settings["RecordingMode"].get("recordingFrequency")
    return Outcome(
        name,
        {
            "Summary": (
                f"Config recorder {name} adopted: {frequency} recording, snapshots {settings['DeliveryFrequency']} "
                f"to channel {channel.get('name')}{started}"
            ),
            "RecorderName": name,
        },
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    client = boto3.client("config", config=BOTO_CONFIG)
    return run(event, lambda request: handle(request, client))
