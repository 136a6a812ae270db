"""The `baseline:` section of `config/<env>.yaml`: the security services findings-router's environment relies on,
set up as code (GuardDuty, Security Hub CSPM, Config, Inspector, CloudTrail), deployed as the stack
`FindingsBaseline-<env>` (infra/baseline/, docs/baseline.md).

Each service has a `mode`: `manage` (the stack creates it), `adopt` (it exists already, e.g. from Control Tower or an
organization's administrator: the stack brings its settings to this file and never deletes it) or `skip`. A setting
left out gets the default of the environment's kind, `production: true|false` (never of its name): production
publishes GuardDuty findings every 15 minutes and records Config continuously, other environments every 6 hours and
daily. `resolve_baseline` turns the section into those effective settings; `baseline_problems` is what the model
cannot check alone (it needs `production`), reported by `validate-config` and synth with file:line: field.

No aws_cdk and no boto3 here: the stack (infra/baseline/) and the custom resources' handlers
(findings_router/baseline/) both work from `ResolvedBaseline`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Mode = Literal["manage", "adopt", "skip"]
Loc = tuple[str | int, ...]
MODE_DESCRIPTION = (
    "manage: the stack creates it (a preflight fails clearly if one exists already); adopt: it exists, the stack "
    "brings its settings to this file and never deletes it; skip: the stack leaves it alone."
)

_REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"
# A control's id in its standard: Config.1 (FSBP, NIST, PCI DSS 4), 1.14 (CIS), PCI.IAM.3 (PCI DSS 3.2.1).
_CONTROL_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ResourceType = Annotated[str, Field(pattern=r"^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+$")]


class _Strict(BaseModel):
    # Unknown keys are mistakes in a reviewed policy file (the same rule as settings/schema.py's models).
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------------------------------ GuardDuty

FindingPublishingFrequency = Literal["FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"]


class GuardDutyProtections(_Strict):
    """Protection plans (GuardDuty detector features). Omitted: on, but for the two that cost most per workload
    (malware scans, runtime agents), which are on in production only. Every feature named here is sent explicitly,
    ENABLED or DISABLED; GuardDuty's newer features (AI protection) are left at GuardDuty's default."""

    s3_data_events: bool | None = Field(default=None, description="S3 Protection (S3_DATA_EVENTS). Omitted: on.")
    eks_audit_logs: bool | None = Field(default=None, description="EKS Protection (EKS_AUDIT_LOGS). Omitted: on.")
    rds_login_events: bool | None = Field(default=None, description="RDS Protection (RDS_LOGIN_EVENTS). Omitted: on.")
    lambda_network_logs: bool | None = Field(
        default=None, description="Lambda Protection (LAMBDA_NETWORK_LOGS). Omitted: on."
    )
    ebs_malware_protection: bool | None = Field(
        default=None,
        description="Malware Protection for EC2 (EBS_MALWARE_PROTECTION). Omitted: on in production. (Malware "
        "Protection for S3 is a protection plan per bucket, not a detector feature: not managed here.)",
    )
    runtime_monitoring: bool | None = Field(
        default=None,
        description="Runtime Monitoring (RUNTIME_MONITORING; never EKS_RUNTIME_MONITORING too, which GuardDuty "
        "refuses). Omitted: on in production.",
    )
    runtime_agent_management: bool = Field(
        default=True,
        description="With runtime_monitoring: GuardDuty installs and updates its security agent on EKS, ECS "
        "Fargate and EC2 (EKS_ADDON_MANAGEMENT, ECS_FARGATE_AGENT_MANAGEMENT, EC2_AGENT_MANAGEMENT).",
    )


class GuardDutySettings(_Strict):
    """The account's GuardDuty detector (one per account and Region)."""

    mode: Mode = Field(description=MODE_DESCRIPTION)
    finding_publishing_frequency: FindingPublishingFrequency | None = Field(
        default=None,
        description="How often updated findings are published to EventBridge (and so to Security Hub and "
        "findings-router). Omitted: FIFTEEN_MINUTES in production, SIX_HOURS elsewhere.",
    )
    protections: GuardDutyProtections = GuardDutyProtections()


