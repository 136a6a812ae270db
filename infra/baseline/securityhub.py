"""Security Hub CSPM: consolidated control findings (SECURITY_CONTROL), the default standards off and the policy's on
explicitly, disabled controls with their reason, an optional finding aggregator.

`manage`: AWS::SecurityHub::Hub, one AWS::SecurityHub::Standard per standard (with DisabledStandardsControls) and
AWS::SecurityHub::FindingAggregator. `adopt`: a custom resource (functions/findings_router/baseline/securityhub.py)
that enables what is missing, swallowing "already subscribed", and never disables the hub.
"""

from __future__ import annotations

import re

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_securityhub as securityhub
from constructs import Construct

from findings_router.settings.baseline import STANDARDS, ResolvedSecurityHub
from infra.baseline.custom_resource import (
    BaselineCustomResource,
    HandlerContext,
    service_linked_role_statement,
    wildcard_acknowledgment,
)

# The handler waits for new standards to be READY before it disables their controls (minutes).
ADOPT_TIMEOUT_SECONDS = 900
SECURITYHUB_SERVICE = "securityhub.amazonaws.com"


def standards_arn(scope: Construct, key: str) -> str:
    """`arn:<partition>:securityhub:<region>::standards/<path>`; CIS 1.2.0: `arn:<partition>:securityhub:::ruleset/…`."""
    info = STANDARDS[key]
    stack = Stack.of(scope)
    if info.ruleset:
        return stack.format_arn(
            service="securityhub", region="", account="", resource="ruleset", resource_name=info.path
        )
    return stack.format_arn(service="securityhub", account="", resource="standards", resource_name=info.path)


def control_arn(scope: Construct, key: str, control: str) -> str:
    """`arn:<partition>:securityhub:<region>:<account>:control/<standard path>/<control id in the standard>`."""
    return Stack.of(scope).format_arn(
        service="securityhub", resource="control", resource_name=f"{STANDARDS[key].path}/{control}"
    )


def construct_id(key: str) -> str:
    """fsbp -> Fsbp, cis-3.0.0 -> Cis300."""
    return "".join(part.title() for part in re.split(r"[^A-Za-z0-9]+", key) if part)


class SecurityHub(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id_: str,
        *,
        settings: ResolvedSecurityHub,
        context: HandlerContext,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id_)
        self.settings = settings
        self.hub: securityhub.CfnHub | None = None
        self.standards: dict[str, securityhub.CfnStandard] = {}
        self.aggregator: securityhub.CfnFindingAggregator | None = None
        self.adoption: BaselineCustomResource | None = None
        if settings.mode == "manage":
            self._manage(retain)
        else:
            self._adopt(context)

    def _manage(self, retain: bool) -> None:
        settings = self.settings
        self.hub = securityhub.CfnHub(
            self,
            "Hub",
            control_finding_generator=settings.control_finding_generator,
            enable_default_standards=False,
            auto_enable_controls=settings.auto_enable_controls,
        )
        self.hub.apply_removal_policy(RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY)
        for key in settings.standards:
            standard = securityhub.CfnStandard(
                self,
                f"Standard{construct_id(key)}",
                standards_arn=standards_arn(self, key),
                disabled_standards_controls=[
                    securityhub.CfnStandard.StandardsControlProperty(
                        standards_control_arn=control_arn(self, key, c.control), reason=c.reason
                    )
                    for c in settings.disabled_in(key)
                ]
                or None,
            )
            standard.node.add_dependency(self.hub)
            self.standards[key] = standard
        if settings.finding_aggregator is not None:
            aggregator = settings.finding_aggregator
            self.aggregator = securityhub.CfnFindingAggregator(
                self,
                "FindingAggregator",
                region_linking_mode=aggregator.region_linking_mode,
                regions=list(aggregator.regions) or None,
            )
            self.aggregator.node.add_dependency(self.hub)

    def _adopt(self, context: HandlerContext) -> None:
        settings = self.settings
        stack = Stack.of(self)
        hub = stack.format_arn(service="securityhub", resource="hub", resource_name="default")
        statements = [
            iam.PolicyStatement(
                sid="ConfigureHub",
                actions=[
                    "securityhub:EnableSecurityHub",
                    "securityhub:DescribeHub",
                    "securityhub:UpdateSecurityHubConfiguration",
                    "securityhub:GetEnabledStandards",
                    "securityhub:BatchEnableStandards",
                    "securityhub:UpdateStandardsControl",
                ],
                resources=[hub],
            ),
            # EnableSecurityHub creates Security Hub's service-linked role when the hub is new.
            service_linked_role_statement(self, "SecurityHubRole", [SECURITYHUB_SERVICE]),
        ]
        acknowledgments = [
            wildcard_acknowledgment(
                self,
                statements[1].resources[0],
                "Security Hub's service-linked role, which Security Hub names; the condition allows no other "
                "service's.",
            )
        ]
        if settings.finding_aggregator is not None:
            aggregators = stack.format_arn(service="securityhub", resource="finding-aggregator", resource_name="*")
            statements += [
                # Neither has a resource type (Service Authorization Reference: Security Hub).
                iam.PolicyStatement(
                    sid="FindAggregator",
                    actions=["securityhub:ListFindingAggregators", "securityhub:CreateFindingAggregator"],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="UpdateAggregator", actions=["securityhub:UpdateFindingAggregator"], resources=[aggregators]
                ),
            ]
            acknowledgments += [
                wildcard_acknowledgment(
                    self,
                    "*",
                    "securityhub:ListFindingAggregators and CreateFindingAggregator have no resource type to scope "
                    "them to (Service Authorization Reference); an account has one aggregator.",
                ),
                wildcard_acknowledgment(
                    self,
                    aggregators,
                    "The account's one finding aggregator, whose id is only known once listed; "
                    "UpdateFindingAggregator only.",
                ),
            ]
        aggregator = settings.finding_aggregator
        self.adoption = BaselineCustomResource(
            self,
            "Adopt",
            service="securityhub",
            title="adopt Security Hub CSPM",
            context=context,
            settings={
                "ControlFindingGenerator": settings.control_finding_generator,
                "AutoEnableControls": settings.auto_enable_controls,
                "Standards": [{"Key": key, "StandardsArn": standards_arn(self, key)} for key in settings.standards],
                "DisabledControls": [
                    {
                        "StandardsArn": standards_arn(self, c.standard),
                        "StandardsControlArn": control_arn(self, c.standard, c.control),
                        "Reason": c.reason,
                    }
                    for c in settings.disabled_controls
                ],
                "FindingAggregator": None
                if aggregator is None
                else {"RegionLinkingMode": aggregator.region_linking_mode, "Regions": list(aggregator.regions)},
            },
            statements=statements,
            acknowledgments=acknowledgments,
            timeout_seconds=ADOPT_TIMEOUT_SECONDS,
        )
