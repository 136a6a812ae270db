"""Settings the shipped config files do not exercise, on one extra synthesized environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from findings_router.config import Policy

from infra.definitions import deployment_problems, event_pattern, queue_settings
from infra.stack import FindingsRouterStack, InvalidDeploymentSettingsError
from tests.infra.conftest import REPO_ROOT, VARIANT_ACCOUNT, VARIANT_SECRET_ARN, SynthesizedStack

pytestmark = pytest.mark.infra


def test_pinned_account_and_region(variant: SynthesizedStack):
    assert variant.stack.account == VARIANT_ACCOUNT
    assert variant.stack.region == "eu-central-1"
    assert variant.stack.termination_protection is True


def test_secret_by_complete_arn_is_granted_exactly(variant: SynthesizedStack):
    (policy,) = variant.resources("AWS::IAM::Policy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (read,) = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
    assert read["Resource"] == VARIANT_SECRET_ARN


def test_alarm_emails_are_subscribed(variant: SynthesizedStack):
    topic = {"Ref": next(iter(variant.resources("AWS::SNS::Topic")))}
    subscriptions = [s["Properties"] for s in variant.resources("AWS::SNS::Subscription").values()]
    assert sorted(s["Endpoint"] for s in subscriptions) == ["oncall@example.com", "secops@example.com"]
    assert all(s["Protocol"] == "email" and s["TopicArn"] == topic for s in subscriptions)


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
    (rule,) = variant.resources("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern == event_pattern(variant.policy)
    assert "Findings Imported V2" not in json.dumps(pattern)


def test_production_retains_state(variant: SynthesizedStack):
    for resource_type in ("AWS::DynamoDB::Table", "AWS::Logs::LogGroup", "AWS::KMS::Key"):
        (resource,) = variant.resources(resource_type).values()
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
