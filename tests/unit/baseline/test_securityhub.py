"""Security Hub adopt: "already subscribed" is swallowed, only what differs is updated, missing standards are
enabled and awaited before their controls are disabled, a dropped control is re-enabled, and Delete touches
nothing."""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from findings_router.baseline import securityhub
from findings_router.baseline.resource import BaselineError
from tests.unit.baseline.helpers import ACCOUNT, REGION, make_request

HUB = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:hub/default"
FSBP = f"arn:aws:securityhub:{REGION}::standards/aws-foundational-security-best-practices/v/1.0.0"
CIS = f"arn:aws:securityhub:{REGION}::standards/cis-aws-foundations-benchmark/v/3.0.0"
CONFIG_1 = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:control/aws-foundational-security-best-practices/v/1.0.0/Config.1"
IAM_6 = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:control/aws-foundational-security-best-practices/v/1.0.0/IAM.6"
REASON = "The organization records Config centrally (owner platform, until 2027-06-30)"


def settings(*, disabled=(CONFIG_1,), aggregator=None) -> dict:
    return {
        "ControlFindingGenerator": "SECURITY_CONTROL",
        "AutoEnableControls": True,
        "Standards": [{"Key": "fsbp", "StandardsArn": FSBP}, {"Key": "cis-3.0.0", "StandardsArn": CIS}],
        "DisabledControls": [{"StandardsArn": FSBP, "StandardsControlArn": arn, "Reason": REASON} for arn in disabled],
        "FindingAggregator": aggregator,
    }


def subscription(arn: str, status: str = "READY", updatable: str = "READY_FOR_UPDATES") -> dict:
    return {
        "StandardsSubscriptionArn": arn.replace("::standards", f":{ACCOUNT}:subscription"),
        "StandardsArn": arn,
        "StandardsInput": {},
        "StandardsStatus": status,
        "StandardsControlsUpdatable": updatable,
    }


def hub(generator: str = "SECURITY_CONTROL", auto: bool = True) -> dict:
    return {
        "HubArn": HUB,
        "SubscribedAt": "2024-01-01T00:00:00Z",
        "AutoEnableControls": auto,
        "ControlFindingGenerator": generator,
    }


def expect_enable(sh, *, subscribed: bool) -> None:
    params = {"EnableDefaultStandards": False, "ControlFindingGenerator": "SECURITY_CONTROL"}
    if subscribed:
        sh.add_client_error(
            "enable_security_hub",
            "ResourceConflictException",
            "Account is already subscribed to Security Hub",
            409,
            expected_params=params,
        )
    else:
        sh.add_response("enable_security_hub", {}, params)


def test_an_account_already_subscribed_is_adopted_and_brought_to_the_policy(stubbed):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=True)
    sh.add_response("describe_hub", hub(generator="STANDARD_CONTROL"), {})
    sh.add_response("update_security_hub_configuration", {}, {"ControlFindingGenerator": "SECURITY_CONTROL"})
    # FSBP and CIS 1.2.0 (the old defaults) are on; CIS 3.0.0 is not.
    cis_12 = "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0"
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP), subscription(cis_12)]}, {})
    sh.add_response(
        "batch_enable_standards",
        {"StandardsSubscriptions": [subscription(CIS, "PENDING")]},
        {"StandardsSubscriptionRequests": [{"StandardsArn": CIS}]},
    )
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP)]}, {})
    sh.add_response(
        "update_standards_control",
        {},
        {"StandardsControlArn": CONFIG_1, "ControlStatus": "DISABLED", "DisabledReason": REASON},
    )
    outcome = securityhub.handle(make_request("Create", settings()), sh.client, sleep=lambda _: None)
    assert outcome.physical_resource_id == HUB
    summary = outcome.data["Summary"]
    assert "was on already (adopted)" in summary
    assert "changed ControlFindingGenerator" in summary
    assert "enabled 1 standard(s)" in summary
    assert f"also on, left as they are: {cis_12}" in summary  # never disabled by adopt
    assert "1 control(s) disabled" in summary


def test_a_new_hub_is_enabled_without_the_default_standards(stubbed):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=False)
    sh.add_response("describe_hub", hub(), {})
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": []}, {})
    sh.add_response(
        "batch_enable_standards",
        {"StandardsSubscriptions": []},
        {"StandardsSubscriptionRequests": [{"StandardsArn": FSBP}, {"StandardsArn": CIS}]},
    )
    outcome = securityhub.handle(make_request("Create", settings(disabled=())), sh.client)
    assert outcome.data["Summary"].startswith("Security Hub enabled; enabled 2 standard(s); 0 control(s) disabled")


