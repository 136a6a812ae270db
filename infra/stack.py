"""One findings-router deployment: an environment (config/<env>.yaml) in one account and region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct
from findings_router.config import Policy

from infra.definitions import APP_NAME, deployment_problems, resource_names
from infra.function_package import CONFIG_DIR
from infra.ingestion import Ingestion
from infra.monitoring import Monitoring
from infra.router_function import RouterFunction, function_code
from infra.secrets import RoutingKeySecret
from infra.state_table import StateTable


class InvalidDeploymentSettingsError(ValueError):
    """The policy file is valid, but AWS would reject some of its infrastructure settings."""


class FindingsRouterStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        include_dependencies: bool = True,
        config_dir: Path = CONFIG_DIR,
        **stack_props: Any,
    ) -> None:
        problems = deployment_problems(policy)
        if problems:
            source = config_dir / f"{policy.environment}.yaml"
            raise InvalidDeploymentSettingsError("\n".join(f"{source}: {problem}" for problem in problems))
        super().__init__(
            scope,
            construct_id,
            description=f"findings-router ({policy.environment}): Security Hub findings to on-call",
            # A production stack holds the open-incident state; deleting it takes a deliberate extra step.
            termination_protection=policy.production,
            **stack_props,
        )
        self.policy = policy
        names = resource_names(policy)
        Tags.of(self).add("app", APP_NAME)
        Tags.of(self).add("environment", policy.environment)

        self.state = StateTable(self, "State", policy=policy, names=names)
        self.routing_key = RoutingKeySecret(self, "RoutingKey", secret_name_or_arn=policy.notifier.routing_key_secret)
        self.ingestion = Ingestion(self, "Ingestion", policy=policy, names=names)
        self.router = RouterFunction(
            self,
            "Router",
            policy=policy,
            names=names,
            table=self.state.table,
            routing_key=self.routing_key,
            code=function_code(policy, include_dependencies=include_dependencies, config_dir=config_dir),
        )
        self.ingestion.connect(self.router.function)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            policy=policy,
            names=names,
            queue=self.ingestion.queue,
            dead_letter_queue=self.ingestion.dead_letter_queue,
            function=self.router.function,
        )

        CfnOutput(self, "StateTableName", value=self.state.table.table_name)
        CfnOutput(self, "FindingsQueueUrl", value=self.ingestion.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.ingestion.dead_letter_queue.queue_url)
        CfnOutput(self, "RouterFunctionName", value=self.router.function.function_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
