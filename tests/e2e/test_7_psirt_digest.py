"""The PSIRT digest as deployed: the scheduled function invoked as EventBridge invokes it (an event with its `time`),
reading Inspector (the project's stand-in: LocalStack has no Inspector) through boto3's per-service endpoint,
writing its CSV report to the stack's bucket in LocalStack S3, and, where the policy says (stg), one low-priority
JSM alert per digest, which the next digest closes.

The stand-in's log4shell estate is dated around `fakes.inspector.NOW`; the runs below are scheduled at times whose
24-hour period holds some of its findings in this run's Region (us-east-1)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from findings_router.service.psirt_digest import digest_key, report_key
from findings_router_local.fakes.inspector import LOG4SHELL, NOW
from tests.e2e.harness.session import Deployment

# prod's second account has log4shell (CVE-2021-44228 and CVE-2021-45046) first seen 5 days before NOW in us-east-1.
PROD_RUN = NOW - dt.timedelta(days=4, hours=12)
STG_RUN = NOW - dt.timedelta(days=4, hours=12)


def _invoke(deployment: Deployment, function: str, scheduled: dt.datetime) -> dict[str, Any]:
    event = {
        "version": "0",
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "time": scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {},
    }
    response = deployment.aws.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return dict(payload)


def _report(deployment: Deployment, bucket: str, key: str) -> list[str]:
    body = deployment.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return body.splitlines()


def test_prod_writes_one_line_per_cve_to_its_bucket_and_pages_nobody(deployment: Deployment) -> None:
    env = deployment.environments["prod"]
    pages_before = len(deployment.pagerduty.accepted)
    result = _invoke(deployment, env.names.psirt_digest_function, PROD_RUN)
    assert result["cves"] == 2 and result["notified"] is False, result
    lines = _report(deployment, env.outputs["PsirtReportBucket"], report_key("prod", PROD_RUN))
    assert lines[0].startswith("cve,severity,max_cvss")
    assert sorted(line.split(",")[0] for line in lines[1:]) == [LOG4SHELL, "CVE-2021-45046"]
    assert all(",111122224444," in line for line in lines[1:])  # the account with findings in us-east-1
    # Report only: production's on-call gets pages, not digests.
    assert len(deployment.pagerduty.accepted) == pages_before


def test_stg_sends_one_low_priority_jsm_alert_which_the_next_digest_closes(deployment: Deployment) -> None:
    env = deployment.environments["stg"]
    inspector = deployment.inspector
    assert inspector is not None
    # stg's own log4shell finding, in this run's Region, first seen in the period.
    (template,) = [f for f in inspector.findings if f["awsAccountId"] == "222233334444"][:1]
    finding = copy.deepcopy(template)
    finding["findingArn"] = finding["findingArn"].replace("eu-central-1", "us-east-1") + "-e2e"
    for resource in finding["resources"]:
        resource["region"] = "us-east-1"
        resource["id"] = resource["id"].replace("eu-central-1", "us-east-1")
    finding["firstObservedAt"] = STG_RUN - dt.timedelta(hours=3)
    inspector.findings = [*inspector.findings, finding]

    jsm = env.targets["secops-jsm"]
    function = env.names.psirt_digest_function
    first = _invoke(deployment, function, STG_RUN)
    assert first["cves"] == 1 and first["notified"] is True, first
    alias = digest_key("stg", STG_RUN)
    alert = jsm.alerts[alias]
    assert (alert.priority, alert.status) == ("P5", "open")
    assert LOG4SHELL in alert.message and LOG4SHELL in alert.description
    assert report_key("stg", STG_RUN) in alert.description  # where the full report is

    # The next day's digest (a quiet one): the previous alert is closed, nothing new is opened.
    second = _invoke(deployment, function, STG_RUN + dt.timedelta(hours=24))
    assert second["cves"] == 0 and second["notified"] is False, second
    assert jsm.alerts[alias].status == "closed"
    assert digest_key("stg", STG_RUN + dt.timedelta(hours=24)) not in jsm.alerts