def test_controls_wait_for_a_new_standard_to_be_ready(stubbed):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=True)
    sh.add_response("describe_hub", hub(), {})
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(CIS)]}, {})
    sh.add_response("batch_enable_standards", {"StandardsSubscriptions": []}, {"StandardsSubscriptionRequests": ANY})
    sh.add_response(
        "get_enabled_standards",
        {"StandardsSubscriptions": [subscription(FSBP, "PENDING", "NOT_READY_FOR_UPDATES")]},
        {},
    )
    sh.add_response(
        "get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP, "READY", "NOT_READY_FOR_UPDATES")]}, {}
    )
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP)]}, {})
    sh.add_response(
        "update_standards_control",
        {},
        {"StandardsControlArn": CONFIG_1, "ControlStatus": "DISABLED", "DisabledReason": REASON},
    )
    slept: list[float] = []
    securityhub.handle(make_request("Create", settings()), sh.client, sleep=slept.append)
    assert len(slept) == 2


def test_a_standard_never_ready_fails_clearly(stubbed):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=True)
    sh.add_response("describe_hub", hub(), {})
    sh.add_response(
        "get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP, "PENDING"), subscription(CIS)]}, {}
    )
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP, "PENDING")]}, {})
    with pytest.raises(BaselineError, match=r"^SecurityHub GetEnabledStandards: standards not ready .*PENDING"):
        securityhub.handle(make_request("Create", settings()), sh.client, wait_seconds=0, sleep=lambda _: None)


def test_a_failed_standard_fails_with_its_reason(stubbed):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=True)
    sh.add_response("describe_hub", hub(), {})
    failed = {
        **subscription(FSBP, "FAILED"),
        "StandardsStatusReason": {"StatusReasonCode": "NO_AVAILABLE_CONFIGURATION_RECORDER"},
    }
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [failed, subscription(CIS)]}, {})
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [failed]}, {})
    with pytest.raises(BaselineError, match="is FAILED: NO_AVAILABLE_CONFIGURATION_RECORDER"):
        securityhub.handle(make_request("Create", settings()), sh.client)


def test_a_control_the_policy_no_longer_disables_is_enabled_again_on_update(stubbed):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=True)
    sh.add_response("describe_hub", hub(auto=False), {})
    sh.add_response("update_security_hub_configuration", {}, {"AutoEnableControls": True})
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP), subscription(CIS)]}, {})
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP), subscription(CIS)]}, {})
    sh.add_response(
        "update_standards_control",
        {},
        {"StandardsControlArn": CONFIG_1, "ControlStatus": "DISABLED", "DisabledReason": REASON},
    )
    sh.add_response("update_standards_control", {}, {"StandardsControlArn": IAM_6, "ControlStatus": "ENABLED"})
    request = make_request("Update", settings(), old=settings(disabled=(CONFIG_1, IAM_6)), physical=HUB)
    outcome = securityhub.handle(request, sh.client)
    assert "1 control(s) disabled, 1 re-enabled" in outcome.data["Summary"]


def test_an_unknown_control_says_how_controls_are_numbered(stubbed):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=True)
    sh.add_response("describe_hub", hub(), {})
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP), subscription(CIS)]}, {})
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP), subscription(CIS)]}, {})
    sh.add_client_error("update_standards_control", "ResourceNotFoundException", "Control not found", 404)
    with pytest.raises(BaselineError, match=r"no such control in that standard.*CIS benchmarks number their controls"):
        securityhub.handle(make_request("Create", settings()), sh.client)


def test_a_member_account_cannot_change_the_control_finding_generator(stubbed):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=True)
    sh.add_response("describe_hub", hub(generator="STANDARD_CONTROL"), {})
    sh.add_client_error(
        "update_security_hub_configuration", "InvalidInputException", "Member account cannot update", 400
    )
    with pytest.raises(BaselineError, match="takes consolidated control findings from its administrator"):
        securityhub.handle(make_request("Create", settings()), sh.client)


@pytest.mark.parametrize("existing", [True, False])
def test_the_finding_aggregator_is_updated_or_created(stubbed, existing):
    sh = stubbed("securityhub")
    expect_enable(sh, subscribed=True)
    sh.add_response("describe_hub", hub(), {})
    sh.add_response("get_enabled_standards", {"StandardsSubscriptions": [subscription(FSBP), subscription(CIS)]}, {})
    arn = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:finding-aggregator/123"
    sh.add_response(
        "list_finding_aggregators", {"FindingAggregators": [{"FindingAggregatorArn": arn}] if existing else []}, {}
    )
    wanted = {"RegionLinkingMode": "SPECIFIED_REGIONS", "Regions": ["eu-west-1", "us-east-1"]}
    if existing:
        sh.add_response("update_finding_aggregator", {}, {"FindingAggregatorArn": arn, **wanted})
    else:
        sh.add_response("create_finding_aggregator", {}, wanted)
    outcome = securityhub.handle(make_request("Create", settings(disabled=(), aggregator=wanted)), sh.client)
    assert ("finding aggregator updated" if existing else "finding aggregator created") in outcome.data["Summary"]


def test_delete_leaves_the_hub_alone(stubbed):
    sh = stubbed("securityhub")  # nothing stubbed: any call would fail the test
    assert securityhub.handle(make_request("Delete", settings(), physical=HUB), sh.client).physical_resource_id == HUB
