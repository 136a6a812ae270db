"""Inspector: manage enables (refusing types someone else enabled), disables what it dropped and on Delete; adopt
enables and never disables; a failed account is a failure with Inspector's own code and message."""

from __future__ import annotations

import pytest

from findings_router.baseline import inspector
from findings_router.baseline.resource import BaselineError
from tests.unit.baseline.helpers import ACCOUNT, make_request

PROD = ["EC2", "ECR", "LAMBDA", "LAMBDA_CODE"]


def _state(status: str) -> dict:
    # botocore's model makes errorCode and errorMessage required in every State.
    return {"status": status, "errorCode": "RESOURCE_NOT_FOUND", "errorMessage": "-"}


def account_status(**statuses: str) -> dict:
    keys = ("ec2", "ecr", "lambda", "lambdaCode")
    resources = {key: _state(statuses.get(key, "DISABLED")) for key in keys}
    return {"accounts": [{"accountId": ACCOUNT, "state": _state("ENABLED"), "resourceState": resources}]}


def enabled(types: list[str]) -> dict:
    return {
        "accounts": [
            {"accountId": ACCOUNT, "status": "ENABLING", "resourceStatus": {"ec2": "ENABLING", "ecr": "ENABLING"}}
        ]
    }


def test_manage_create_checks_nothing_is_on_then_enables(stubbed):
    ins = stubbed("inspector2")
    ins.add_response("batch_get_account_status", account_status(), {})
    ins.add_response("enable", enabled(PROD), {"resourceTypes": PROD})
    outcome = inspector.handle(make_request("Create", {"Mode": "manage", "ResourceTypes": PROD}), ins.client)
    assert outcome.physical_resource_id == inspector.PHYSICAL_ID
    assert outcome.data["Summary"] == "Inspector scanning enabled: EC2, ECR, LAMBDA, LAMBDA_CODE"


def test_manage_create_refuses_what_someone_else_enabled_and_says_to_adopt(stubbed):
    ins = stubbed("inspector2")
    ins.add_response("batch_get_account_status", account_status(ecr="ENABLED"), {})
    with pytest.raises(
        BaselineError, match=r"^Inspector2 BatchGetAccountStatus: ECR scanning is enabled already.*adopt"
    ):
        inspector.handle(make_request("Create", {"Mode": "manage", "ResourceTypes": PROD}), ins.client)


def test_failed_accounts_fail_the_resource_with_inspectors_reason(stubbed):
    ins = stubbed("inspector2")
    ins.add_response(
        "enable",
        {
            "accounts": [],
            "failedAccounts": [
                {
                    "accountId": ACCOUNT,
                    "errorCode": "ACCESS_DENIED",
                    "errorMessage": "Not authorized to enable LAMBDA_CODE",
                }
            ],
        },
        {"resourceTypes": ["ECR"]},
    )
    with pytest.raises(BaselineError) as raised:
        inspector.handle(make_request("Create", {"Mode": "adopt", "ResourceTypes": ["ECR"]}), ins.client)
    assert str(raised.value) == (
        f"Inspector2 Enable: account {ACCOUNT}: ACCESS_DENIED: Not authorized to enable LAMBDA_CODE"
    )


def test_adopt_accepts_what_is_enabled_already(stubbed):
    ins = stubbed("inspector2")
    ins.add_response(
        "enable",
        {
            "accounts": [],
            "failedAccounts": [{"accountId": ACCOUNT, "errorCode": "ALREADY_ENABLED", "errorMessage": "on"}],
        },
        {"resourceTypes": ["ECR"]},
    )
    outcome = inspector.handle(make_request("Create", {"Mode": "adopt", "ResourceTypes": ["ECR"]}), ins.client)
    assert outcome.data["Summary"] == "Inspector scanning enabled: ECR"


def test_manage_update_disables_the_types_the_policy_dropped(stubbed):
    ins = stubbed("inspector2")
    ins.add_response("enable", enabled(["ECR"]), {"resourceTypes": ["ECR"]})
    ins.add_response("disable", {"accounts": []}, {"resourceTypes": ["EC2", "LAMBDA", "LAMBDA_CODE"]})
    request = make_request(
        "Update",
        {"Mode": "manage", "ResourceTypes": ["ECR"]},
        old={"Mode": "manage", "ResourceTypes": PROD},
        physical=inspector.PHYSICAL_ID,
    )
    outcome = inspector.handle(request, ins.client)
    assert outcome.physical_resource_id == inspector.PHYSICAL_ID  # stable: no replacement, no Delete of the old one
    assert outcome.data["Summary"].endswith("; disabled: EC2, LAMBDA, LAMBDA_CODE")


def test_adopt_update_never_disables(stubbed):
    ins = stubbed("inspector2")
    ins.add_response("enable", enabled(["ECR"]), {"resourceTypes": ["ECR"]})
    request = make_request(
        "Update", {"Mode": "adopt", "ResourceTypes": ["ECR"]}, old={"Mode": "adopt", "ResourceTypes": PROD}
    )
    assert (
        "left on (adopt never disables): EC2, LAMBDA, LAMBDA_CODE"
        in inspector.handle(request, ins.client).data["Summary"]
    )


def test_manage_delete_disables_its_types(stubbed):
    ins = stubbed("inspector2")
    ins.add_response("disable", {"accounts": []}, {"resourceTypes": ["ECR"]})
    request = make_request("Delete", {"Mode": "manage", "ResourceTypes": ["ECR"]}, physical=inspector.PHYSICAL_ID)
    assert inspector.handle(request, ins.client).data["Summary"] == "Inspector scanning disabled: ECR"


def test_a_failed_disable_fails_the_delete(stubbed):
    ins = stubbed("inspector2")
    ins.add_response(
        "disable",
        {
            "accounts": [],
            "failedAccounts": [
                {"accountId": ACCOUNT, "errorCode": "DISASSOCIATE_ALL_MEMBERS", "errorMessage": "members"}
            ],
        },
        {"resourceTypes": ["ECR"]},
    )
    with pytest.raises(BaselineError, match="Inspector2 Disable: account 111122223333: DISASSOCIATE_ALL_MEMBERS"):
        inspector.handle(make_request("Delete", {"Mode": "manage", "ResourceTypes": ["ECR"]}), ins.client)


@pytest.mark.parametrize(
    ("mode", "physical"), [("adopt", inspector.PHYSICAL_ID), ("manage", "failed-create-r")], ids=["adopted", "rollback"]
)
def test_delete_of_an_adopted_or_never_created_resource_makes_no_call(stubbed, mode, physical):
    ins = stubbed("inspector2")
    inspector.handle(make_request("Delete", {"Mode": mode, "ResourceTypes": PROD}, physical=physical), ins.client)
