"""The PSIRT digest in the template: off by default, its schedule, Inspector read only, write-only reports under its
prefix in an encrypted TLS-only bucket with a lifecycle, the secret of the notifier it sends to, and its alarm."""

from __future__ import annotations

import pytest

from infra.constructs.psirt_digest import INSPECTOR_ACTIONS
from infra.contract import PSIRT_DIGEST_HANDLER, resource_names
from tests.infra.conftest import VARIANT_SECRET_ARN, SynthesizedStack
from tests.infra.test_pager_pager import _alarm
from tests.infra.test_stack import _arn, granted

pytestmark = pytest.mark.infra


def _digest_function(stack: SynthesizedStack) -> tuple[str, dict]:
    names = resource_names(stack.policy)
    function_id = stack.named("AWS::Lambda::Function", "FunctionName", names.psirt_digest_function)
    return function_id, stack.properties(function_id)


def test_no_digest_unless_enabled(synthesis):
    for environment, stack in synthesis.stacks.items():
        if stack.policy.psirt_digest.enabled:
            continue
        names = resource_names(stack.policy)
        functions = {f["Properties"].get("FunctionName") for f in stack.resources("AWS::Lambda::Function").values()}
        assert names.psirt_digest_function not in functions, environment
        assert not stack.resources("AWS::S3::Bucket"), environment


def test_the_digest_runs_on_its_schedule_and_reads_only_inspector(variant: SynthesizedStack):
    names = resource_names(variant.policy)
    function_id, function = _digest_function(variant)
    assert function["Handler"] == PSIRT_DIGEST_HANDLER
    assert function["ReservedConcurrentExecutions"] == 1
    rule = variant.properties(variant.named("AWS::Events::Rule", "Name", names.psirt_digest_schedule))
    assert rule["ScheduleExpression"] == "rate(12 hours)"
    (target,) = rule["Targets"]
    assert target["Arn"] == _arn(function_id)
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2

    (bucket_id,) = variant.resources("AWS::S3::Bucket")
    assert function["Environment"]["Variables"]["REPORT_BUCKET"] == {"Ref": bucket_id}
    role = function["Role"]["Fn::GetAtt"][0]
    log_group = variant.named("AWS::Logs::LogGroup", "LogGroupName", names.psirt_digest_log_group)
    grants = granted(variant, role)
    assert grants.pop("logs:CreateLogStream") == [_arn(log_group)]
    assert grants.pop("logs:PutLogEvents") == [_arn(log_group)]
    for action in INSPECTOR_ACTIONS:
        assert grants.pop(action) == ["*"]
    # It sends to `pagerduty` (the primary notifier): that one routing key, read only.
    assert grants.pop("secretsmanager:GetSecretValue") == [VARIANT_SECRET_ARN]
    # Reports: written under the digest's prefix only; never read, listed or deleted.
    assert grants == {"s3:PutObject": [{"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/psirt-digest/*"]]}]}


def test_reports_are_private_encrypted_tls_only_and_expire(variant: SynthesizedStack):
    ((bucket_id, bucket),) = variant.resources("AWS::S3::Bucket").items()
    properties = bucket["Properties"]
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (expiry,) = properties["LifecycleConfiguration"]["Rules"]
    assert expiry["ExpirationInDays"] == 90
    # Production: the reports outlive the stack.
    assert bucket["DeletionPolicy"] == "Retain"
    (policy,) = [
        p
        for p in variant.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    (deny_plain,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny_plain["Effect"] == "Deny"
    assert deny_plain["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_failing_digest_alarms(variant: SynthesizedStack):
    function_id, _ = _digest_function(variant)
    alarm = _alarm(variant, "psirt-digest-errors")
    assert alarm["MetricName"] == "Errors"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
