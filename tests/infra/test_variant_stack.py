"""Settings the shipped config files do not exercise, on one extra synthesized environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from findings_router.settings.schema import Policy
from infra.constructs.ingestion import ACTION_TARGET_TYPE, ACTION_TARGET_UNKNOWN_TYPE
from infra.derived import deployment_problems, queue_settings
from infra.event_patterns import DETAIL_TYPE_CUSTOM_ACTION
from infra.stack import FindingsRouterStack, InvalidDeploymentSettingsError
from tests.infra.conftest import (
    REPO_ROOT,
    VARIANT_ACCOUNT,
    VARIANT_CANARY_SECRET_ARN,
    VARIANT_REST_API_TOKEN_SECRET,
    VARIANT_SECRET_ARN,
    VARIANT_SIGNING_SECRET_ARN,
    SynthesizedStack,
)
from tests.infra.test_stack import acknowledgements, deployed_event_pattern, expected_acknowledgements

pytestmark = pytest.mark.infra


def test_pinned_account_and_region(variant: SynthesizedStack):
    assert variant.stack.account == VARIANT_ACCOUNT
    assert variant.stack.region == "eu-central-1"
    assert variant.stack.termination_protection is True


def test_secret_by_complete_arn_is_granted_exactly(variant: SynthesizedStack):
    reads = [
        s
        for p in variant.resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "secretsmanager:GetSecretValue"
    ]
    # By name in a pinned account and region: CDK writes the whole ARN (partition included) literally.
    rest_api_key_arn = (
        f"arn:aws:secretsmanager:eu-central-1:{VARIANT_ACCOUNT}:secret:{VARIANT_REST_API_TOKEN_SECRET}-??????"
    )
    meta_key_arn = (
        f"arn:aws:secretsmanager:eu-central-1:{VARIANT_ACCOUNT}:secret:findings-router/variant/meta-routing-key-??????"
    )
    heartbeat_arn = f"arn:aws:secretsmanager:eu-central-1:{VARIANT_ACCOUNT}:secret:findings-router/variant/canary-heartbeat-url-??????"
    # The router and the ack receiver (resolves of sibling incidents) read the routing key; the meta-alert function
    # its own; the router the canary's (it pages the canary's service); the ack receiver its two secrets and the
    # heartbeat URL (canary runs complete there); the PSIRT digest the routing key (it notifies `pagerduty`); the
    # silence sweep the routing key (it pages what a silence held back).
    assert sorted((s["Sid"], json.dumps(s["Resource"])) for s in reads) == sorted(
        [
            ("ReadRoutingKey", json.dumps(VARIANT_SECRET_ARN)),
            ("ReadRoutingKey", json.dumps(VARIANT_SECRET_ARN)),
            ("ReadRoutingKey", json.dumps(VARIANT_SECRET_ARN)),
            ("ReadRoutingKey", json.dumps(VARIANT_SECRET_ARN)),
            ("ReadMetaAlertRoutingKey", json.dumps(meta_key_arn)),
            ("ReadCanaryRoutingKey", json.dumps(VARIANT_CANARY_SECRET_ARN)),
            ("ReadCanaryHeartbeatUrl", json.dumps(heartbeat_arn)),
            ("ReadWebhookSigningSecret", json.dumps(VARIANT_SIGNING_SECRET_ARN)),
            ("ReadPagerDutyRestApiKey", json.dumps(rest_api_key_arn)),
        ]
    )


def test_alarm_emails_are_subscribed_to_both_topics(variant: SynthesizedStack):
    topics = [{"Ref": t} for t in variant.resources("AWS::SNS::Topic")]
    subscriptions = [s["Properties"] for s in variant.resources("AWS::SNS::Subscription").values()]
    emails = [s for s in subscriptions if s["Protocol"] == "email"]
    for topic in topics:
        assert sorted(s["Endpoint"] for s in emails if s["TopicArn"] == topic) == [
            "oncall@example.com",
            "secops@example.com",
        ]
    assert len(emails) == 4


def test_without_writeback_no_role_may_update_findings(variant: SynthesizedStack):
    granted = [
        s["Action"]
        for p in variant.resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    # Only the canary imports its own finding; nothing may update findings.
    assert [a for a in granted if "securityhub" in str(a)] == ["securityhub:BatchImportFindings"]


def test_ack_receiver_reserved_concurrency_follows_its_own_setting(variant: SynthesizedStack):
    variant.assertions.has_resource_properties(
        "AWS::Lambda::Function",
        {"FunctionName": "findings-router-variant-ack-receiver", "ReservedConcurrentExecutions": 3},
    )


def test_large_batches_get_a_batching_window_and_concurrency_follows_reservation(variant: SynthesizedStack):
    settings = queue_settings(variant.policy)
    assert settings.batching_window_seconds == 1
    assert settings.visibility_timeout_seconds == 6 * 60 + 1
    variant.assertions.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 25, "MaximumBatchingWindowInSeconds": 1, "ScalingConfig": {"MaximumConcurrency": 4}},
    )
    variant.assertions.has_resource_properties("AWS::SQS::Queue", {"VisibilityTimeout": 361})


def test_ocsf_off_and_pre_filtered_pattern(variant: SynthesizedStack):
    (rule,) = [r for r in variant.resources("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern == deployed_event_pattern(variant)
    assert "Findings Imported V2" not in json.dumps(pattern)


def test_every_account_and_no_custom_action(no_acks: SynthesizedStack):
    # accounts ["*"], no custom_action: no action target, no output, and the rule has neither an account condition
    # nor a Custom Action branch (such events never match).
    assert no_acks.policy.all_accounts and no_acks.policy.custom_action is None
    no_acks.assertions.resource_count_is(ACTION_TARGET_TYPE, 0)
    assert "CustomActionArn" not in no_acks.template["Outputs"]
    (rule,) = [r for r in no_acks.resources("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern == deployed_event_pattern(no_acks)
    assert DETAIL_TYPE_CUSTOM_ACTION not in json.dumps(pattern)
    assert "AwsAccountId" not in json.dumps(pattern) and "cloud" not in json.dumps(pattern)


def test_production_retains_state(variant: SynthesizedStack):
    for resource_type in ("AWS::DynamoDB::Table", "AWS::Logs::LogGroup", "AWS::KMS::Key"):
        resources = variant.resources(resource_type).values()
        assert resources
        for resource in resources:
            assert resource["DeletionPolicy"] == "Retain", resource_type


def _policy_with(**function: object) -> Policy:
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["function"] = {**data.get("function", {}), **function}
    return Policy.model_validate(data)


def test_log_retention_aws_would_reject_fails_the_synth(tmp_path: Path):
    policy = _policy_with(log_retention_days=10)
    assert deployment_problems(policy) == [
        "function.log_retention_days: 10 is not a CloudWatch Logs retention period "
        "(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)"
    ]
    from aws_cdk import App

    with pytest.raises(InvalidDeploymentSettingsError, match=r"config/dev\.yaml: function\.log_retention_days: 10"):
        FindingsRouterStack(App(outdir=str(tmp_path)), "FindingsRouter-dev", policy=policy, include_dependencies=False)


def test_partial_secret_arn_is_refused():
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["notifier"]["routing_key_secret"] = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:pd-key"
    problems = deployment_problems(Policy.model_validate(data))
    assert problems and problems[0].startswith("notifier.routing_key_secret: an ARN must be the secret's complete ARN")
    data["notifier"]["routing_key_secret"] = VARIANT_SECRET_ARN
    assert deployment_problems(Policy.model_validate(data)) == []


def test_cdk_nag_acknowledgements_of_the_extra_environments(variant: SynthesizedStack, no_acks: SynthesizedStack):
    # no_acks: write-back in a pinned account and region, so the hubv2 ARN in the finding id is literal.
    for stack in (variant, no_acks):
        acknowledged = acknowledgements(stack.asset_dir.parent, stack)
        assert set(acknowledged) == expected_acknowledgements(stack)
    assert any(
        "arn:aws:securityhub:eu-west-1:111122223333:hubv2/*" in rule
        for _, rule in acknowledgements(no_acks.asset_dir.parent, no_acks)
    )
    # No securityhub grant without write-back, so nothing to acknowledge but the pinned runtime (and the action
    # target's type, unknown to aws-cdk-lib 2.275.0's template validation), and the PSIRT digest's reads and reports.
    assert {
        rule for path, rule in acknowledgements(variant.asset_dir.parent, variant) if "/PsirtDigest/" not in path
    } == {"Annotation::AwsSolutions-L1", ACTION_TARGET_UNKNOWN_TYPE}
