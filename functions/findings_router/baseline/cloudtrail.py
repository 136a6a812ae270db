"""CloudTrail `adopt`: a trail that covers the account exists already (Control Tower's, the organization's, an older
one of the account); check that it does, change nothing.

* Create / Update: DescribeTrails (shadow trails included: an organization trail shows in member accounts as one),
  then GetTrailStatus of each multi-Region trail; none logging is an error (use `manage`, or fix that trail).
* Delete: nothing.

Settings (JSON): {} (nothing to set).
"""

from __future__ import annotations

from typing import Any

from findings_router.baseline.resource import BOTO_CONFIG, BaselineError, Outcome, Request, aws_call, run

SERVICE = "CloudTrail"


def handle(request: Request, client: Any) -> Outcome:
    if request.request_type == "Delete":
        return Outcome(request.physical_resource_id or "none")
    trails = aws_call(SERVICE, "DescribeTrails", client.describe_trails, includeShadowTrails=True).get("trailList", [])
    multi_region = [t for t in trails if t.get("IsMultiRegionTrail")]
    stopped = []
    for trail in multi_region:
        arn = str(trail.get("TrailARN") or trail.get("Name"))
        status = aws_call(SERVICE, "GetTrailStatus", client.get_trail_status, Name=arn)
        if status.get("IsLogging"):
            kind = "organization trail" if trail.get("IsOrganizationTrail") else "trail"
            return Outcome(arn, {"Summary": f"CloudTrail adopted: {kind} {arn} logs every Region", "TrailArn": arn})
        stopped.append(arn)
    found = f" (multi-Region trails not logging: {', '.join(stopped)})" if stopped else ""
    raise BaselineError(
        SERVICE,
        "DescribeTrails",
        f"no multi-Region trail is logging in this account{found}: adopt only checks an existing trail. Set "
        "baseline.cloudtrail.mode to manage (the stack creates one), or start logging on the existing trail",
    )


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    client = boto3.client("cloudtrail", config=BOTO_CONFIG)
    return run(event, lambda request: handle(request, client))
