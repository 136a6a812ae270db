"""AWS Config: the recorder (one per account and Region), its delivery channel and, for `manage`, the bucket.

`manage`: AWS::Config::ConfigurationRecorder (the policy's recording group and mode, a role of its own with AWS's
AWS_ConfigRole), AWS::Config::DeliveryChannel (snapshot frequency) and an encrypted, TLS-only bucket with a lifecycle
rule and the bucket policy Config's delivery checks need. `adopt`: a custom resource
(functions/findings_router/baseline/config_recorder.py) that puts the policy's recording on the existing recorder
under its own name (Control Tower's is left alone) and the snapshot frequency on the existing channel.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_config as config
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from findings_router.settings.baseline import ResolvedConfig, override_description
from infra.baseline.custom_resource import BaselineCustomResource, HandlerContext, wildcard_acknowledgment
from infra.constructs.buckets import private_bucket
from infra.constructs.function import _nag_flatten

CONFIG_SERVICE = "config.amazonaws.com"
CONFIG_ROLE_POLICY = "service-role/AWS_ConfigRole"


def recording_group(settings: ResolvedConfig) -> config.CfnConfigurationRecorder.RecordingGroupProperty:
    strategy = config.CfnConfigurationRecorder.RecordingStrategyProperty(use_only=settings.recording_strategy)
    if settings.resource_types is not None:
        return config.CfnConfigurationRecorder.RecordingGroupProperty(
            all_supported=False,
            include_global_resource_types=False,
            resource_types=list(settings.resource_types),
            recording_strategy=strategy,
        )
    if settings.excluded_resource_types is not None:
        return config.CfnConfigurationRecorder.RecordingGroupProperty(
            all_supported=False,
            include_global_resource_types=False,
            exclusion_by_resource_types=config.CfnConfigurationRecorder.ExclusionByResourceTypesProperty(
                resource_types=list(settings.excluded_resource_types)
            ),
            recording_strategy=strategy,
        )
    return config.CfnConfigurationRecorder.RecordingGroupProperty(
        all_supported=True,
        include_global_resource_types=settings.include_global_resource_types,
        recording_strategy=strategy,
    )


def recording_mode(settings: ResolvedConfig) -> config.CfnConfigurationRecorder.RecordingModeProperty:
    overrides = [
        config.CfnConfigurationRecorder.RecordingModeOverrideProperty(
            recording_frequency=frequency, resource_types=list(types), description=override_description(frequency)
        )
        for frequency, types in settings.overrides
    ]
    return config.CfnConfigurationRecorder.RecordingModeProperty(
        recording_frequency=settings.recording_frequency, recording_mode_overrides=overrides or None
    )


class ConfigRecorder(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ResolvedConfig,
        context: HandlerContext,
        recorder_name: str,
        channel_name: str,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.bucket: s3.Bucket | None = None
        self.recorder: config.CfnConfigurationRecorder | None = None
        self.channel: config.CfnDeliveryChannel | None = None
        self.adoption: BaselineCustomResource | None = None
        if settings.mode == "manage":
            self._manage(recorder_name, channel_name, retain)
        else:
            self._adopt(context)

    def _manage(self, recorder_name: str, channel_name: str, retain: bool) -> None:
        settings = self.settings
        stack = Stack.of(self)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        # Configuration history is audit evidence: never deleted with the stack (its lifecycle rule expires it).
        self.bucket = private_bucket(
            self,
            "Bucket",
            retention_days=settings.retention_days,
            retain=True,
            why_no_access_logs=(
                "Only AWS Config writes to this bucket (its bucket policy); reads of the configuration history "
                "are audited by CloudTrail. A bucket of server access logs for it would need a bucket of its own."
            ),
        )
        config_logs = self.bucket.arn_for_objects(f"AWSLogs/{stack.account}/Config/*")
        source = {"AWS:SourceAccount": stack.account}
        principal = iam.ServicePrincipal(CONFIG_SERVICE)
        # Config's delivery checks (Config developer guide, "Permissions for the Amazon S3 Bucket"): the bucket's ACL
        # and existence, then objects under AWSLogs/<account>/Config/ with the bucket owner in control.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ConfigBucketChecks",
                principals=[principal],
                actions=["s3:GetBucketAcl", "s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringEquals": source},
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ConfigDelivery",
                principals=[principal],
                actions=["s3:PutObject"],
                resources=[config_logs],
                conditions={"StringEquals": {**source, "s3:x-amz-acl": "bucket-owner-full-control"}},
            )
        )
        config_role_policy = iam.ManagedPolicy.from_aws_managed_policy_name(CONFIG_ROLE_POLICY)
        role = iam.Role(
            self,
            "RecorderRole",
            assumed_by=principal,
            description="findings-router baseline: the Config recorder's role (read resource configurations, deliver)",
            managed_policies=[config_role_policy],
        )
        role.apply_removal_policy(removal)
        # In its own account Config delivers with the recorder's role.
        role.add_to_policy(iam.PolicyStatement(sid="Deliver", actions=["s3:PutObject"], resources=[config_logs]))
        role.add_to_policy(
            iam.PolicyStatement(sid="CheckBucket", actions=["s3:GetBucketAcl"], resources=[self.bucket.bucket_arn])
        )
        Validations.of(role.node.default_child).acknowledge(  # type: ignore[arg-type]
            Acknowledgment(
                id=f"AwsSolutions-IAM4[Policy::{_nag_flatten(stack.resolve(config_role_policy.managed_policy_arn))}]",
                reason=(
                    "AWS_ConfigRole is AWS's policy for Config recorders: the read permissions of every resource type "
                    "Config records, kept current by AWS as types are added; a copy would fall behind."
                ),
            )
        )
        default_policy = role.node.find_child("DefaultPolicy").node.default_child
        assert default_policy is not None
        Validations.of(default_policy).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{_nag_flatten(stack.resolve(config_logs))}]",
                reason=(
                    "Config writes one object per snapshot and history file under AWSLogs/<account>/Config/ of its "
                    "own bucket; PutObject only."
                ),
            )
        )
        self.recorder = config.CfnConfigurationRecorder(
            self,
            "Recorder",
            name=recorder_name,
            role_arn=role.role_arn,
            recording_group=recording_group(settings),
            recording_mode=recording_mode(settings),
        )
        self.recorder.apply_removal_policy(removal)
        self.channel = config.CfnDeliveryChannel(
            self,
            "DeliveryChannel",
            name=channel_name,
            s3_bucket_name=self.bucket.bucket_name,
            config_snapshot_delivery_properties=config.CfnDeliveryChannel.ConfigSnapshotDeliveryPropertiesProperty(
                delivery_frequency=settings.delivery_frequency
            ),
        )
        self.channel.apply_removal_policy(removal)
        # "You must create a configuration recorder before you can create a delivery channel"; Config checks the
        # bucket's policy when the channel is created.
        self.channel.node.add_dependency(self.recorder)
        assert self.bucket.policy is not None
        self.channel.node.add_dependency(self.bucket.policy)

    def _adopt(self, context: HandlerContext) -> None:
        settings = self.settings
        stack = Stack.of(self)
        recorders = stack.format_arn(service="config", resource="configuration-recorder", resource_name="*")
        roles = stack.format_arn(service="iam", region="", resource="role", resource_name="*")
        statements = [
            iam.PolicyStatement(
                sid="Recorder",
                actions=[
                    "config:DescribeConfigurationRecorders",
                    "config:DescribeConfigurationRecorderStatus",
                    "config:PutConfigurationRecorder",
                    "config:StartConfigurationRecorder",
                ],
                resources=[recorders],
            ),
            # Delivery channels have no resource type (Service Authorization Reference: AWS Config).
            iam.PolicyStatement(
                sid="DeliveryChannel",
                actions=["config:DescribeDeliveryChannels", "config:PutDeliveryChannel"],
                resources=["*"],
            ),
            # PutConfigurationRecorder passes the recorder's existing role (unknown until described) back to Config.
            iam.PolicyStatement(
                sid="PassRecorderRole",
                actions=["iam:PassRole"],
                resources=[roles],
                conditions={"StringEquals": {"iam:PassedToService": CONFIG_SERVICE}},
            ),
        ]
        acknowledgments = [
            wildcard_acknowledgment(
                self,
                recorders,
                "The account's one customer managed recorder in this Region, whose name is only known once described.",
            ),
            wildcard_acknowledgment(
                self,
                "*",
                "config:DescribeDeliveryChannels and PutDeliveryChannel have no resource type to scope them to "
                "(Service Authorization Reference); an account has one delivery channel per Region.",
            ),
            wildcard_acknowledgment(
                self,
                roles,
                "The existing recorder's role is passed back unchanged, and its name is only known once described; "
                "the condition allows passing a role to AWS Config only.",
            ),
        ]
        self.adoption = BaselineCustomResource(
            self,
            "Adopt",
            service="config",
            title="adopt the Config recorder",
            context=context,
            settings={
                "RecordingGroup": settings.recording_group(),
                "RecordingMode": settings.recording_mode(),
                "DeliveryFrequency": settings.delivery_frequency,
            },
            statements=statements,
            acknowledgments=acknowledgments,
        )