# ------------------------------------------------------------------------------------------ Security Hub

StandardKey = Literal[
    "fsbp",
    "cis-1.2.0",
    "cis-1.4.0",
    "cis-3.0.0",
    "cis-5.0.0",
    "nist-800-53-5.0.0",
    "pci-dss-3.2.1",
    "pci-dss-4.0.1",
]


@dataclass(frozen=True)
class StandardInfo:
    """A Security Hub CSPM standard: its ARN is `arn:<partition>:securityhub:<region>::standards/<path>`, except CIS
    1.2.0's, `arn:<partition>:securityhub:::ruleset/<path>` (no region); a control's ARN is
    `arn:<partition>:securityhub:<region>:<account>:control/<path>/<control id in the standard>`."""

    path: str
    title: str
    ruleset: bool = False
    # CIS numbers its controls itself (1.14, 2.1.1 …); the others use Security Hub's control ids (Config.1 …).
    own_control_ids: bool = False


STANDARDS: dict[str, StandardInfo] = {
    "fsbp": StandardInfo(
        "aws-foundational-security-best-practices/v/1.0.0", "AWS Foundational Security Best Practices v1.0.0"
    ),
    "cis-1.2.0": StandardInfo(
        "cis-aws-foundations-benchmark/v/1.2.0",
        "CIS AWS Foundations Benchmark v1.2.0",
        ruleset=True,
        own_control_ids=True,
    ),
    "cis-1.4.0": StandardInfo(
        "cis-aws-foundations-benchmark/v/1.4.0", "CIS AWS Foundations Benchmark v1.4.0", own_control_ids=True
    ),
    "cis-3.0.0": StandardInfo(
        "cis-aws-foundations-benchmark/v/3.0.0", "CIS AWS Foundations Benchmark v3.0.0", own_control_ids=True
    ),
    "cis-5.0.0": StandardInfo(
        "cis-aws-foundations-benchmark/v/5.0.0", "CIS AWS Foundations Benchmark v5.0.0", own_control_ids=True
    ),
    "nist-800-53-5.0.0": StandardInfo("nist-800-53/v/5.0.0", "NIST SP 800-53 Revision 5"),
    "pci-dss-3.2.1": StandardInfo("pci-dss/v/3.2.1", "PCI DSS v3.2.1"),
    "pci-dss-4.0.1": StandardInfo("pci-dss/v/4.0.1", "PCI DSS v4.0.1"),
}

# CloudFormation's AWS::SecurityHub::Standard takes at most this many DisabledStandardsControls.
MAX_DISABLED_CONTROLS_PER_STANDARD = 100


class DisabledControl(_Strict):
    """A control switched off in a standard: reviewed like a suppression (owner, reason, expiry)."""

    control: Annotated[
        str,
        Field(
            pattern=_CONTROL_ID,
            description="The control's id in the standard: Config.1 (FSBP, NIST, PCI DSS 4), 1.14 (CIS numbers its "
            "own).",
        ),
    ]
    standard: StandardKey | None = Field(
        default=None,
        description="The standard to disable it in; omitted: every enabled standard (then none of them may be a "
        "CIS benchmark, whose control ids differ).",
    )
    owner: Annotated[str, Field(min_length=1, description="Who answers for it (a team).")]
    reason: Annotated[
        str, Field(min_length=10, description="Why the control does not apply; shown in Security Hub as well.")
    ]
    expires: dt.date = Field(
        description="Review by this date (UTC): validate-config fails after it, synth warns (a date never blocks "
        "an urgent deploy)."
    )


RegionLinkingMode = Literal["ALL_REGIONS", "ALL_REGIONS_EXCEPT_SPECIFIED", "SPECIFIED_REGIONS"]


