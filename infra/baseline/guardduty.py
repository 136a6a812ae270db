"""GuardDuty: `manage` creates the account's detector (AWS::GuardDuty::Detector with `Features`, never `DataSources`
too, and RUNTIME_MONITORING, never EKS_RUNTIME_MONITORING too); `adopt` updates the existing one through a custom
resource (functions/findings_router/baseline/guardduty.py) and never deletes it."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_guardduty as guardduty
from aws_cdk import aws_iam as iam
from constructs import Construct

from findings_router.settings.baseline import Feature, ResolvedGuardDuty
from infra.baseline.custom_resource import (
    BaselineCustomResource,
    HandlerContext,
    service_linked_role_statement,
    wildcard_acknowledgment,
)

MALWARE_PROTECTION_SERVICE = "malware-protection.guardduty.amazonaws.com"


def feature_property(feature: Feature) -> guardduty.CfnDetector.CFNFeatureConfigurationProperty:
    return guardduty.CfnDetector.CFNFeatureConfigurationProperty(
        name=feature.name,
        status="ENABLED" if feature.enabled else "DISABLED",
        additional_configuration=[
            guardduty.CfnDetector.CFNFeatureAdditionalConfigurationProperty(
                name=name, status="ENABLED" if on else "DISABLED"
            )
            for name, on in feature.additional
        ]
        or None,
    )


class GuardDuty(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ResolvedGuardDuty,
        context: HandlerContext,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.detector: guardduty.CfnDetector | None = None
        self.adoption: BaselineCustomResource | None = None
        if settings.mode == "manage":
            self.detector = guardduty.CfnDetector(
                self,
                "Detector",
                enable=True,
                finding_publishing_frequency=settings.finding_publishing_frequency,
                features=[feature_property(f) for f in settings.features],
            )
            # Production: deleting the stack must not delete the detector and its findings.
            self.detector.apply_removal_policy(RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY)
            return
        stack = Stack.of(self)
        detectors = stack.format_arn(service="guardduty", resource="detector", resource_name="*")
        statements = [
            # Neither call has a resource type (Service Authorization Reference: GuardDuty).
            iam.PolicyStatement(
                sid="FindDetector",
                actions=["guardduty:ListDetectors", "guardduty:GetAdministratorAccount"],
                resources=["*"],
            ),
            iam.PolicyStatement(sid="UpdateDetector", actions=["guardduty:UpdateDetector"], resources=[detectors]),
        ]
        acknowledgments = [
            wildcard_acknowledgment(
                self,
                "*",
                "guardduty:ListDetectors and guardduty:GetAdministratorAccount have no resource type to scope them to "
                "(Service Authorization Reference); both are read-only.",
            ),
            wildcard_acknowledgment(
                self,
                detectors,
                "The account's one detector in this Region, whose id is only known once listed; UpdateDetector only.",
            ),
        ]
        if settings.feature("EBS_MALWARE_PROTECTION").enabled:
            # Turning malware scans on creates GuardDuty's malware protection service-linked role.
            statements.append(
                service_linked_role_statement(self, "MalwareProtectionRole", [MALWARE_PROTECTION_SERVICE])
            )
            acknowledgments.append(
                wildcard_acknowledgment(
                    self,
                    statements[-1].resources[0],
                    "GuardDuty Malware Protection's service-linked role, which GuardDuty names; the condition allows "
                    "no other service's.",
                )
            )
        self.adoption = BaselineCustomResource(
            self,
            "Adopt",
            service="guardduty",
            title="adopt the GuardDuty detector",
            context=context,
            settings={
                "FindingPublishingFrequency": settings.finding_publishing_frequency,
                "Features": [f.api() for f in settings.features],
            },
            statements=statements,
            acknowledgments=acknowledgments,
        )
