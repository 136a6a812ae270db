"""The PSIRT digest: a scheduled function that lists the period's new CRITICAL or exploitable CVEs from Amazon
Inspector, one line per CVE, into a CSV report in its own bucket and/or one low-urgency notification
(functions/findings_router/service/psirt_digest.py, docs/psirt.md). Off unless `psirt_digest.enabled`."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from findings_router.service.psirt_digest import REPORT_PREFIX as DIGEST_REPORT_PREFIX
from infra.constructs.buckets import private_bucket
from infra.constructs.function import FunctionSpec, LambdaFunction, _nag_flatten

# Inspector's ListFindings authorizes on no resource type (Service Authorization Reference: resource "*"); what the
# digest may read is limited by its filters and by the account being Inspector's delegated administrator.
INSPECTOR_ACTIONS = ("inspector2:ListFindings",)
# Where reports go in the bucket: report_key's prefix, the one place the function may write.
REPORT_PREFIX = DIGEST_REPORT_PREFIX


@dataclass(frozen=True)
class PsirtDigestSettings:
    """psirt_digest.* of the policy, computed by infra/stack.py."""

    schedule_name: str
    schedule_hours: int
    description: str
    report: bool
    report_retention_days: int
    retain_reports: bool  # production: the bucket outlives the stack


class PsirtDigest(LambdaFunction):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        code: lambda_.Code,
        settings: PsirtDigestSettings,
    ) -> None:
        super().__init__(scope, construct_id, spec=spec, code=code)
        statement = iam.PolicyStatement(sid="ListInspectorFindings", actions=list(INSPECTOR_ACTIONS), resources=["*"])
        self.role.add_to_policy(statement)
        default_policy = self.role.node.find_child("DefaultPolicy").node.default_child
        assert default_policy is not None
        Validations.of(default_policy).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "inspector2:ListFindings has no resource type to scope it to (Service Authorization Reference); "
                    "the statement allows that one read-only action and nothing else."
                ),
            )
        )
        self.bucket: s3.Bucket | None = None
        if settings.report:
            self.bucket = private_bucket(
                self,
                "Reports",
                retention_days=settings.report_retention_days,
                retain=settings.retain_reports,
                why_no_access_logs=(
                    "One function writes one CSV per run and the PSIRT team reads them; object access is audited "
                    "by CloudTrail (data events where the account records them). A second bucket for server "
                    "access logs would hold more data than the reports themselves."
                ),
            )
            # PutObject only, under the digest's prefix: the function never reads, lists, tags or deletes reports.
            reports = self.bucket.arn_for_objects(f"{REPORT_PREFIX}/*")
            self.role.add_to_policy(
                iam.PolicyStatement(sid="WriteReports", actions=["s3:PutObject"], resources=[reports])
            )
            Validations.of(default_policy).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{_nag_flatten(Stack.of(self).resolve(reports))}]",
                    reason=(
                        "Each run writes one new CSV whose key carries its period; the wildcard is the digest's own "
                        "prefix in its own bucket, and the only action is PutObject."
                    ),
                )
            )
            self.function.add_environment("REPORT_BUCKET", self.bucket.bucket_name)
        # A run that failed is retried by EventBridge (and Lambda); one that could not start within the period is
        # superseded by the next, which covers its own period only: the errors alarm says one was lost.
        self.schedule = self.run_every(
            rule_name=settings.schedule_name,
            description=settings.description,
            every=Duration.hours(settings.schedule_hours),
            retry_attempts=2,
            max_event_age=Duration.hours(min(settings.schedule_hours, 24)),
        )
