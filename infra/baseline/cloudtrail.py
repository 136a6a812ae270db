"""CloudTrail: `manage` creates a multi-Region trail of the account (or of the organization, deployed from its
management account) into a bucket of its own (encrypted, TLS-only, lifecycle), log file validation on, and in
production also to CloudWatch Logs; `adopt` checks that a multi-Region trail logs already (Control Tower's, the
organization's) and changes nothing (functions/findings_router/baseline/cloudtrail.py)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from findings_router.settings.baseline import ResolvedCloudTrail
from infra.baseline.custom_resource import BaselineCustomResource, HandlerContext, wildcard_acknowledgment
from infra.constructs.buckets import private_bucket
from infra.derived import LOG_RETENTION_DAYS


class CloudTrail(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ResolvedCloudTrail,
        context: HandlerContext,
        trail_name: str,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.trail: cloudtrail.Trail | None = None
        self.bucket: s3.Bucket | None = None
        self.check: BaselineCustomResource | None = None
        if settings.mode == "manage":
            self._manage(trail_name, retain)
        else:
            self._adopt(context)

    def _manage(self, trail_name: str, retain: bool) -> None:
        settings = self.settings
        # Audit logs: never deleted with the stack (the lifecycle rule expires them).
        self.bucket = private_bucket(
            self,
            "Bucket",
            retention_days=settings.retention_days,
            retain=True,
            why_no_access_logs=(
                "Only CloudTrail writes to this bucket (its bucket policy), and the trail itself records who "
                "reads it; server access logs would need a bucket of their own."
            ),
        )
        self.trail = cloudtrail.Trail(
            self,
            "Trail",
            trail_name=trail_name,
            bucket=self.bucket,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_file_validation=True,
            management_events=cloudtrail.ReadWriteType.ALL,
            is_organization_trail=settings.organization_trail,
            org_id=settings.organization_id,
            send_to_cloud_watch_logs=settings.cloudwatch_logs,
            cloud_watch_logs_retention=(
                logs.RetentionDays[LOG_RETENTION_DAYS[settings.cloudwatch_logs_retention_days]]
                if settings.cloudwatch_logs
                else None
            ),
        )
        self.trail.apply_removal_policy(RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY)

    def _adopt(self, context: HandlerContext) -> None:
        stack = Stack.of(self)
        # An organization trail shows in a member account as a shadow trail of the management account's ARN, in its
        # home Region.
        trails = stack.format_arn(service="cloudtrail", region="*", account="*", resource="trail", resource_name="*")
        self.check = BaselineCustomResource(
            self,
            "Adopt",
            service="cloudtrail",
            title="check the existing CloudTrail trail",
            context=context,
            settings={},
            statements=[
                iam.PolicyStatement(sid="ListTrails", actions=["cloudtrail:DescribeTrails"], resources=["*"]),
                iam.PolicyStatement(sid="TrailStatus", actions=["cloudtrail:GetTrailStatus"], resources=[trails]),
            ],
            acknowledgments=[
                wildcard_acknowledgment(
                    self,
                    "*",
                    "cloudtrail:DescribeTrails lists the trails this account sees; it is read-only.",
                ),
                wildcard_acknowledgment(
                    self,
                    trails,
                    "The trail to check is any trail this account sees, an organization's included (another account's "
                    "ARN, its home Region); GetTrailStatus is read-only.",
                ),
            ],
        )
