"""Small builders for findings and events, so each test states only what it is about."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG_DIR = Path(__file__).parent.parent / "config"
NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def asff(
    *,
    id: str | None = None,
    product: str = "guardduty",
    severity: str = "HIGH",
    account: str = "111122223333",
    region: str = "eu-central-1",
    **fields: Any,
) -> dict[str, Any]:
    finding_id = id or f"arn:aws:guardduty:{region}:{account}:detector/d1/finding/{uuid.uuid4().hex}"
    finding: dict[str, Any] = {
        "SchemaVersion": "2018-10-08",
        "Id": finding_id,
        "ProductArn": f"arn:aws:securityhub:{region}::product/aws/{product}",
        "ProductName": {"guardduty": "GuardDuty", "inspector": "Inspector", "securityhub": "Security Hub"}.get(
            product, product
        ),
        "CompanyName": "AWS",
        "GeneratorId": "arn:aws:guardduty:generator",
        "AwsAccountId": account,
        "Region": region,
        "Types": ["TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce"],
        "CreatedAt": "2026-11-20T10:00:00.000Z",
        "UpdatedAt": "2026-11-21T10:00:00.000Z",
        "Severity": {"Label": severity},
        "Title": "SSH brute force attacks against i-0abc",
        "Description": "198.51.100.7 is performing SSH brute force attacks against i-0abc.",
        "Resources": [
            {
                "Type": "AwsEc2Instance",
                "Id": f"arn:aws:ec2:{region}:{account}:instance/i-0abc",
                "Region": region,
                "Tags": {"env": "prod"},
            }
        ],
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE",
    }
    for key, value in fields.items():
        if value is None:
            finding.pop(key, None)
        else:
            finding[key] = value
    return finding


def updated(raw: dict[str, Any], minutes: float = 1, **fields: Any) -> dict[str, Any]:
    """The provider's next version of an ASFF finding: `UpdatedAt` moved on by `minutes`, `fields` changed.

    Security Hub bumps UpdatedAt whenever the provider changes a finding (a new severity, archived, PASSED, failing
    again); the router ignores an active copy that is not newer than what it has seen."""
    at = dt.datetime.fromisoformat(raw["UpdatedAt"].replace("Z", "+00:00")) + dt.timedelta(minutes=minutes)
    return {**raw, "UpdatedAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), **fields}


def control(
    control_id: str = "S3.8",
    status: str = "FAILED",
    *,
    resource: str = "arn:aws:s3:::iot-telemetry-raw",
    standard: str | None = None,
    severity: str = "HIGH",
    **fields: Any,
) -> dict[str, Any]:
    if standard:
        fid = (
            f"arn:aws:securityhub:eu-central-1:111122223333:subscription/{standard}/{control_id}/finding/{uuid.uuid4()}"
        )
    else:
        fid = f"arn:aws:securityhub:eu-central-1:111122223333:security-control/{control_id}/finding/{uuid.uuid4()}"
    return asff(
        id=fields.pop("id", fid),
        product="securityhub",
        severity=severity,
        GeneratorId=f"security-control/{control_id}",
        Types=["Software and Configuration Checks/Industry and Regulatory Standards"],
        Title=f"{control_id} control failed",
        Compliance={"Status": status, "SecurityControlId": control_id},
        Resources=[{"Type": "AwsS3Bucket", "Id": resource, "Region": "eu-central-1"}],
        **fields,
    )


def event(
    *findings: dict[str, Any],
    detail_type: str = "Security Hub Findings - Imported",
    resources: list[str] | None = None,
    **detail: Any,
) -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.securityhub",
        "account": "111122223333",
        "time": "2026-11-21T10:00:00Z",
        "region": "eu-central-1",
        "resources": resources or [],
        "detail": {"findings": [copy.deepcopy(f) for f in findings], **detail},
    }


def custom_action_event(*findings: dict[str, Any], action_id: str = "PageOnCallProd", **detail: Any) -> dict:
    """A `Security Hub Findings - Custom Action` event of the action target `action_id` (prod's own by default)."""
    detail.setdefault("actionName", action_id)
    detail.setdefault("actionDescription", "Send the selected findings to on-call")
    return event(
        *findings,
        detail_type="Security Hub Findings - Custom Action",
        resources=[f"arn:aws:securityhub:eu-central-1:111122223333:action/custom/{action_id}"],
        **detail,
    )


# A CloudWatch alarm state change as the router's own alarms publish it to SNS (the message, decoded).
ALARM = {
    "AlarmName": "findings-router-prod-dlq-not-empty",
    "AlarmDescription": "Findings were dead-lettered: some may not have paged.",
    "AWSAccountId": "111122223333",
    "NewStateValue": "ALARM",
    "NewStateReason": "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0).",
    "StateChangeTime": "2026-11-21T12:00:00.000+0000",
    "Region": "EU (Frankfurt)",
    "AlarmArn": "arn:aws:cloudwatch:eu-central-1:111122223333:alarm:findings-router-prod-dlq-not-empty",
    "OldStateValue": "OK",
}


def sqs_event(*bodies: Any, receive_count: int = 1) -> dict[str, Any]:
    """An SQS batch as Lambda delivers it; each body is an EventBridge event (dict) or a raw string."""
    records = []
    for body in bodies:
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "rh",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1763719200000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1763719200000",
                },
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:111122223333:findings",
                "awsRegion": "eu-central-1",
            }
        )
    return {"Records": records}


class FakeLambdaContext:
    function_name = "findings-router-test"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:111122223333:function:findings-router-test"
    memory_limit_in_mb = 256
    aws_request_id = "req-1"
    log_group_name = "/aws/lambda/findings-router-test"
    log_stream_name = "stream"

    def __init__(self, remaining_ms: int = 120_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


CVE_TYPE = "Software and Configuration Checks/Vulnerabilities/CVE"


def inspector(
    cve: str = "CVE-2021-44228",
    *,
    image: str = "iot-gateway-api",
    digest: str | None = None,
    account: str = "111122223333",
    region: str = "eu-central-1",
    severity: str = "CRITICAL",
    updated: str = "2026-11-21T10:00:00.000Z",
    finding: str | None = None,
    cvss: float = 10.0,
    **vulnerability: Any,
) -> dict[str, Any]:
    """An Amazon Inspector package-vulnerability finding (ASFF) of `cve` on one ECR image of repository `image`.

    Inspector reports one finding per CVE x image; `finding` names it (default: derived from CVE, account, region,
    image and digest, so the same arguments give the same finding)."""
    digest = digest or uuid.uuid5(uuid.NAMESPACE_URL, f"{image}").hex * 2
    fid = finding or uuid.uuid5(uuid.NAMESPACE_URL, f"{cve}/{account}/{region}/{image}/{digest}").hex
    return asff(
        id=f"arn:aws:inspector2:{region}:{account}:finding/{fid}",
        product="inspector",
        severity=severity,
        account=account,
        region=region,
        GeneratorId="AWSInspector",
        Types=[CVE_TYPE],
        Title=f"{cve} - org.apache.logging.log4j:log4j-core",
        UpdatedAt=updated,
        Resources=[
            {
                "Type": "AwsEcrContainerImage",
                "Id": f"arn:aws:ecr:{region}:{account}:repository/{image}/sha256:{digest}",
                "Region": region,
            }
        ],
        Vulnerabilities=[
            {
                "Id": cve,
                "Cvss": [{"BaseScore": cvss, "Version": "3.1"}],
                "ExploitAvailable": "YES",
                "FixAvailable": "YES",
                "EpssScore": 0.94358,
                **vulnerability,
            }
        ],
    )
