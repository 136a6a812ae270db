"""`FindingsBaseline-<env>`: the environment's security services as code, from the policy's `baseline:` section
(settings/baseline.py, docs/baseline.md). Deployed before `FindingsRouter-<env>`, independent of it (no reference
between the two stacks).

Each service per its mode: `manage` creates it (with a preflight that fails clearly if one exists already), `adopt`
brings the existing one to the policy through a custom resource and never deletes it, `skip` adds nothing. Security
Hub's standards come after Config (Security Hub needs Config recording for its controls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from findings_router import __version__
from findings_router.settings.baseline import Baseline, ResolvedBaseline, resolve_baseline
from findings_router.settings.load import policy_path
from findings_router.settings.schema import Policy
from infra.baseline.cloudtrail import CloudTrail
from infra.baseline.config_recorder import ConfigRecorder
from infra.baseline.custom_resource import HandlerContext
from infra.baseline.guardduty import GuardDuty
from infra.baseline.inspector import Inspector
from infra.baseline.preflight import PREFLIGHT_SERVICES, Preflight
from infra.baseline.securityhub import SecurityHub
from infra.constructs.function import function_code
from infra.contract import APP_NAME, baseline_names
from infra.derived import baseline_section_problems
from infra.packaging import CONFIG_DIR
from infra.stack import InvalidDeploymentSettingsError, function_package


def managed_services(resolved: ResolvedBaseline) -> list[str]:
    """The services the preflight checks: those `manage` creates and that exist at most once per account/Region."""
    services = {"guardduty": resolved.guardduty, "securityhub": resolved.securityhub, "config": resolved.config}
    return [name for name in PREFLIGHT_SERVICES if (s := services[name]) is not None and s.mode == "manage"]


class FindingsBaselineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        baseline: Baseline,
        code: lambda_.Code | None = None,
        include_dependencies: bool = True,
        config_dir: Path = CONFIG_DIR,
        **stack_props: Any,
    ) -> None:
        problems = baseline_section_problems(baseline, production=policy.production)
        if problems:
            source = policy_path(config_dir, policy.environment)
            raise InvalidDeploymentSettingsError("\n".join(f"{source}: {p}" for p in problems))
        super().__init__(
            scope,
            construct_id,
            description=f"findings-router ({policy.environment}): the security services baseline",
            # Production's detector, hub and recorder are retained anyway; deleting the stack takes an extra step.
            termination_protection=policy.production,
            **stack_props,
        )
        self.policy = policy
        self.baseline = baseline
        self.resolved = resolved = resolve_baseline(baseline, production=policy.production)
        names = baseline_names(policy.environment)
        Tags.of(self).add("app", APP_NAME)
        Tags.of(self).add("environment", policy.environment)
        Tags.of(self).add("findings-router-version", __version__)
        if code is None:
            # The stack's handlers run from the router's function package (the same asset: built once per synth).
            package = function_package(policy, include_dependencies=include_dependencies, config_dir=config_dir)
            code = function_code(package, environment=policy.environment)
        context = HandlerContext(
            environment=policy.environment,
            code=code,
            log_retention_days=policy.function.log_retention_days,
            retain_logs=policy.production,
        )
        retain = policy.production

        managed = managed_services(resolved)
        self.preflight = Preflight(self, "Preflight", services=managed, context=context) if managed else None
        self._add_services(resolved, context, trail_name=names.trail, retain=retain)
        self._order()
        self._add_outputs()

    def _add_services(
        self, resolved: ResolvedBaseline, context: HandlerContext, *, trail_name: str, retain: bool
    ) -> None:
        names = baseline_names(context.environment)
        self.config = (
            None
            if resolved.config is None
            else ConfigRecorder(
                self,
                "Config",
                settings=resolved.config,
                context=context,
                recorder_name=names.config_recorder,
                channel_name=names.delivery_channel,
                retain=retain,
            )
        )
        self.guardduty = (
            None
            if resolved.guardduty is None
            else GuardDuty(self, "GuardDuty", settings=resolved.guardduty, context=context, retain=retain)
        )
        self.securityhub = (
            None
            if resolved.securityhub is None
            else SecurityHub(self, "SecurityHub", settings=resolved.securityhub, context=context, retain=retain)
        )
        self.inspector = (
            None
            if resolved.inspector is None
            else Inspector(self, "Inspector", settings=resolved.inspector, context=context, retain=retain)
        )
        self.cloudtrail = (
            None
            if resolved.cloudtrail is None
            else CloudTrail(
                self, "CloudTrail", settings=resolved.cloudtrail, context=context, trail_name=trail_name, retain=retain
            )
        )

    def _order(self) -> None:
        """Security Hub after Config; what `manage` creates once per account and Region after the preflight."""
        if self.securityhub is not None and self.config is not None:
            # Security Hub's controls are Config rules: recording first (the standards' checks need it).
            self.securityhub.node.add_dependency(self.config)
        if self.preflight is None:
            return
        created = [
            self.guardduty.detector if self.guardduty else None,
            self.securityhub.hub if self.securityhub else None,
            self.config.recorder if self.config else None,
            self.config.channel if self.config else None,
        ]
        for resource in created:
            if resource is not None:
                resource.node.add_dependency(self.preflight.check)

    def _add_outputs(self) -> None:
        """What manage created (ids, names) and what adopt found and did (each custom resource's summary)."""
        guardduty, securityhub, config, inspector, trail = (
            self.guardduty,
            self.securityhub,
            self.config,
            self.inspector,
            self.cloudtrail,
        )
        outputs = {
            "GuardDutyDetectorId": guardduty.detector.ref if guardduty and guardduty.detector else None,
            "GuardDutyAdoption": guardduty.adoption.summary if guardduty and guardduty.adoption else None,
            "SecurityHubAdoption": securityhub.adoption.summary if securityhub and securityhub.adoption else None,
            "ConfigBucketName": config.bucket.bucket_name if config and config.bucket else None,
            "ConfigAdoption": config.adoption.summary if config and config.adoption else None,
            "InspectorScanning": inspector.resource.summary if inspector else None,
            "TrailArn": trail.trail.trail_arn if trail and trail.trail else None,
            "CloudTrailAdoption": trail.check.summary if trail and trail.check else None,
        }
        for output_id, value in outputs.items():
            if value is not None:
                CfnOutput(self, output_id, value=value)
