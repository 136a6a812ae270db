"""Amazon Inspector: CloudFormation has no resource that enables it (cloudformation-coverage-roadmap#1983), so both
modes are a custom resource (functions/findings_router/baseline/inspector.py) calling inspector2:Enable for the
policy's resource types; `manage` also disables them when they are dropped or the stack is deleted (not in
production, where the resource is retained), `adopt` never."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from findings_router.settings.baseline import ResolvedInspector
from infra.baseline.custom_resource import (
    BaselineCustomResource,
    HandlerContext,
    service_linked_role_statement,
    wildcard_acknowledgment,
)

# Inspector creates these service-linked roles when it is enabled (Amazon Inspector user guide,
# using-service-linked-roles): AWSServiceRoleForAmazonInspector2 and AWSServiceRoleForAmazonInspector2Agentless.
INSPECTOR_SERVICES = ("inspector2.amazonaws.com", "agentless.inspector2.amazonaws.com")


class Inspector(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ResolvedInspector,
        context: HandlerContext,
        retain: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        actions = ["inspector2:Enable"]
        if settings.mode == "manage":
            actions += ["inspector2:Disable", "inspector2:BatchGetAccountStatus"]
        roles = service_linked_role_statement(self, "InspectorRoles", INSPECTOR_SERVICES)
        statements = [
            # No resource type (Service Authorization Reference: Amazon Inspector2).
            iam.PolicyStatement(sid="Scanning", actions=actions, resources=["*"]),
            roles,
        ]
        acknowledgments = [
            wildcard_acknowledgment(
                self,
                "*",
                f"{', '.join(actions)}: Inspector's account-level scanning switches have no resource type to scope "
                "them to (Service Authorization Reference); the handler names only this account.",
            ),
            *(
                wildcard_acknowledgment(
                    self,
                    arn,
                    "Inspector's own service-linked roles, which Inspector names and creates on activation; the "
                    "condition allows no other service's.",
                )
                for arn in roles.resources
            ),
        ]
        self.resource = BaselineCustomResource(
            self,
            "Scanning",
            service="inspector",
            title=f"{'enable' if settings.mode == 'manage' else 'adopt'} Inspector scanning",
            context=context,
            settings={"Mode": settings.mode, "ResourceTypes": list(settings.resource_types)},
            statements=statements,
            acknowledgments=acknowledgments,
            # Production: scanning stays on when the stack is deleted, as the detector, hub and recorder do.
            retain=retain and settings.mode == "manage",
        )
