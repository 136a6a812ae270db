"""Tear down as docs/deploy.md says: termination protection (production) is lifted first; every stack reaches
DELETE_COMPLETE; what the template retains (the production state table and log groups) stays behind, everything
else goes."""

from __future__ import annotations

import time

import pytest

from tests.e2e.harness import deploy
from tests.e2e.harness.environments import environments
from tests.e2e.harness.session import Deployment

ENVIRONMENTS = sorted(environments())


def retained(template: dict[str, object], resource_type: str) -> dict[str, bool]:
    """Physical name -> whether the template keeps it after the stack is deleted, for named resources of a type."""
    out = {}
    for resource in template["Resources"].values():  # type: ignore[attr-defined]
        if resource["Type"] == resource_type:
            name = resource["Properties"].get("TableName") or resource["Properties"].get("LogGroupName")
            if isinstance(name, str):
                out[name] = resource.get("DeletionPolicy") == "Retain"
    return out


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_delete_stack(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    artifact = deployment.stacks[env.stack]
    cloudformation = deployment.aws.client("cloudformation")
    if artifact.termination_protection:
        # As docs/deploy.md says. (LocalStack neither reports nor enforces termination protection: not tested here.)
        cloudformation.update_termination_protection(EnableTerminationProtection=False, StackName=env.stack_id)
    started = time.monotonic()
    cloudformation.delete_stack(StackName=env.stack_id)
    deploy.wait_stack(cloudformation, env.stack_id, "DELETE_COMPLETE")
    deployment.phases.record(f"  {env.stack} DELETE_COMPLETE after", time.monotonic() - started)

    tables = set(deployment.aws.client("dynamodb").list_tables()["TableNames"])
    for table, kept in retained(artifact.template, "AWS::DynamoDB::Table").items():
        assert (table in tables) == kept, f"{name}: table {table} {'deleted' if kept else 'left behind'}"
    groups = {g["logGroupName"] for g in deployment.aws.client("logs").describe_log_groups()["logGroups"]}
    for group, kept in retained(artifact.template, "AWS::Logs::LogGroup").items():
        assert (group in groups) == kept, f"{name}: log group {group} {'deleted' if kept else 'left behind'}"
