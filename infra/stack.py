"""One findings-router deployment: an environment (config/<env>.yaml) in one account and region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from findings_router import __version__
from findings_router.settings.load import policy_path, validate_policy_file
from findings_router.settings.schema import Policy
from infra.ack_receiver import AckReceiver
from infra.definitions import APP_NAME, deployment_checks, deployment_problems, resource_names
from infra.function_package import CONFIG_DIR
from infra.ingestion import Ingestion
from infra.lambda_function import function_code
from infra.meta_alerts import MetaAlerts
from infra.monitoring import Monitoring
from infra.router_function import RouterFunction
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
        # `build` reports these already, with the rest of validate-config's checks; this guards a stack built from
        # any `Policy`. The same checks (infra.definitions.deployment_checks), with lines when it is the file's policy.
        if deployment_problems(policy):
            source = policy_path(config_dir, policy.environment)
            from_file = validate_policy_file(source, checks=(deployment_checks,))
            problems = (
                [str(p) for p in from_file.errors]
                if from_file.policy == policy
                else [f"{source}: {p}" for p in deployment_problems(policy)]
            )
            raise InvalidDeploymentSettingsError("\n".join(problems))
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
        Tags.of(self).add("findings-router-version", __version__)

        self.state = StateTable(self, "State", policy=policy, names=names)
        self.routing_key = RoutingKeySecret(self, "RoutingKey", secret_name_or_arn=policy.notifier.routing_key_secret)
        self.ingestion = Ingestion(self, "Ingestion", policy=policy, names=names)
        # One package (one asset, built once) for every function of the stack: the router, the ack receiver and
        # the meta-alert function differ only in their handler.
        code = function_code(policy, include_dependencies=include_dependencies, config_dir=config_dir)
        self.router = RouterFunction(
            self,
            "Router",
            policy=policy,
            names=names,
            table=self.state.table,
            routing_key=self.routing_key,
            dead_letter_queue=self.ingestion.dead_letter_queue,
            code=code,
        )
        self.ingestion.connect(self.router.function)
        self.ack_receiver: AckReceiver | None = None
        if policy.acknowledgements.mode != "none":
            self.ack_receiver = AckReceiver(
                self,
                "AckReceiver",
                policy=policy,
                names=names,
                table=self.state.table,
                routing_key=self.routing_key,
                code=code,
            )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            policy=policy,
            names=names,
            queue=self.ingestion.queue,
            dead_letter_queue=self.ingestion.dead_letter_queue,
            function=self.router.function,
        )
        if self.ack_receiver is not None:
            self.monitoring.watch_ack_receiver(self.ack_receiver)
        self.meta_alerts = MetaAlerts(
            self,
            "MetaAlerts",
            policy=policy,
            names=names,
            topic=self.monitoring.topic,
            routing_key=self.routing_key,
            code=code,
        )
        self.monitoring.watch_meta_alerts(self.meta_alerts)
        self.monitoring.add_dashboard()

        CfnOutput(self, "StateTableName", value=self.state.table.table_name)
        CfnOutput(self, "FindingsQueueUrl", value=self.ingestion.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.ingestion.dead_letter_queue.queue_url)
        CfnOutput(self, "RouterFunctionName", value=self.router.function.function_name)
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "MetaAlarmTopicArn", value=self.monitoring.meta_topic.topic_arn)
        CfnOutput(self, "MetaAlertFunctionName", value=self.meta_alerts.function.function_name)
        if self.ingestion.action_target_arn is not None:
            CfnOutput(
                self,
                "CustomActionArn",
                value=self.ingestion.action_target_arn,
                description="This environment's Security Hub custom action (console: select findings, Actions)",
            )
        if self.ack_receiver is not None:
            CfnOutput(self, "AckReceiverFunctionName", value=self.ack_receiver.function.function_name)
            if self.ack_receiver.webhook_url is not None:
                CfnOutput(
                    self,
                    "PagerDutyWebhookUrl",
                    value=self.ack_receiver.webhook_url,
                    description="Register as the PagerDuty Webhooks v3 subscription's URL (docs/deploy.md)",
                )
            if self.ack_receiver.rule is not None:
                # The literal name: `Ref` of a rule on a custom event bus is "<bus name>|<rule name>".
                CfnOutput(self, "PagerDutyEventsRuleName", value=names.ack_rule)