class FindingAggregatorSettings(_Strict):
    """Cross-Region aggregation into the stack's region (the aggregation region). One aggregator per account."""

    region_linking_mode: RegionLinkingMode = Field(
        default="ALL_REGIONS", description="Which Regions' findings come to this one (new Regions included with ALL_…)."
    )
    regions: list[Annotated[str, Field(pattern=_REGION)]] = Field(
        default=[], description="For ALL_REGIONS_EXCEPT_SPECIFIED and SPECIFIED_REGIONS (not for ALL_REGIONS)."
    )

    @model_validator(mode="after")
    def _regions_fit_the_mode(self) -> FindingAggregatorSettings:
        if self.region_linking_mode == "ALL_REGIONS" and self.regions:
            raise ValueError("regions are for ALL_REGIONS_EXCEPT_SPECIFIED or SPECIFIED_REGIONS, not ALL_REGIONS")
        if self.region_linking_mode != "ALL_REGIONS" and not self.regions:
            raise ValueError(f"{self.region_linking_mode} needs regions")
        if len(set(self.regions)) != len(self.regions):
            raise ValueError("a region is listed twice")
        return self


class SecurityHubSettings(_Strict):
    """Security Hub CSPM with consolidated control findings (SECURITY_CONTROL: one finding per control and resource,
    whatever the number of standards), the default standards off and the chosen ones on explicitly."""

    mode: Mode = Field(description=MODE_DESCRIPTION)
    standards: Annotated[list[StandardKey], Field(min_length=1)] | None = Field(
        default=None, description="Omitted: fsbp and cis-3.0.0 in production, fsbp elsewhere."
    )
    auto_enable_controls: bool = Field(
        default=True, description="Enable controls AWS adds to the enabled standards later."
    )
    disabled_controls: list[DisabledControl] = []
    finding_aggregator: FindingAggregatorSettings | None = Field(
        default=None, description="Omitted: none (the stack does not aggregate Regions)."
    )

    @model_validator(mode="after")
    def _unique(self) -> SecurityHubSettings:
        if self.standards is not None and len(set(self.standards)) != len(self.standards):
            raise ValueError("standards: a standard is listed twice")
        return self


# ------------------------------------------------------------------------------------------ Config

RecordingFrequency = Literal["CONTINUOUS", "DAILY"]
DeliveryFrequency = Literal["One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours", "TwentyFour_Hours"]
# PutConfigurationRecorder: "Daily recording cannot be specified for" these (botocore config RecordingModeOverride).
CONTINUOUS_ONLY_RESOURCE_TYPES = (
    "AWS::Config::ResourceCompliance",
    "AWS::Config::ConformancePackCompliance",
    "AWS::Config::ConfigurationRecorder",
)


class ConfigSettings(_Strict):
    """The Config recorder (one per account and region), its delivery channel and (manage) its bucket."""

    mode: Mode = Field(description=MODE_DESCRIPTION)
    recording_frequency: RecordingFrequency | None = Field(
        default=None, description="Omitted: CONTINUOUS in production, DAILY elsewhere."
    )
    continuous_resource_types: list[ResourceType] = Field(
        default=[], description="With DAILY: these are recorded continuously all the same (e.g. security groups)."
    )
    daily_resource_types: list[ResourceType] = Field(
        default=[], description="With CONTINUOUS: these are recorded daily only (cheaper for noisy types)."
    )
    resource_types: Annotated[list[ResourceType], Field(min_length=1)] | None = Field(
        default=None, description="Record only these; omitted: every supported resource type."
    )
    excluded_resource_types: Annotated[list[ResourceType], Field(min_length=1)] | None = Field(
        default=None, description="Record every supported resource type but these."
    )
    include_global_resource_types: bool | None = Field(
        default=None,
        description="Record IAM users, groups, roles and policies (record them in one Region only). Omitted: true "
        "when recording every supported type; only allowed then.",
    )
    delivery_frequency: DeliveryFrequency | None = Field(
        default=None,
        description="Configuration snapshots to the bucket. Omitted: One_Hour in production, TwentyFour_Hours "
        "elsewhere.",
    )
    retention_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        default=None,
        description="manage: the bucket keeps what Config delivers this long. Omitted: 730 in production, 90 "
        "elsewhere.",
    )

    @model_validator(mode="after")
    def _recording_group(self) -> ConfigSettings:
        if self.resource_types is not None and self.excluded_resource_types is not None:
            raise ValueError("give resource_types or excluded_resource_types, not both")
        if self.include_global_resource_types and (self.resource_types or self.excluded_resource_types):
            raise ValueError(
                "include_global_resource_types applies when recording every supported type only: list the IAM "
                "types in resource_types instead"
            )
        for name in ("continuous_resource_types", "daily_resource_types", "resource_types", "excluded_resource_types"):
            values = getattr(self, name) or []
            if len(set(values)) != len(values):
                raise ValueError(f"{name}: a resource type is listed twice")
        both = set(self.continuous_resource_types) & set(self.daily_resource_types)
        if both:
            raise ValueError(f"{', '.join(sorted(both))}: both continuous and daily")
        return self


