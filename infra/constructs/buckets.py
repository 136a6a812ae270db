"""The one kind of bucket findings-router creates (PSIRT reports, Config history, CloudTrail logs): private, SSE-S3,
TLS only, owner-enforced, expiring after a retention, without server access logs (a bucket of its own for each)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_s3 as s3
from constructs import Construct


def private_bucket(
    scope: Construct, construct_id: str, *, retention_days: int, retain: bool, why_no_access_logs: str
) -> s3.Bucket:
    """`why_no_access_logs`: who writes and reads the bucket, the reason given to cdk-nag's S1 (access logs)."""
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[
            s3.LifecycleRule(
                expiration=Duration.days(retention_days),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
    )
    Validations.of(bucket.node.default_child).acknowledge(  # type: ignore[arg-type]
        Acknowledgment(id="AwsSolutions-S1", reason=why_no_access_logs)
    )
    return bucket
