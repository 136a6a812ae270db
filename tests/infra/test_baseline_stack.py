"""FindingsBaseline-<env>: each service as its mode says (manage: the CloudFormation resources; adopt: a custom
resource that never deletes), production stricter and checked more often, cdk-nag and cfn-lint clean, and every
custom resource's role allowed only the calls its handler makes.

Two syntheses: the real config files' baseline stacks (built by `build`, with the router stacks: the session fixture
`synthesis`), and one app of stacks built from `Baseline` objects, for the variants the config files do not use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from findings_router.settings.baseline import Baseline
from findings_router.settings.load import load_policy
from findings_router.settings.schema import Policy
from tests.infra.conftest import CDK_CONTEXT, REPO_ROOT, Synthesis, SynthesizedStack

PRODUCTION_FEATURES = {
    "S3_DATA_EVENTS": "ENABLED",
    "EKS_AUDIT_LOGS": "ENABLED",
    "RDS_LOGIN_EVENTS": "ENABLED",
    "LAMBDA_NETWORK_LOGS": "ENABLED",
    "EBS_MALWARE_PROTECTION": "ENABLED",
    "RUNTIME_MONITORING": "ENABLED",
}
# Every action a baseline handler may be granted, by handler (functions/findings_router/baseline/); anything else in
# a handler's role fails test_each_handler_role_allows_only_its_handlers_calls.
HANDLER_ACTIONS = {
    "preflight": {
        "guardduty:ListDetectors",
        "securityhub:DescribeHub",
        "config:DescribeConfigurationRecorders",
        "config:DescribeDeliveryChannels",
    },
    "guardduty": {
        "guardduty:ListDetectors",
        "guardduty:GetAdministratorAccount",
        "guardduty:UpdateDetector",
        "iam:CreateServiceLinkedRole",
    },
    "securityhub": {
        "securityhub:EnableSecurityHub",
        "securityhub:DescribeHub",
        "securityhub:UpdateSecurityHubConfiguration",
        "securityhub:GetEnabledStandards",
        "securityhub:BatchEnableStandards",
        "securityhub:UpdateStandardsControl",
        "securityhub:ListFindingAggregators",
        "securityhub:CreateFindingAggregator",
        "securityhub:UpdateFindingAggregator",
        "iam:CreateServiceLinkedRole",
    },
    "config": {
        "config:DescribeConfigurationRecorders",
        "config:DescribeConfigurationRecorderStatus",
        "config:PutConfigurationRecorder",
        "config:StartConfigurationRecorder",
        "config:DescribeDeliveryChannels",
        "config:PutDeliveryChannel",
        "iam:PassRole",
    },
    "inspector": {
        "inspector2:Enable",
        "inspector2:Disable",
        "inspector2:BatchGetAccountStatus",
        "iam:CreateServiceLinkedRole",
    },
    "cloudtrail": {"cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus"},
}
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}


# ------------------------------------------------------------------------------------------ templates


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = list(resources(template, resource_type).values())
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def settings_of(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    """A custom resource's Settings (JSON; tokens of the account, Region and partition shown as <Ref>)."""
    value = only(template, resource_type)["Properties"]["Settings"]
    if isinstance(value, dict):  # Fn::Join of literal parts and pseudo parameters
        value = "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in value["Fn::Join"][1])
    return json.loads(value)