# ------------------------------------------------------------------------------------------ Inspector

InspectorResourceType = Literal["EC2", "ECR", "LAMBDA", "LAMBDA_CODE"]


class InspectorSettings(_Strict):
    """Amazon Inspector (v2) scanning, enabled through its API (CloudFormation has no resource for it)."""

    mode: Mode = Field(description=MODE_DESCRIPTION)
    resource_types: Annotated[list[InspectorResourceType], Field(min_length=1)] | None = Field(
        default=None, description="Omitted: EC2, ECR, LAMBDA and LAMBDA_CODE in production, ECR elsewhere."
    )

    @model_validator(mode="after")
    def _lambda_code_needs_lambda(self) -> InspectorSettings:
        types = self.resource_types or []
        if len(set(types)) != len(types):
            raise ValueError("resource_types: a type is listed twice")
        if "LAMBDA_CODE" in types and "LAMBDA" not in types:
            raise ValueError("LAMBDA_CODE (code scanning) needs LAMBDA (standard scanning) too")
        return self


# ------------------------------------------------------------------------------------------ CloudTrail


class CloudTrailSettings(_Strict):
    """manage: a trail of the account (or of the organization, from its management account) with its own bucket;
    adopt: a trail exists (Control Tower's, the organization's): the stack checks it logs and changes nothing."""

    mode: Mode = Field(description=MODE_DESCRIPTION)
    organization_trail: bool = Field(
        default=False, description="manage: the trail of every account of the organization (management account only)."
    )
    organization_id: Annotated[str, Field(pattern=r"^o-[a-z0-9]{10,32}$")] | None = Field(
        default=None, description="Required with organization_trail (the bucket policy names it)."
    )
    cloudwatch_logs: bool | None = Field(
        default=None, description="manage: also send the events to CloudWatch Logs. Omitted: in production only."
    )
    cloudwatch_logs_retention_days: int = Field(
        default=365, description="CloudWatch Logs retention of those events (a CloudWatch Logs retention period)."
    )
    retention_days: Annotated[int, Field(ge=1, le=3650)] | None = Field(
        default=None,
        description="manage: the bucket keeps log files this long. Omitted: 2557 (7 years) in "
        "production, 90 elsewhere.",
    )

    @model_validator(mode="after")
    def _organization(self) -> CloudTrailSettings:
        if self.organization_trail and self.organization_id is None:
            raise ValueError("organization_trail needs organization_id (o-…)")
        if self.organization_id is not None and not self.organization_trail:
            raise ValueError("organization_id is for organization_trail: true")
        return self


# ------------------------------------------------------------------------------------------ the section


