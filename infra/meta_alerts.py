"""Meta-alerts: when findings-router itself is in trouble, on-call is paged like for a critical finding.

The function (functions/findings_router/alarm_handler.py) is subscribed to the environment's alarm topic and turns
each CloudWatch ALARM into a PagerDuty trigger and each OK into a resolve, with the router's routing key.

No loop: its own alarms (errors, dead letters) go to the email-only meta-alarm topic (infra/monitoring.py), which
it is not subscribed to, so a failing meta-alert function is never invoked about its own failure.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from findings_router.config import Policy
from infra.definitions import (
    ASYNC_RETRY_ATTEMPTS,
    DEAD_LETTER_RETENTION_DAYS,
    META_ALERT_HANDLER,
    META_ALERT_MAX_EVENT_AGE_HOURS,
    META_ALERT_MEMORY_MB,
    ResourceNames,
    meta_alert_environment,
    meta_alert_timeout_seconds,
)
from infra.router_function import acknowledge_pinned_runtime, function_log_group
from infra.secrets import RoutingKeySecret


class MetaAlerts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        names: ResourceNames,
        topic: sns.ITopic,
        routing_key: RoutingKeySecret,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = function_log_group(self, "LogGroup", name=names.meta_alert_log_group, policy=policy)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"findings-router {policy.environment}: page on-call about findings-router's own alarms",
        )
        # One place for every alarm change that paged nobody: SNS could not invoke the function (subscription
        # redrive policy), or the function failed on every attempt (Lambda's asynchronous-invocation DLQ).
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=names.meta_alert_dead_letter_queue,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(DEAD_LETTER_RETENTION_DAYS),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=names.meta_alert_function,
            description=f"findings-router's own CloudWatch alarms to PagerDuty ({policy.environment})",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=META_ALERT_HANDLER,
            code=code,
            memory_size=META_ALERT_MEMORY_MB,
            timeout=Duration.seconds(meta_alert_timeout_seconds(policy)),
            environment=meta_alert_environment(policy),
            role=self.role,
            log_group=self.log_group,
            # SNS invokes asynchronously: a failed run (PagerDuty unreachable) is retried by Lambda, then
            # dead-lettered. A change older than an hour is not sent late and out of order.
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
            max_event_age=Duration.hours(META_ALERT_MAX_EVENT_AGE_HOURS),
        )
        acknowledge_pinned_runtime(self.function)
        self.log_group.grant_write(self.role)
        routing_key.grant_read(self.role)
        self.subscription = topic.add_subscription(
            subscriptions.LambdaSubscription(self.function, dead_letter_queue=self.dead_letter_queue)
        )