def flat(value: Any) -> str:
    """A resolved ARN with its pseudo parameters as <Ref>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(flat(p) for p in value["Fn::Join"][1])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    return json.dumps(value)


def handler_statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each baseline handler (by service, from its function name) and the statements of its role."""
    names = {
        logical: props["Properties"]["FunctionName"].rsplit("-baseline-", 1)[1]
        for logical, props in resources(template, "AWS::Lambda::Function").items()
    }
    roles = {
        props["Properties"]["Role"]["Fn::GetAtt"][0]: names[logical]
        for logical, props in resources(template, "AWS::Lambda::Function").items()
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for policy in resources(template, "AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            if role["Ref"] in roles:
                out.setdefault(roles[role["Ref"]], []).extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


# ------------------------------------------------------------------------------------------ stacks from Baseline objects

CIS_CONTROL = {
    "control": "1.14",
    "standard": "cis-1.2.0",
    "owner": "security",
    "reason": "Hardware MFA on root is handled by the organization",
    "expires": "2099-01-01",
}
FSBP_CONTROL = {
    "control": "Config.1",
    "standard": "fsbp",
    "owner": "platform",
    "reason": "The organization's recorder uses its own role",
    "expires": "2099-01-01",
}
DIRECT = {
    # Production's kind, everything managed, with the settings the config files leave out.
    "managed": (
        "prod",
        {
            "guardduty": {"mode": "manage", "protections": {"runtime_agent_management": False}},
            "securityhub": {
                "mode": "manage",
                "standards": ["fsbp", "cis-1.2.0", "cis-3.0.0"],
                "auto_enable_controls": False,
                "disabled_controls": [FSBP_CONTROL, CIS_CONTROL],
                "finding_aggregator": {
                    "region_linking_mode": "SPECIFIED_REGIONS",
                    "regions": ["eu-west-1", "us-east-1"],
                },
            },
            "config": {
                "mode": "manage",
                "excluded_resource_types": ["AWS::EC2::NetworkInterface"],
                "daily_resource_types": ["AWS::EC2::Volume"],
                "retention_days": 400,
            },
            "inspector": {"mode": "manage", "resource_types": ["EC2", "ECR"]},
            "cloudtrail": {
                "mode": "manage",
                "organization_trail": True,
                "organization_id": "o-a1b2c3d4e5",
                "cloudwatch_logs_retention_days": 90,
            },
        },
    ),
    # Development's kind, everything adopted.
    "adopted": (
        "dev",
        {
            "guardduty": {"mode": "adopt", "protections": {"ebs_malware_protection": True}},
            "securityhub": {"mode": "adopt", "disabled_controls": [FSBP_CONTROL], "finding_aggregator": {}},
            "config": {"mode": "adopt", "resource_types": ["AWS::EC2::SecurityGroup", "AWS::IAM::Role"]},
            "inspector": {"mode": "adopt"},
            "cloudtrail": {"mode": "adopt"},
        },
    ),
}


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    """The stacks of DIRECT in one app, synthesized once with cdk-nag (an unacknowledged finding fails the synth)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App, Validations
    from cdk_nag import AwsSolutionsChecks

    from infra.baseline.stack import FindingsBaselineStack

    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        os.environ.pop(name, None)
    outdir = tmp_path_factory.mktemp("cdk.out.baseline")
    app = App(outdir=str(outdir), context=CDK_CONTEXT)
    for name, (environment, section) in DIRECT.items():
        FindingsBaselineStack(
            app,
            f"FindingsBaseline-{name}",
            policy=load_policy(REPO_ROOT / "config" / f"{environment}.yaml"),
            baseline=Baseline.model_validate(section),
            include_dependencies=False,
        )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    assembly = app.synth()
    return outdir, {name: assembly.get_stack_by_name(f"FindingsBaseline-{name}").template for name in DIRECT}


def test_managed_guardduty_sends_features_never_data_sources(direct):
    detector = only(direct[1]["managed"], "AWS::GuardDuty::Detector")
    props = detector["Properties"]
    assert "DataSources" not in props
    assert props["Enable"] is True
    assert props["FindingPublishingFrequency"] == "FIFTEEN_MINUTES"
    assert {f["Name"]: f["Status"] for f in props["Features"]} == PRODUCTION_FEATURES
    runtime = next(f for f in props["Features"] if f["Name"] == "RUNTIME_MONITORING")
    assert {a["Name"]: a["Status"] for a in runtime["AdditionalConfiguration"]} == {
        "EKS_ADDON_MANAGEMENT": "DISABLED",
        "ECS_FARGATE_AGENT_MANAGEMENT": "DISABLED",
        "EC2_AGENT_MANAGEMENT": "DISABLED",
    }
    assert detector["DeletionPolicy"] == "Retain"  # production: the detector outlives the stack


def test_managed_security_hub_standards_disabled_controls_and_aggregator(direct):
    template = direct[1]["managed"]
    hub = only(template, "AWS::SecurityHub::Hub")
    assert hub["Properties"] == {
        "AutoEnableControls": False,
        "ControlFindingGenerator": "SECURITY_CONTROL",
        "EnableDefaultStandards": False,
        "Tags": {
            "app": "findings-router",
            "environment": "prod",
            "findings-router-version": hub["Properties"]["Tags"]["findings-router-version"],
        },
    }
    standards = {
        flat(s["Properties"]["StandardsArn"]): [
            (flat(c["StandardsControlArn"]), c["Reason"]) for c in s["Properties"].get("DisabledStandardsControls", [])
        ]
        for s in resources(template, "AWS::SecurityHub::Standard").values()
    }
    prefix = "arn:<AWS::Partition>:securityhub:<AWS::Region>"
    assert standards == {
        f"{prefix}::standards/aws-foundational-security-best-practices/v/1.0.0": [
            (
                f"{prefix}:<AWS::AccountId>:control/aws-foundational-security-best-practices/v/1.0.0/Config.1",
                "The organization's recorder uses its own role (owner platform, until 2099-01-01)",
            )
        ],
        # CIS 1.2.0 is a ruleset without Region in its ARN; its controls carry CIS's own numbers.
        "arn:<AWS::Partition>:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0": [
            (
                f"{prefix}:<AWS::AccountId>:control/cis-aws-foundations-benchmark/v/1.2.0/1.14",
                "Hardware MFA on root is handled by the organization (owner security, until 2099-01-01)",
            )
        ],
        f"{prefix}::standards/cis-aws-foundations-benchmark/v/3.0.0": [],
    }
    aggregator = only(template, "AWS::SecurityHub::FindingAggregator")["Properties"]
    assert aggregator == {"RegionLinkingMode": "SPECIFIED_REGIONS", "Regions": ["eu-west-1", "us-east-1"]}


def test_managed_config_recorder_channel_and_bucket(direct):
    template = direct[1]["managed"]
    recorder = only(template, "AWS::Config::ConfigurationRecorder")
    assert recorder["Properties"]["Name"] == "findings-router-prod"
    assert recorder["Properties"]["RecordingGroup"] == {
        "AllSupported": False,
        "ExclusionByResourceTypes": {"ResourceTypes": ["AWS::EC2::NetworkInterface"]},
        "IncludeGlobalResourceTypes": False,
        "RecordingStrategy": {"UseOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
    }
    assert recorder["Properties"]["RecordingMode"] == {
        "RecordingFrequency": "CONTINUOUS",
        "RecordingModeOverrides": [
            {
                "Description": "findings-router baseline: daily for these types",
                "RecordingFrequency": "DAILY",
                "ResourceTypes": ["AWS::EC2::Volume"],
            }
        ],
    }
    channel = only(template, "AWS::Config::DeliveryChannel")
    assert channel["Properties"]["ConfigSnapshotDeliveryProperties"] == {"DeliveryFrequency": "One_Hour"}
    # The recorder first, and the bucket policy Config checks when the channel is created.
    assert {"ConfigRecorder49EDB580", "ConfigBucketPolicyC6390BD8"} <= set(channel["DependsOn"])
    bucket_id = channel["Properties"]["S3BucketName"]["Ref"]
    bucket = template["Resources"][bucket_id]
    assert bucket["DeletionPolicy"] == "Retain"
    assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"
    ] == {"SSEAlgorithm": "AES256"}
    assert bucket["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 400
    statements = next(
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    )
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    delivery = next(s for s in statements if s.get("Sid") == "ConfigDelivery")
    assert delivery["Principal"] == {"Service": "config.amazonaws.com"}
    assert flat(delivery["Resource"]).endswith("/AWSLogs/<AWS::AccountId>/Config/*")
    assert delivery["Condition"]["StringEquals"]["s3:x-amz-acl"] == "bucket-owner-full-control"


def test_managed_inspector_and_organization_trail(direct):
    template = direct[1]["managed"]
    assert settings_of(template, "Custom::FindingsBaselineInspector") == {
        "Mode": "manage",
        "ResourceTypes": ["EC2", "ECR"],
    }
    # Production: scanning stays on when the stack goes (CloudFormation never sends the Delete).
    assert only(template, "Custom::FindingsBaselineInspector")["DeletionPolicy"] == "Retain"
    trail = only(template, "AWS::CloudTrail::Trail")["Properties"]
    assert trail["IsOrganizationTrail"] is True
    assert trail["IsMultiRegionTrail"] is True
    assert trail["EnableLogFileValidation"] is True
    assert trail["TrailName"] == "findings-router-prod"
    assert "CloudWatchLogsLogGroupArn" in trail  # production's default
    group = trail["CloudWatchLogsLogGroupArn"]["Fn::GetAtt"][0]
    assert template["Resources"][group]["Properties"]["RetentionInDays"] == 90


def test_what_manage_creates_once_per_account_waits_for_the_preflight(direct):
    template = direct[1]["managed"]
    assert settings_of(template, "Custom::FindingsBaselinePreflight") == {
        "Services": ["guardduty", "securityhub", "config"]
    }
    preflight = next(iter(resources(template, "Custom::FindingsBaselinePreflight")))
    for resource_type in (
        "AWS::GuardDuty::Detector",
        "AWS::SecurityHub::Hub",
        "AWS::Config::ConfigurationRecorder",
        "AWS::Config::DeliveryChannel",
    ):
        assert preflight in only(template, resource_type)["DependsOn"], resource_type
    # Security Hub's controls need Config recording: the hub and its standards come after the recorder.
    for standard in resources(template, "AWS::SecurityHub::Standard").values():
        assert "ConfigRecorder49EDB580" in standard["DependsOn"]


def test_adopt_adds_custom_resources_only_and_no_preflight(direct):
    template = direct[1]["adopted"]
    created = {v["Type"] for v in template["Resources"].values()}
    assert created == {
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
        "AWS::Logs::LogGroup",
        "Custom::FindingsBaselineGuardduty",
        "Custom::FindingsBaselineSecurityhub",
        "Custom::FindingsBaselineConfig",
        "Custom::FindingsBaselineInspector",
        "Custom::FindingsBaselineCloudtrail",
    }
    gd = settings_of(template, "Custom::FindingsBaselineGuardduty")
    assert gd["FindingPublishingFrequency"] == "SIX_HOURS"
    assert {f["Name"]: f["Status"] for f in gd["Features"]}["EBS_MALWARE_PROTECTION"] == "ENABLED"
    sh = settings_of(template, "Custom::FindingsBaselineSecurityhub")
    assert sh["ControlFindingGenerator"] == "SECURITY_CONTROL"
    assert [s["Key"] for s in sh["Standards"]] == ["fsbp"]
    assert [c["StandardsControlArn"] for c in sh["DisabledControls"]] == [
        "arn:<AWS::Partition>:securityhub:<AWS::Region>:<AWS::AccountId>:control/aws-foundational-security-best-practices/v/1.0.0/Config.1"
    ]
    assert sh["FindingAggregator"] == {"RegionLinkingMode": "ALL_REGIONS", "Regions": []}
    cfg = settings_of(template, "Custom::FindingsBaselineConfig")
    assert cfg["RecordingGroup"]["resourceTypes"] == ["AWS::EC2::SecurityGroup", "AWS::IAM::Role"]
    assert cfg["RecordingMode"] == {"recordingFrequency": "DAILY"}
    assert cfg["DeliveryFrequency"] == "TwentyFour_Hours"
    assert settings_of(template, "Custom::FindingsBaselineInspector") == {"Mode": "adopt", "ResourceTypes": ["ECR"]}
    # Each custom resource waits for its role's policy; none may be retained (Delete of an adopted one is a no-op).
    for logical, resource in template["Resources"].items():
        if resource["Type"].startswith("Custom::"):
            assert any("DefaultPolicy" in d for d in resource["DependsOn"]), logical
            assert resource.get("DeletionPolicy", "Delete") == "Delete"


def test_each_handler_role_allows_only_its_handlers_calls(direct):
    for name, template in direct[1].items():
        for handler, statements in handler_statements(template).items():
            granted = set().union(*(actions(s) for s in statements)) - LOG_ACTIONS
            assert granted <= HANDLER_ACTIONS[handler], (name, handler, granted - HANDLER_ACTIONS[handler])
            assert not any(a.endswith("*") for a in granted), (name, handler)
            for statement in statements:
                if actions(statement) & {"iam:CreateServiceLinkedRole", "iam:PassRole"}:
                    # Never an unconditioned role action: only the service's own service-linked roles, or passing
                    # a role to Config.
                    assert set(statement["Condition"]["StringEquals"]) <= {"iam:AWSServiceName", "iam:PassedToService"}
                    assert "aws-service-role/" in flat(statement["Resource"]) or "iam:PassRole" in actions(statement)


def test_each_handler_has_its_own_role_python_312_arm64(direct):
    for template in direct[1].values():
        functions = resources(template, "AWS::Lambda::Function").values()
        roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions]
        assert len(roles) == len(set(roles))
        for function in functions:
            assert function["Properties"]["Runtime"] == "python3.12"
            assert function["Properties"]["Architectures"] == ["arm64"]
            assert function["Properties"]["Handler"].startswith("findings_router.baseline.")


def test_the_direct_stacks_are_cfn_lint_clean(direct):
    from cfnlint.api import ManualArgs, lint

    outdir, templates = direct
    for name in templates:
        matches = lint(
            (outdir / f"FindingsBaseline-{name}.template.json").read_text(),
            config=ManualArgs(regions=["us-east-1", "eu-central-1"], ignore_checks=["W3005"]),
        )
        assert [str(m) for m in matches] == [], name


def test_the_direct_stacks_acknowledge_only_with_reasons(direct):
    outdir, templates = direct
    report = json.loads((outdir / "validation-report.json").read_text())
    assert all(plugin["conclusion"] == "success" for plugin in report["pluginReports"])
    assert not [v for p in report["pluginReports"] for v in p.get("violations", [])]
    for name in templates:
        metadata = json.loads((outdir / f"FindingsBaseline-{name}.metadata.json").read_text())
        acknowledged = {
            (path, rule): reason
            for path, entries in metadata.items()
            for entry in entries
            if entry["type"] == "aws:cdk:acknowledged-rules"
            for rule, reason in entry["data"].items()
        }
        assert acknowledged
        assert all(len(reason) > 40 for reason in acknowledged.values())
        # Nothing acknowledged for a whole stack or construct: on single resources (a policy, a function, a bucket).
        assert all(path.endswith(("/Resource", "/DefaultPolicy/Resource")) for path, _ in acknowledged), acknowledged


# ------------------------------------------------------------------------------------------ the config files

HAS_BASELINE = "baseline" in Policy.model_fields
needs_field = pytest.mark.skipif(
    not HAS_BASELINE,
    reason="settings/schema.py's Policy has no `baseline` field yet (added by the lead; then config/*.yaml get theirs)",
)
# docs/baseline.md's table, as the stacks must implement it.
EXPECTED = {
    "dev": {
        "guardduty": ("adopt", "SIX_HOURS"),
        "securityhub": ("adopt", ["fsbp"], ["Config.1"]),
        "config": ("adopt", "DAILY", "TwentyFour_Hours"),
        "inspector": ("manage", ["ECR"]),
        "cloudtrail": None,
    },
    "stg": {
        "guardduty": ("manage", "ONE_HOUR"),
        "securityhub": ("manage", ["fsbp", "cis-3.0.0"], []),
        "config": ("manage", "DAILY", "TwentyFour_Hours"),
        "inspector": ("manage", ["EC2", "ECR"]),
        "cloudtrail": "adopt",
    },
    "prod": {
        "guardduty": ("manage", "FIFTEEN_MINUTES"),
        "securityhub": ("manage", ["fsbp", "cis-1.4.0", "cis-3.0.0"], []),
        "config": ("manage", "CONTINUOUS", "One_Hour"),
        "inspector": ("manage", ["EC2", "ECR", "LAMBDA", "LAMBDA_CODE"]),
        "cloudtrail": "manage",
    },
}


@pytest.fixture(params=sorted(EXPECTED))
def baseline(request: pytest.FixtureRequest, synthesis: Synthesis) -> SynthesizedStack:
    if not HAS_BASELINE:
        pytest.skip("settings/schema.py's Policy has no `baseline` field yet")
    return synthesis.baselines[request.param]


@needs_field
def test_each_config_file_with_a_baseline_section_becomes_its_baseline_stack(synthesis: Synthesis):
    assert sorted(synthesis.baselines) == sorted(EXPECTED)
    for environment, stack in synthesis.baselines.items():
        assert stack.stack.stack_name == f"FindingsBaseline-{environment}"
        assert stack.stack.termination_protection is stack.policy.production
        assert stack.template["Description"] == f"findings-router ({environment}): the security services baseline"


def test_guardduty_per_environment(baseline: SynthesizedStack):
    mode, frequency = EXPECTED[baseline.environment]["guardduty"]
    features = {"S3_DATA_EVENTS", "EKS_AUDIT_LOGS", "RDS_LOGIN_EVENTS", "LAMBDA_NETWORK_LOGS"}
    if baseline.policy.production:
        features |= {"EBS_MALWARE_PROTECTION", "RUNTIME_MONITORING"}
    if baseline.environment == "stg":
        features |= {"EBS_MALWARE_PROTECTION"}
    if mode == "manage":
        props = only(baseline.template, "AWS::GuardDuty::Detector")["Properties"]
        assert props["FindingPublishingFrequency"] == frequency
        assert {f["Name"] for f in props["Features"] if f["Status"] == "ENABLED"} == features
    else:
        assert not resources(baseline.template, "AWS::GuardDuty::Detector")
        settings = settings_of(baseline.template, "Custom::FindingsBaselineGuardduty")
        assert settings["FindingPublishingFrequency"] == frequency
        assert {f["Name"] for f in settings["Features"] if f["Status"] == "ENABLED"} == features


def test_security_hub_per_environment(baseline: SynthesizedStack):
    mode, standards, disabled = EXPECTED[baseline.environment]["securityhub"]
    paths = {
        "fsbp": "aws-foundational-security-best-practices/v/1.0.0",
        "cis-1.4.0": "cis-aws-foundations-benchmark/v/1.4.0",
        "cis-3.0.0": "cis-aws-foundations-benchmark/v/3.0.0",
    }
    if mode == "manage":
        hub = only(baseline.template, "AWS::SecurityHub::Hub")["Properties"]
        assert (hub["ControlFindingGenerator"], hub["EnableDefaultStandards"]) == ("SECURITY_CONTROL", False)
        arns = sorted(
            flat(s["Properties"]["StandardsArn"])
            for s in resources(baseline.template, "AWS::SecurityHub::Standard").values()
        )
        controls = [
            flat(c["StandardsControlArn"]).rsplit("/", 1)[1]
            for s in resources(baseline.template, "AWS::SecurityHub::Standard").values()
            for c in s["Properties"].get("DisabledStandardsControls", [])
        ]
    else:
        settings = settings_of(baseline.template, "Custom::FindingsBaselineSecurityhub")
        assert settings["ControlFindingGenerator"] == "SECURITY_CONTROL"
        arns = sorted(s["StandardsArn"] for s in settings["Standards"])
        controls = [c["StandardsControlArn"].rsplit("/", 1)[1] for c in settings["DisabledControls"]]
    assert arns == sorted(f"arn:<AWS::Partition>:securityhub:<AWS::Region>::standards/{paths[s]}" for s in standards)
    assert controls == disabled


def test_config_per_environment(baseline: SynthesizedStack):
    mode, frequency, delivery = EXPECTED[baseline.environment]["config"]
    if mode == "manage":
        assert (
            only(baseline.template, "AWS::Config::ConfigurationRecorder")["Properties"]["RecordingMode"][
                "RecordingFrequency"
            ]
            == frequency
        )
        channel = only(baseline.template, "AWS::Config::DeliveryChannel")["Properties"]
        assert channel["ConfigSnapshotDeliveryProperties"]["DeliveryFrequency"] == delivery
    else:
        settings = settings_of(baseline.template, "Custom::FindingsBaselineConfig")
        assert (settings["RecordingMode"]["recordingFrequency"], settings["DeliveryFrequency"]) == (frequency, delivery)


def test_inspector_and_cloudtrail_per_environment(baseline: SynthesizedStack):
    mode, types = EXPECTED[baseline.environment]["inspector"]
    assert settings_of(baseline.template, "Custom::FindingsBaselineInspector") == {"Mode": mode, "ResourceTypes": types}
    trail = EXPECTED[baseline.environment]["cloudtrail"]
    assert bool(resources(baseline.template, "AWS::CloudTrail::Trail")) is (trail == "manage")
    assert bool(resources(baseline.template, "Custom::FindingsBaselineCloudtrail")) is (trail == "adopt")


def test_production_retains_what_it_manages(baseline: SynthesizedStack):
    managed = (
        "AWS::GuardDuty::Detector",
        "AWS::SecurityHub::Hub",
        "AWS::Config::ConfigurationRecorder",
        "AWS::Config::DeliveryChannel",
        "Custom::FindingsBaselineInspector",  # manage in every shipped environment
    )
    for resource_type in managed:
        for resource in resources(baseline.template, resource_type).values():
            assert resource.get("DeletionPolicy") == ("Retain" if baseline.policy.production else "Delete")


def test_the_config_files_baseline_stacks_are_cfn_lint_clean_and_least_privilege(
    baseline: SynthesizedStack, synthesis: Synthesis
):
    from cfnlint.api import ManualArgs, lint

    path = synthesis.outdir / f"FindingsBaseline-{baseline.environment}.template.json"
    matches = lint(path.read_text(), config=ManualArgs(regions=["us-east-1", "eu-central-1"], ignore_checks=["W3005"]))
    assert [str(m) for m in matches] == []
    for handler, statements in handler_statements(baseline.template).items():
        granted = set().union(*(actions(s) for s in statements)) - LOG_ACTIONS
        assert granted <= HANDLER_ACTIONS[handler], handler