class Baseline(_Strict):
    """The environment's security services as code: one stack, FindingsBaseline-<env>, deployed before the router's.
    A service left out is `skip`."""

    guardduty: GuardDutySettings | None = Field(default=None, description="Amazon GuardDuty. Omitted: skip.")
    securityhub: SecurityHubSettings | None = Field(default=None, description="AWS Security Hub CSPM. Omitted: skip.")
    config: ConfigSettings | None = Field(default=None, description="AWS Config. Omitted: skip.")
    inspector: InspectorSettings | None = Field(default=None, description="Amazon Inspector. Omitted: skip.")
    cloudtrail: CloudTrailSettings | None = Field(default=None, description="AWS CloudTrail. Omitted: skip.")

    @model_validator(mode="after")
    def _names_a_service(self) -> Baseline:
        if not any(self.modes().values()):
            raise ValueError("baseline names no service: give at least one (guardduty, securityhub, config, …)")
        return self

    def modes(self) -> dict[str, Mode | None]:
        """Each service's mode; None where it is left out (skip)."""
        return {
            "guardduty": None if self.guardduty is None else self.guardduty.mode,
            "securityhub": None if self.securityhub is None else self.securityhub.mode,
            "config": None if self.config is None else self.config.mode,
            "inspector": None if self.inspector is None else self.inspector.mode,
            "cloudtrail": None if self.cloudtrail is None else self.cloudtrail.mode,
        }


def baseline_of(policy: object) -> Baseline | None:
    """The policy's `baseline` section, or None (also for a `Policy` model without the field)."""
    value = getattr(policy, "baseline", None)
    return value if isinstance(value, Baseline) else None


# ------------------------------------------------------------------------------------------ effective settings


@dataclass(frozen=True)
class Feature:
    """One GuardDuty detector feature as CreateDetector / UpdateDetector / AWS::GuardDuty::Detector take it."""

    name: str
    enabled: bool
    additional: tuple[tuple[str, bool], ...] = ()

    def api(self) -> dict[str, object]:
        """The `DetectorFeatureConfiguration` of the GuardDuty API (UpdateDetector `Features[]`)."""
        item: dict[str, object] = {"Name": self.name, "Status": "ENABLED" if self.enabled else "DISABLED"}
        if self.additional:
            item["AdditionalConfiguration"] = [
                {"Name": name, "Status": "ENABLED" if on else "DISABLED"} for name, on in self.additional
            ]
        return item


RUNTIME_AGENTS = ("EKS_ADDON_MANAGEMENT", "ECS_FARGATE_AGENT_MANAGEMENT", "EC2_AGENT_MANAGEMENT")


@dataclass(frozen=True)
class ResolvedGuardDuty:
    mode: Mode
    finding_publishing_frequency: FindingPublishingFrequency
    features: tuple[Feature, ...]

    def feature(self, name: str) -> Feature:
        return next(f for f in self.features if f.name == name)


@dataclass(frozen=True)
class ResolvedDisabledControl:
    standard: str  # a STANDARDS key
    control: str
    reason: str  # "<reason> (owner <owner>, until <expires>)", as Security Hub shows it


@dataclass(frozen=True)
class ResolvedSecurityHub:
    mode: Mode
    standards: tuple[str, ...]
    auto_enable_controls: bool
    disabled_controls: tuple[ResolvedDisabledControl, ...]
    finding_aggregator: FindingAggregatorSettings | None
    control_finding_generator: str = "SECURITY_CONTROL"

    def disabled_in(self, standard: str) -> tuple[ResolvedDisabledControl, ...]:
        return tuple(c for c in self.disabled_controls if c.standard == standard)


def override_description(frequency: str) -> str:
    """The description of a Config recording mode override (the same in CloudFormation and through the API)."""
    return f"findings-router baseline: {frequency.lower()} for these types"


