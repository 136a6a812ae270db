"""The preflight: before `manage` creates a GuardDuty detector, a Security Hub hub or a Config recorder, a custom
resource (functions/findings_router/baseline/preflight.py) fails with a clear message if one exists already (each
exists once per account and Region) and says to `adopt` it. The managed resources depend on it."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.baseline.custom_resource import BaselineCustomResource, HandlerContext, wildcard_acknowledgment

PREFLIGHT_SERVICES = ("guardduty", "securityhub", "config")


class Preflight(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, services: Sequence[str], context: HandlerContext
    ) -> None:
        super().__init__(scope, construct_id)
        unknown = set(services) - set(PREFLIGHT_SERVICES)
        if unknown:
            raise ValueError(f"no preflight for {', '.join(sorted(unknown))}")
        stack = Stack.of(self)
        statements: list[iam.PolicyStatement] = []
        anywhere: list[str] = []
        acknowledgments: list[tuple[str, str]] = []
        if "guardduty" in services:
            anywhere.append("guardduty:ListDetectors")
        if "securityhub" in services:
            hub = stack.format_arn(service="securityhub", resource="hub", resource_name="default")
            statements.append(
                iam.PolicyStatement(sid="DescribeHub", actions=["securityhub:DescribeHub"], resources=[hub])
            )
        if "config" in services:
            anywhere.append("config:DescribeDeliveryChannels")
            recorders = stack.format_arn(service="config", resource="configuration-recorder", resource_name="*")
            statements.append(
                iam.PolicyStatement(
                    sid="DescribeRecorders", actions=["config:DescribeConfigurationRecorders"], resources=[recorders]
                )
            )
            acknowledgments.append(
                wildcard_acknowledgment(
                    self, recorders, "Any recorder of this account and Region is what the check looks for; read-only."
                )
            )
        if anywhere:
            statements.append(iam.PolicyStatement(sid="List", actions=anywhere, resources=["*"]))
            acknowledgments.append(
                wildcard_acknowledgment(
                    self,
                    "*",
                    f"{', '.join(anywhere)}: no resource type to scope them to (Service Authorization Reference); "
                    "read-only.",
                )
            )
        self.check = BaselineCustomResource(
            self,
            "Check",
            service="preflight",
            title="check that what manage creates does not exist yet",
            context=context,
            settings={"Services": list(services)},
            statements=statements,
            acknowledgments=acknowledgments,
        )
