"""The canary function: one BatchImportFindings of this environment's synthetic finding, as botocore's service model
says, a newer UpdatedAt each run, and a loud failure when Security Hub refuses it."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from findings_router.adapters.securityhub import ImportFailedError
from findings_router.bootstrap import CanaryRuntime
from findings_router.entrypoints import run_canary
from findings_router.settings.load import load_policy
from tests.builders import CONFIG_DIR, FakeLambdaContext


@pytest.fixture
def securityhub():
    client = boto3.client("securityhub", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        run_canary.install(CanaryRuntime(load_policy(CONFIG_DIR / "prod.yaml"), client))
        yield stubber
    run_canary.install(None)


def test_each_run_imports_the_fixed_id_with_a_newer_updated_at(securityhub):
    imported: list[dict] = []
    for _ in range(2):
        securityhub.add_response(
            "batch_import_findings", {"FailedCount": 0, "SuccessCount": 1, "FailedFindings": []}, {"Findings": ANY}
        )
    securityhub.client.meta.events.register(
        "provide-client-params.securityhub.BatchImportFindings",
        lambda params, **_: imported.extend(params["Findings"]),
    )
    first = run_canary.lambda_handler({}, FakeLambdaContext())
    second = run_canary.lambda_handler({}, FakeLambdaContext())
    securityhub.assert_no_pending_responses()
    assert [f["Id"] for f in imported] == ["findings-router-canary/prod"] * 2
    # The function's own account and region (from its ARN): a private product of the importing account.
    assert imported[0]["ProductArn"] == "arn:aws:securityhub:eu-central-1:111122223333:product/111122223333/default"
    assert imported[0]["AwsAccountId"] == "111122223333"
    # Security Hub ignores an import whose UpdatedAt is not newer: each run must be newer than the last.
    assert imported[1]["UpdatedAt"] > imported[0]["UpdatedAt"]
    assert second["run_id"] > first["run_id"]


def test_a_refused_import_fails_the_run_with_security_hubs_reason(securityhub):
    securityhub.add_response(
        "batch_import_findings",
        {
            "FailedCount": 1,
            "SuccessCount": 0,
            "FailedFindings": [
                {"Id": "findings-router-canary/prod", "ErrorCode": "InvalidAccess", "ErrorMessage": "not subscribed"}
            ],
        },
        {"Findings": ANY},
    )
    with pytest.raises(ImportFailedError, match="InvalidAccess not subscribed"):
        run_canary.lambda_handler({}, FakeLambdaContext())
