"""Meta-alerts: when findings-router itself is in trouble, on-call is paged like for a critical finding.

The function (functions/findings_router/alarm_handler.py) is subscribed to the environment's alarm topic and turns
each CloudWatch ALARM into a PagerDuty trigger and each OK into a resolve, with the router's routing key.

No loop: its own alarms (errors, dead letters) go to the email-only meta-alarm topic (infra/monitoring.py), which
it is not subscribed to, so a failing meta-alert function is never invoked about its own failure.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from findings_router.settings.schema import Policy
from infra.definitions import (
    META_ALERT_HANDLER,
    META_ALERT_MAX_EVENT_AGE_HOURS,
    META_ALERT_MEMORY_MB,
    ResourceNames,
    meta_alert_environment,
    meta_alert_timeout_seconds,
)
from infra.lambda_function import PythonFunction
from infra.secrets import RoutingKeySecret


class MetaAlerts(PythonFunction):
    dead_letter_queue: sqs.Queue  # always one: SNS invokes the function asynchronously

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
        super().__init__(
            scope,
            construct_id,
            policy=policy,
            code=code,
            function_name=names.meta_alert_function,
            log_group_name=names.meta_alert_log_group,
            description=f"findings-router's own CloudWatch alarms to PagerDuty ({policy.environment})",
            role_description=f"findings-router {policy.environment}: page on-call about findings-router's own alarms",
            handler=META_ALERT_HANDLER,
            memory_mb=META_ALERT_MEMORY_MB,
            timeout_seconds=meta_alert_timeout_seconds(policy),
            environment=meta_alert_environment(policy),
            # SNS invokes asynchronously: a failed run (PagerDuty unreachable) is retried by Lambda, then
            # dead-lettered. A change older than an hour is not sent late and out of order. The dead-letter queue is
            # the one place for every alarm change that paged nobody: SNS could not invoke the function (the
            # subscription's redrive policy, below), or the function failed on every attempt.
            dead_letter_queue_name=names.meta_alert_dead_letter_queue,
            max_event_age=Duration.hours(META_ALERT_MAX_EVENT_AGE_HOURS),
        )
        assert self.dead_letter_queue is not None
        routing_key.grant_read(self.role)
        self.subscription = topic.add_subscription(
            subscriptions.LambdaSubscription(self.function, dead_letter_queue=self.dead_letter_queue)
        )