@dataclass(frozen=True)
class ResolvedConfig:
    mode: Mode
    recording_frequency: RecordingFrequency
    overrides: tuple[tuple[RecordingFrequency, tuple[str, ...]], ...]  # (frequency, resource types)
    resource_types: tuple[str, ...] | None
    excluded_resource_types: tuple[str, ...] | None
    include_global_resource_types: bool
    delivery_frequency: DeliveryFrequency
    retention_days: int

    @property
    def recording_strategy(self) -> str:
        if self.resource_types is not None:
            return "INCLUSION_BY_RESOURCE_TYPES"
        if self.excluded_resource_types is not None:
            return "EXCLUSION_BY_RESOURCE_TYPES"
        return "ALL_SUPPORTED_RESOURCE_TYPES"

    def recording_group(self) -> dict[str, object]:
        """The Config API's `RecordingGroup` (PutConfigurationRecorder)."""
        strategy = self.recording_strategy
        group: dict[str, object] = {"recordingStrategy": {"useOnly": strategy}}
        if strategy == "ALL_SUPPORTED_RESOURCE_TYPES":
            group.update(allSupported=True, includeGlobalResourceTypes=self.include_global_resource_types)
        elif strategy == "INCLUSION_BY_RESOURCE_TYPES":
            group.update(
                allSupported=False, includeGlobalResourceTypes=False, resourceTypes=list(self.resource_types or ())
            )
        else:
            group.update(
                allSupported=False,
                includeGlobalResourceTypes=False,
                exclusionByResourceTypes={"resourceTypes": list(self.excluded_resource_types or ())},
            )
        return group

    def recording_mode(self) -> dict[str, object]:
        """The Config API's `RecordingMode` (PutConfigurationRecorder)."""
        mode: dict[str, object] = {"recordingFrequency": self.recording_frequency}
        if self.overrides:
            mode["recordingModeOverrides"] = [
                {
                    "description": override_description(frequency),
                    "recordingFrequency": frequency,
                    "resourceTypes": list(types),
                }
                for frequency, types in self.overrides
            ]
        return mode


@dataclass(frozen=True)
class ResolvedInspector:
    mode: Mode
    resource_types: tuple[str, ...]


@dataclass(frozen=True)
class ResolvedCloudTrail:
    mode: Mode
    organization_trail: bool
    organization_id: str | None
    cloudwatch_logs: bool
    cloudwatch_logs_retention_days: int
    retention_days: int


@dataclass(frozen=True)
class ResolvedBaseline:
    """Every setting of the section with the defaults of the environment's kind filled in; None: skip."""

    production: bool
    guardduty: ResolvedGuardDuty | None
    securityhub: ResolvedSecurityHub | None
    config: ResolvedConfig | None
    inspector: ResolvedInspector | None
    cloudtrail: ResolvedCloudTrail | None


