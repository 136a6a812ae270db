"""Before the stack creates a GuardDuty detector, a Security Hub hub or a Config recorder (`manage`), check that the
account has none: each exists at most once per account and Region, and CloudFormation's own errors for a second one
are cryptic ("Invalid request provided: AWS::GuardDuty::Detector", "Account is already subscribed to Security Hub",
MaxNumberOfConfigurationRecordersExceededException). The preflight fails first, naming what exists and what to set
(`adopt`). The managed resources depend on it, so nothing is created when it fails.

* Create: check every managed service. Update: check the services that became managed (the others exist because
  the stack created them). Delete: nothing.

Settings (JSON): {"Services": ["guardduty", "securityhub", "config"]} (the managed ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from findings_router.baseline.resource import BOTO_CONFIG, BaselineError, Outcome, Request, aws_call, error_code, run

PHYSICAL_ID = "baseline-preflight"
NOT_ENABLED_CODES = ("InvalidAccessException", "ResourceNotFoundException")


def _guardduty(client: Any) -> str | None:
    ids = aws_call("GuardDuty", "ListDetectors", client.list_detectors).get("DetectorIds", [])
    if ids:
        return (
            f"GuardDuty ListDetectors: detector {ids[0]} exists already (one per account and Region): set "
            "baseline.guardduty.mode to adopt"
        )
    return None


def _securityhub(client: Any) -> str | None:
    try:
        hub = aws_call("SecurityHub", "DescribeHub", client.describe_hub)
    except BaselineError as error:
        if error_code(error) in NOT_ENABLED_CODES:
            return None
        raise
    return (
        f"SecurityHub DescribeHub: {hub.get('HubArn', 'the hub')} is enabled already (the account is subscribed): "
        "set baseline.securityhub.mode to adopt"
    )


def _config(client: Any) -> str | None:
    recorders = aws_call("Config", "DescribeConfigurationRecorders", client.describe_configuration_recorders)
    customer = [r for r in recorders.get("ConfigurationRecorders", []) if not r.get("servicePrincipal")]
    if customer:
        return (
            f"Config DescribeConfigurationRecorders: recorder {customer[0].get('name')} exists already (one per "
            "account and Region): set baseline.config.mode to adopt"
        )
    channels = aws_call("Config", "DescribeDeliveryChannels", client.describe_delivery_channels)
    if channels.get("DeliveryChannels"):
        name = channels["DeliveryChannels"][0].get("name")
        return (
            f"Config DescribeDeliveryChannels: delivery channel {name} exists already without a recorder (one per "
            "account and Region): delete it, or set baseline.config.mode to adopt once a recorder exists"
        )
    return None


CHECKS: dict[str, Callable[[Any], str | None]] = {
    "guardduty": _guardduty,
    "securityhub": _securityhub,
    "config": _config,
}


def handle(request: Request, clients: Mapping[str, Any]) -> Outcome:
    services = [str(s) for s in request.settings.get("Services", [])]
    if request.request_type == "Delete":
        return Outcome(request.physical_resource_id or PHYSICAL_ID)
    if request.request_type == "Update":
        before = {str(s) for s in (request.old_settings or {}).get("Services", [])}
        services = [s for s in services if s not in before]
    found = [problem for service in services if (problem := CHECKS[service](clients[service])) is not None]
    if found:
        raise BaselineError("Preflight", "checks", "; ".join(found))
    checked = ", ".join(services) or "nothing new"
    return Outcome(PHYSICAL_ID, {"Summary": f"preflight: none exists yet of {checked}"})


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    clients = {
        "guardduty": boto3.client("guardduty", config=BOTO_CONFIG),
        "securityhub": boto3.client("securityhub", config=BOTO_CONFIG),
        "config": boto3.client("config", config=BOTO_CONFIG),
    }
    return run(event, lambda request: handle(request, clients))
