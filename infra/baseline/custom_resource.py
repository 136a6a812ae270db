"""One custom resource of the baseline stack: its own handler function (the stack's function package, Python 3.12 on
arm64, its own log group) with its own role, allowed only the calls that handler makes, and the resource itself.

The handlers (functions/findings_router/baseline/) answer CloudFormation themselves (the pre-signed response URL):
no provider framework, so no extra Node.js function and role per stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, CustomResource, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from findings_router.baseline.resource import SETTINGS_PROPERTY
from infra.constructs.function import FunctionSpec, LambdaFunction, _nag_flatten
from infra.contract import BASELINE_HANDLERS, baseline_names

HANDLER_MEMORY_MB = 256
# A custom resource's handler: a few API calls with botocore's retries; Security Hub's waits for new standards more.
DEFAULT_TIMEOUT_SECONDS = 120
# CloudFormation waits this much longer than the function may run before it gives the resource up.
SERVICE_TIMEOUT_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class HandlerContext:
    """What every handler function of one stack shares: the package and the logs' settings."""

    environment: str
    code: lambda_.Code
    log_retention_days: int
    retain_logs: bool


def service_linked_role_statement(scope: Construct, sid: str, services: Sequence[str]) -> iam.PolicyStatement:
    """iam:CreateServiceLinkedRole for these AWS services' own roles only (a service creates its role when it is
    first enabled: Security Hub, GuardDuty's malware protection, Inspector and its agentless scanning)."""
    stack = Stack.of(scope)
    return iam.PolicyStatement(
        sid=sid,
        actions=["iam:CreateServiceLinkedRole"],
        resources=[
            stack.format_arn(service="iam", region="", resource="role", resource_name=f"aws-service-role/{service}/*")
            for service in services
        ],
        conditions={"StringEquals": {"iam:AWSServiceName": services[0] if len(services) == 1 else list(services)}},
    )


def wildcard_acknowledgment(scope: Construct, resource: str, reason: str) -> tuple[str, str]:
    """The cdk-nag IAM5 finding id of `resource` (an ARN with a wildcard, tokens allowed) and the reason."""
    flattened = "*" if resource == "*" else _nag_flatten(Stack.of(scope).resolve(resource))
    return f"AwsSolutions-IAM5[Resource::{flattened}]", reason


class BaselineCustomResource(Construct):
    """`service`'s custom resource (contract.BASELINE_HANDLERS), with `settings` as its JSON `Settings` property.

    `statements` are the role's only permissions besides its own log group; each wildcard resource among them needs
    its reason in `acknowledgments` (cdk-nag AwsSolutions-IAM5), made with `wildcard_acknowledgment`. With `retain`
    CloudFormation never sends the Delete request (the stack's deletion, or the resource leaving the template).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        title: str,
        context: HandlerContext,
        settings: Mapping[str, Any],
        statements: Sequence[iam.PolicyStatement],
        acknowledgments: Sequence[tuple[str, str]] = (),
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        retain: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        names = baseline_names(context.environment)
        spec = FunctionSpec(
            function_name=names.functions[service],
            log_group_name=names.log_groups[service],
            description=f"findings-router baseline ({context.environment}): {title}",
            role_description=f"findings-router {context.environment} baseline: {title}",
            handler=BASELINE_HANDLERS[service],
            memory_mb=HANDLER_MEMORY_MB,
            timeout_seconds=timeout_seconds,
            environment={},
            log_retention_days=context.log_retention_days,
            retain_logs=context.retain_logs,
        )
        self.handler = LambdaFunction(self, "Handler", spec=spec, code=context.code)
        for statement in statements:
            self.handler.role.add_to_policy(statement)
        default_policy = self.handler.role.node.find_child("DefaultPolicy").node.default_child
        assert default_policy is not None
        for finding, reason in acknowledgments:
            Validations.of(default_policy).acknowledge(Acknowledgment(id=finding, reason=reason))
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.handler.function.function_arn,
            resource_type=f"Custom::FindingsBaseline{service.title()}",
            properties={SETTINGS_PROPERTY: Stack.of(self).to_json_string(dict(settings))},
            service_timeout=Duration.seconds(timeout_seconds + SERVICE_TIMEOUT_MARGIN_SECONDS),
            # Retained: CloudFormation never sends the Delete (what the resource enabled stays on).
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        # The role's policy before the first call (it is a separate resource from the role and the function).
        self.resource.node.add_dependency(self.handler.role)

    @property
    def summary(self) -> str:
        """What the handler found and did (its `Summary` attribute)."""
        return self.resource.get_att_string("Summary")