def _on(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def guardduty_features(protections: GuardDutyProtections, *, production: bool) -> tuple[Feature, ...]:
    runtime = _on(protections.runtime_monitoring, production)
    agents = runtime and protections.runtime_agent_management
    return (
        Feature("S3_DATA_EVENTS", _on(protections.s3_data_events, True)),
        Feature("EKS_AUDIT_LOGS", _on(protections.eks_audit_logs, True)),
        Feature("RDS_LOGIN_EVENTS", _on(protections.rds_login_events, True)),
        Feature("LAMBDA_NETWORK_LOGS", _on(protections.lambda_network_logs, True)),
        Feature("EBS_MALWARE_PROTECTION", _on(protections.ebs_malware_protection, production)),
        Feature("RUNTIME_MONITORING", runtime, tuple((name, agents) for name in RUNTIME_AGENTS)),
    )


def default_standards(production: bool) -> tuple[str, ...]:
    return ("fsbp", "cis-3.0.0") if production else ("fsbp",)


def _disabled_reason(control: DisabledControl) -> str:
    return f"{control.reason} (owner {control.owner}, until {control.expires.isoformat()})"


def resolve_baseline(baseline: Baseline, *, production: bool) -> ResolvedBaseline:
    """The effective settings of every service (`production` chooses the defaults); None for a skipped service.

    Assumes `baseline_problems` found nothing (a disabled control without `standard` goes to every enabled standard).
    """
    return ResolvedBaseline(
        production=production,
        guardduty=_guardduty(baseline.guardduty, production),
        securityhub=_securityhub(baseline.securityhub, production),
        config=_config(baseline.config, production),
        inspector=_inspector(baseline.inspector, production),
        cloudtrail=_cloudtrail(baseline.cloudtrail, production),
    )


def _guardduty(settings: GuardDutySettings | None, production: bool) -> ResolvedGuardDuty | None:
    if settings is None or settings.mode == "skip":
        return None
    frequency = settings.finding_publishing_frequency or ("FIFTEEN_MINUTES" if production else "SIX_HOURS")
    return ResolvedGuardDuty(settings.mode, frequency, guardduty_features(settings.protections, production=production))


def _securityhub(settings: SecurityHubSettings | None, production: bool) -> ResolvedSecurityHub | None:
    if settings is None or settings.mode == "skip":
        return None
    standards = tuple(settings.standards or default_standards(production))
    disabled = tuple(
        ResolvedDisabledControl(standard, control.control, _disabled_reason(control))
        for control in settings.disabled_controls
        for standard in ((control.standard,) if control.standard else standards)
    )
    return ResolvedSecurityHub(
        settings.mode, standards, settings.auto_enable_controls, disabled, settings.finding_aggregator
    )


def _config(settings: ConfigSettings | None, production: bool) -> ResolvedConfig | None:
    if settings is None or settings.mode == "skip":
        return None
    frequency: RecordingFrequency = settings.recording_frequency or ("CONTINUOUS" if production else "DAILY")
    overrides: list[tuple[RecordingFrequency, tuple[str, ...]]] = []
    if frequency == "DAILY" and settings.continuous_resource_types:
        overrides.append(("CONTINUOUS", tuple(settings.continuous_resource_types)))
    if frequency == "CONTINUOUS" and settings.daily_resource_types:
        overrides.append(("DAILY", tuple(settings.daily_resource_types)))
    everything = settings.resource_types is None and settings.excluded_resource_types is None
    return ResolvedConfig(
        mode=settings.mode,
        recording_frequency=frequency,
        overrides=tuple(overrides),
        resource_types=None if settings.resource_types is None else tuple(settings.resource_types),
        excluded_resource_types=(
            None if settings.excluded_resource_types is None else tuple(settings.excluded_resource_types)
        ),
        include_global_resource_types=everything and _on(settings.include_global_resource_types, True),
        delivery_frequency=settings.delivery_frequency or ("One_Hour" if production else "TwentyFour_Hours"),
        retention_days=settings.retention_days or (730 if production else 90),
    )


def _inspector(settings: InspectorSettings | None, production: bool) -> ResolvedInspector | None:
    if settings is None or settings.mode == "skip":
        return None
    default = ("EC2", "ECR", "LAMBDA", "LAMBDA_CODE") if production else ("ECR",)
    return ResolvedInspector(settings.mode, tuple(settings.resource_types or default))


def _cloudtrail(settings: CloudTrailSettings | None, production: bool) -> ResolvedCloudTrail | None:
    if settings is None or settings.mode == "skip":
        return None
    return ResolvedCloudTrail(
        mode=settings.mode,
        organization_trail=settings.organization_trail,
        organization_id=settings.organization_id,
        cloudwatch_logs=_on(settings.cloudwatch_logs, production),
        cloudwatch_logs_retention_days=settings.cloudwatch_logs_retention_days,
        retention_days=settings.retention_days or (2557 if production else 90),
    )


# ------------------------------------------------------------------------------------------ checks


def baseline_problems(baseline: Baseline, *, production: bool) -> list[tuple[Loc, str]]:
    """What the model accepts but AWS would refuse, or what makes no sense for the environment's kind: (field path
    under `baseline`, message). Expiry is separate (`disabled_control_expiry`)."""
    problems: list[tuple[Loc, str]] = []
    if baseline.securityhub is not None and baseline.securityhub.mode != "skip":
        problems += _securityhub_problems(baseline.securityhub, production)
    if baseline.config is not None and baseline.config.mode != "skip":
        problems += _config_problems(baseline.config, production)
    return problems


def _securityhub_problems(settings: SecurityHubSettings, production: bool) -> Iterable[tuple[Loc, str]]:
    standards = tuple(settings.standards or default_standards(production))
    enabled = ", ".join(standards)
    seen: set[tuple[str, str | None]] = set()
    for i, control in enumerate(settings.disabled_controls):
        loc: Loc = ("securityhub", "disabled_controls", i)
        key = (control.control, control.standard)
        if key in seen:
            yield (*loc, "control"), f"{control.control} is disabled twice in {control.standard or 'every standard'}"
        seen.add(key)
        if control.standard is not None and control.standard not in standards:
            yield (*loc, "standard"), f"{control.standard} is not an enabled standard (enabled: {enabled})"
        if control.standard is None:
            cis = [s for s in standards if STANDARDS[s].own_control_ids]
            if cis:
                yield (
                    (*loc, "standard"),
                    f"name the standard: {', '.join(cis)} number their controls themselves (e.g. 1.14), so "
                    f"{control.control} cannot be disabled in every enabled standard at once; give one entry per "
                    "standard",
                )
    for standard in standards:
        count = sum(1 for c in settings.disabled_controls if c.standard in (standard, None))
        if count > MAX_DISABLED_CONTROLS_PER_STANDARD:
            yield (
                ("securityhub", "disabled_controls"),
                f"{count} controls disabled in {standard}: AWS::SecurityHub::Standard takes at most "
                f"{MAX_DISABLED_CONTROLS_PER_STANDARD}",
            )


def _config_problems(settings: ConfigSettings, production: bool) -> Iterable[tuple[Loc, str]]:
    frequency = settings.recording_frequency or ("CONTINUOUS" if production else "DAILY")
    if settings.continuous_resource_types and frequency == "CONTINUOUS":
        yield (
            ("config", "continuous_resource_types"),
            "recording is CONTINUOUS already: continuous_resource_types are for DAILY recording",
        )
    if settings.daily_resource_types and frequency == "DAILY":
        yield (
            ("config", "daily_resource_types"),
            "recording is DAILY already: daily_resource_types are for CONTINUOUS",
        )
    for j, resource_type in enumerate(settings.daily_resource_types):
        if resource_type in CONTINUOUS_ONLY_RESOURCE_TYPES:
            yield (("config", "daily_resource_types", j), f"Config cannot record {resource_type} daily")
    if frequency == "DAILY" and settings.resource_types:
        for j, resource_type in enumerate(settings.resource_types):
            if (
                resource_type in CONTINUOUS_ONLY_RESOURCE_TYPES
                and resource_type not in settings.continuous_resource_types
            ):
                yield (
                    ("config", "resource_types", j),
                    f"Config cannot record {resource_type} daily: add it to continuous_resource_types",
                )


# A disabled control that expires within this many days (or less) is a warning (settings/load.py's suppressions).
EXPIRY_WARNING_DAYS = 14


def disabled_control_expiry(baseline: Baseline, today: dt.date) -> list[tuple[Loc, str, bool]]:
    """Disabled controls past their `expires` date (`expired` True) and those expiring within EXPIRY_WARNING_DAYS
    (`expired` False): (field path under `baseline`, message, expired). Whether an expired one is an error is the
    caller's choice (validate-config: error; synth: warning)."""
    found: list[tuple[Loc, str, bool]] = []
    if baseline.securityhub is None or baseline.securityhub.mode == "skip":
        return found
    for i, control in enumerate(baseline.securityhub.disabled_controls):
        where = f"{control.control} in {control.standard or 'every enabled standard'}"
        loc: Loc = ("securityhub", "disabled_controls", i, "expires")
        left = (control.expires - today).days
        if left < 0:
            ago = -left
            found.append(
                (
                    loc,
                    f"disabled control {where} expired on {control.expires} ({ago} day{'s' if ago != 1 else ''} "
                    "ago): review it, then renew the date or remove the entry (the control stays disabled until "
                    "then)",
                    True,
                )
            )
        elif left <= EXPIRY_WARNING_DAYS:
            when = "today" if left == 0 else f"in {left} day{'s' if left != 1 else ''}"
            found.append(
                (loc, f"disabled control {where} expires {when} ({control.expires}): review it and renew", False)
            )
    return found
