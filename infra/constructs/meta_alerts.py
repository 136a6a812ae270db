"""Meta-alerts: when findings-router itself is in trouble, on-call is paged like for a critical finding.

The function (functions/findings_router/entrypoints/page_alarms.py) is subscribed to the environment's alarm topic and turns
each CloudWatch ALARM into a PagerDuty trigger and each OK into a resolve, with the meta-alerts' own routing key
(monitoring.meta_alert_routing_key_secret; the router's where a policy names none).

No loop: its own alarms (errors, dead letters) go to the email-only meta-alarm topic (infra/constructs/alarms.py),
which it is not subscribed to, so a failing meta-alert function is never invoked about its own failure.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.function import FunctionSpec, LambdaFunction
from infra.constructs.secrets import ReferencedSecret


class MetaAlerts(LambdaFunction):
    """`spec` must name a dead-letter queue: SNS invokes the function asynchronously (see infra/stack.py)."""

    dead_letter_queue: sqs.Queue  # always one: SNS invokes the function asynchronously

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        code: lambda_.Code,
        topic: sns.ITopic,
        routing_key: ReferencedSecret,
    ) -> None:
        super().__init__(scope, construct_id, spec=spec, code=code)
        assert self.dead_letter_queue is not None
        routing_key.grant_read(self.role)
        # SNS could not invoke the function: the subscription's redrive policy sends the notification to the same
        # dead-letter queue as the function's failed runs.
        self.subscription = topic.add_subscription(
            subscriptions.LambdaSubscription(self.function, dead_letter_queue=self.dead_letter_queue)
        )
