"""The canary: a scheduled function that imports this environment's synthetic finding into Security Hub.

The finding then takes the real path to the router, which pages the canary's own PagerDuty service (never a person);
the hops are recorded by the router and the ack receiver (functions/findings_router/domain/canary.py, docs/canary.md).
This construct only starts runs: the alarm that no run completed is in infra/constructs/alarms.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.function import FunctionSpec, LambdaFunction


@dataclass(frozen=True)
class CanarySettings:
    """canary.* of the policy, computed by infra/stack.py."""

    schedule_name: str
    schedule_minutes: int
    description: str


class Canary(LambdaFunction):
    def __init__(
        self, scope: Construct, construct_id: str, *, spec: FunctionSpec, code: lambda_.Code, settings: CanarySettings
    ) -> None:
        super().__init__(scope, construct_id, spec=spec, code=code)
        stack = Stack.of(self)
        # BatchImportFindings of the account's own private product only ("product/<account>/default": for private
        # products the company id is the account id, the product id `default`); Security Hub requires the caller
        # to be the finding's AwsAccountId for that product.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ImportCanaryFinding",
                actions=["securityhub:BatchImportFindings"],
                resources=[
                    stack.format_arn(
                        service="securityhub", resource="product", resource_name=f"{stack.account}/default"
                    )
                ],
            )
        )
        # A run that could not start in time is useless once the next is due; a failed run is retried by
        # EventBridge (and then shows in the function's errors alarm and the canary alarm).
        self.schedule = self.run_every(
            rule_name=settings.schedule_name,
            description=settings.description,
            every=Duration.minutes(settings.schedule_minutes),
            retry_attempts=2,
            max_event_age=Duration.minutes(max(1, settings.schedule_minutes)),
        )
