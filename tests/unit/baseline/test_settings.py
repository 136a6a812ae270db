"""The `baseline:` model: the defaults follow `production` (never the environment's name), every setting can be
overridden, and what AWS would refuse is refused here with the field."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from findings_router.settings.baseline import (
    Baseline,
    baseline_of,
    baseline_problems,
    disabled_control_expiry,
    resolve_baseline,
)

EVERYTHING = {
    "guardduty": {"mode": "manage"},
    "securityhub": {"mode": "manage"},
    "config": {"mode": "manage"},
    "inspector": {"mode": "manage"},
    "cloudtrail": {"mode": "manage"},
}
CONTROL = {"control": "Config.1", "owner": "platform", "reason": "recorded centrally", "expires": "2027-06-30"}


def resolved(production: bool, **sections: dict):
    return resolve_baseline(Baseline.model_validate({**EVERYTHING, **sections}), production=production)


def test_production_is_stricter_and_checked_more_often_by_default():
    prod, dev = resolved(True), resolved(False)
    assert (prod.guardduty.finding_publishing_frequency, dev.guardduty.finding_publishing_frequency) == (
        "FIFTEEN_MINUTES",
        "SIX_HOURS",
    )
    on = {f.name for f in prod.guardduty.features if f.enabled}
    assert on == {
        "S3_DATA_EVENTS",
        "EKS_AUDIT_LOGS",
        "RDS_LOGIN_EVENTS",
        "LAMBDA_NETWORK_LOGS",
        "EBS_MALWARE_PROTECTION",
        "RUNTIME_MONITORING",
    }
    assert {f.name for f in dev.guardduty.features if not f.enabled} == {"EBS_MALWARE_PROTECTION", "RUNTIME_MONITORING"}
    assert (prod.config.recording_frequency, dev.config.recording_frequency) == ("CONTINUOUS", "DAILY")
    assert (prod.config.delivery_frequency, dev.config.delivery_frequency) == ("One_Hour", "TwentyFour_Hours")
    assert (prod.config.retention_days, dev.config.retention_days) == (730, 90)
    assert prod.inspector.resource_types == ("EC2", "ECR", "LAMBDA", "LAMBDA_CODE")
    assert dev.inspector.resource_types == ("ECR",)
    assert (prod.securityhub.standards, dev.securityhub.standards) == (("fsbp", "cis-3.0.0"), ("fsbp",))
    assert prod.securityhub.control_finding_generator == dev.securityhub.control_finding_generator == "SECURITY_CONTROL"
    assert (prod.cloudtrail.cloudwatch_logs, dev.cloudtrail.cloudwatch_logs) == (True, False)
    assert (prod.cloudtrail.retention_days, dev.cloudtrail.retention_days) == (2557, 90)


def test_every_default_can_be_overridden():
    dev = resolved(
        False,
        guardduty={
            "mode": "adopt",
            "finding_publishing_frequency": "ONE_HOUR",
            "protections": {"runtime_monitoring": True, "runtime_agent_management": False, "s3_data_events": False},
        },
        config={
            "mode": "adopt",
            "recording_frequency": "CONTINUOUS",
            "delivery_frequency": "Six_Hours",
            "retention_days": 30,
        },
        inspector={"mode": "adopt", "resource_types": ["EC2", "LAMBDA"]},
        securityhub={"mode": "adopt", "standards": ["nist-800-53-5.0.0"], "auto_enable_controls": False},
    )
    assert dev.guardduty.finding_publishing_frequency == "ONE_HOUR"
    runtime = dev.guardduty.feature("RUNTIME_MONITORING")
    assert runtime.enabled and all(not on for _, on in runtime.additional)
    assert not dev.guardduty.feature("S3_DATA_EVENTS").enabled
    assert (dev.config.recording_frequency, dev.config.delivery_frequency, dev.config.retention_days) == (
        "CONTINUOUS",
        "Six_Hours",
        30,
    )
    assert dev.inspector.resource_types == ("EC2", "LAMBDA")
    assert (dev.securityhub.standards, dev.securityhub.auto_enable_controls) == (("nist-800-53-5.0.0",), False)


def test_a_skipped_or_missing_service_resolves_to_nothing():
    baseline = resolve_baseline(
        Baseline.model_validate({"guardduty": {"mode": "skip"}, "inspector": {"mode": "adopt"}}), production=True
    )
    assert (baseline.guardduty, baseline.securityhub, baseline.config, baseline.cloudtrail) == (None, None, None, None)
    assert baseline.inspector is not None


def test_config_overrides_and_recording_group():
    dev = resolved(
        False, config={"mode": "manage", "continuous_resource_types": ["AWS::EC2::SecurityGroup", "AWS::IAM::Policy"]}
    )
    assert dev.config.overrides == (("CONTINUOUS", ("AWS::EC2::SecurityGroup", "AWS::IAM::Policy")),)
    assert dev.config.recording_group() == {
        "recordingStrategy": {"useOnly": "ALL_SUPPORTED_RESOURCE_TYPES"},
        "allSupported": True,
        "includeGlobalResourceTypes": True,
    }
    only = resolved(True, config={"mode": "manage", "resource_types": ["AWS::S3::Bucket"]}).config
    assert only.recording_group() == {
        "recordingStrategy": {"useOnly": "INCLUSION_BY_RESOURCE_TYPES"},
        "allSupported": False,
        "includeGlobalResourceTypes": False,
        "resourceTypes": ["AWS::S3::Bucket"],
    }
    but = resolved(True, config={"mode": "manage", "excluded_resource_types": ["AWS::EC2::NetworkInterface"]}).config
    assert but.recording_group()["exclusionByResourceTypes"] == {"resourceTypes": ["AWS::EC2::NetworkInterface"]}
    assert but.recording_mode() == {"recordingFrequency": "CONTINUOUS"}


def test_a_disabled_control_without_standard_goes_to_every_enabled_standard_with_its_review_in_the_reason():
    prod = resolved(
        True, securityhub={"mode": "manage", "standards": ["fsbp", "nist-800-53-5.0.0"], "disabled_controls": [CONTROL]}
    )
    assert [(c.standard, c.control) for c in prod.securityhub.disabled_controls] == [
        ("fsbp", "Config.1"),
        ("nist-800-53-5.0.0", "Config.1"),
    ]
    assert prod.securityhub.disabled_controls[0].reason == "recorded centrally (owner platform, until 2027-06-30)"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"inspector": {"mode": "manage", "resource_types": ["LAMBDA_CODE"]}},
            r"LAMBDA_CODE \(code scanning\) needs LAMBDA",
        ),
        ({"inspector": {"mode": "manage", "resource_types": ["CODE_REPOSITORY"]}}, "Input should be"),
        ({"securityhub": {"mode": "manage", "standards": ["fsbp", "fsbp"]}}, "a standard is listed twice"),
        ({"securityhub": {"mode": "manage", "standards": ["cis-9.9.9"]}}, "Input should be"),
        (
            {"securityhub": {"mode": "manage", "disabled_controls": [{**CONTROL, "reason": "short"}]}},
            "at least 10 characters",
        ),
        (
            {
                "securityhub": {
                    "mode": "manage",
                    "disabled_controls": [{k: v for k, v in CONTROL.items() if k != "expires"}],
                }
            },
            "Field required",
        ),
        (
            {
                "securityhub": {
                    "mode": "manage",
                    "finding_aggregator": {"region_linking_mode": "ALL_REGIONS", "regions": ["eu-west-1"]},
                }
            },
            "not ALL_REGIONS",
        ),
        (
            {"securityhub": {"mode": "manage", "finding_aggregator": {"region_linking_mode": "SPECIFIED_REGIONS"}}},
            "needs regions",
        ),
        (
            {
                "config": {
                    "mode": "manage",
                    "resource_types": ["AWS::S3::Bucket"],
                    "excluded_resource_types": ["AWS::S3::Bucket"],
                }
            },
            "not both",
        ),
        (
            {
                "config": {
                    "mode": "manage",
                    "resource_types": ["AWS::S3::Bucket"],
                    "include_global_resource_types": True,
                }
            },
            "every supported type only",
        ),
        ({"config": {"mode": "manage", "resource_types": ["S3 bucket"]}}, "String should match pattern"),
        (
            {
                "config": {
                    "mode": "manage",
                    "continuous_resource_types": ["AWS::IAM::Role"],
                    "daily_resource_types": ["AWS::IAM::Role"],
                }
            },
            "both continuous and daily",
        ),
        ({"cloudtrail": {"mode": "manage", "organization_trail": True}}, "needs organization_id"),
        ({"cloudtrail": {"mode": "manage", "organization_id": "o-abcdefghij"}}, "for organization_trail: true"),
        ({"guardduty": {"mode": "create"}}, "Input should be 'manage', 'adopt' or 'skip'"),
        ({"guardduty": {"mode": "manage", "features": ["S3_DATA_EVENTS"]}}, "Extra inputs are not permitted"),
        ({}, "baseline names no service"),
    ],
)
def test_what_aws_would_refuse_is_refused_with_the_field(section, message):
    with pytest.raises(ValidationError, match=message):
        Baseline.model_validate(section)


def problems(production: bool, **sections: dict) -> list:
    return baseline_problems(Baseline.model_validate(sections), production=production)


def test_a_disabled_control_must_be_in_an_enabled_standard_and_cis_needs_its_own_entry():
    found = problems(
        True,
        securityhub={
            "mode": "manage",
            "disabled_controls": [
                {**CONTROL, "standard": "pci-dss-4.0.1"},
                CONTROL,
                {**CONTROL, "standard": "fsbp"},
                {**CONTROL, "standard": "fsbp"},
            ],
        },
    )
    assert found == [
        (
            ("securityhub", "disabled_controls", 0, "standard"),
            "pci-dss-4.0.1 is not an enabled standard (enabled: fsbp, cis-3.0.0)",
        ),
        (
            ("securityhub", "disabled_controls", 1, "standard"),
            "name the standard: cis-3.0.0 number their controls themselves (e.g. 1.14), so Config.1 cannot be "
            "disabled in every enabled standard at once; give one entry per standard",
        ),
        (("securityhub", "disabled_controls", 3, "control"), "Config.1 is disabled twice in fsbp"),
    ]
    # Without a CIS benchmark enabled (development's default: fsbp only) a control may go to every standard.
    assert problems(False, securityhub={"mode": "manage", "disabled_controls": [CONTROL]}) == []


def test_config_recording_overrides_must_fit_the_frequency():
    assert problems(True, config={"mode": "manage", "continuous_resource_types": ["AWS::EC2::SecurityGroup"]}) == [
        (
            ("config", "continuous_resource_types"),
            "recording is CONTINUOUS already: continuous_resource_types are for DAILY recording",
        )
    ]
    assert problems(False, config={"mode": "manage", "daily_resource_types": ["AWS::EC2::Instance"]}) == [
        (("config", "daily_resource_types"), "recording is DAILY already: daily_resource_types are for CONTINUOUS")
    ]
    assert problems(True, config={"mode": "manage", "daily_resource_types": ["AWS::Config::ResourceCompliance"]}) == [
        (("config", "daily_resource_types", 0), "Config cannot record AWS::Config::ResourceCompliance daily")
    ]
    assert problems(
        False, config={"mode": "manage", "resource_types": ["AWS::S3::Bucket", "AWS::Config::ConfigurationRecorder"]}
    ) == [
        (
            ("config", "resource_types", 1),
            "Config cannot record AWS::Config::ConfigurationRecorder daily: add it to continuous_resource_types",
        )
    ]
    # A skipped service is not checked.
    assert (
        problems(
            True,
            guardduty={"mode": "manage"},
            config={"mode": "skip", "continuous_resource_types": ["AWS::EC2::SecurityGroup"]},
        )
        == []
    )


def test_disabled_controls_expire_like_suppressions():
    baseline = Baseline.model_validate(
        {
            "securityhub": {
                "mode": "adopt",
                "disabled_controls": [
                    {**CONTROL, "expires": "2027-01-01", "standard": "fsbp"},
                    {**CONTROL, "control": "IAM.6", "expires": "2027-01-10"},
                    {**CONTROL, "control": "S3.1", "expires": "2028-01-01"},
                ],
            }
        }
    )
    found = disabled_control_expiry(baseline, dt.date(2027, 1, 3))
    assert found == [
        (
            ("securityhub", "disabled_controls", 0, "expires"),
            "disabled control Config.1 in fsbp expired on 2027-01-01 (2 days ago): review it, then renew the date or "
            "remove the entry (the control stays disabled until then)",
            True,
        ),
        (
            ("securityhub", "disabled_controls", 1, "expires"),
            "disabled control IAM.6 in every enabled standard expires in 7 days (2027-01-10): review it and renew",
            False,
        ),
    ]


def test_baseline_of_reads_the_policys_section_when_the_model_has_it():
    class WithBaseline:
        baseline = Baseline.model_validate({"guardduty": {"mode": "skip"}, "inspector": {"mode": "adopt"}})

    class WithoutBaseline:
        pass

    assert baseline_of(WithBaseline()) is WithBaseline.baseline
    assert baseline_of(WithoutBaseline()) is None
