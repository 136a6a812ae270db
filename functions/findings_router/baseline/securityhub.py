"""Security Hub CSPM `adopt`: the hub may exist already (an organization's configuration, Control Tower, LZA); bring it
to the policy without failing on "already subscribed", and never disable it.

* Create / Update:
  1. EnableSecurityHub(EnableDefaultStandards=False, ControlFindingGenerator=SECURITY_CONTROL); ResourceConflictException
     ("Account is already subscribed to Security Hub") means it is on already: fine.
  2. DescribeHub; UpdateSecurityHubConfiguration with what differs (AutoEnableControls, ControlFindingGenerator).
  3. GetEnabledStandards; BatchEnableStandards for the policy's standards that are not on. Standards on that the
     policy does not list are left on (someone else enabled them) and named in the summary.
  4. Wait until the policy's standards are READY for control updates, then UpdateStandardsControl: DISABLED (with
     the reason) for each disabled control; ENABLED again for a control this resource disabled before and the
     policy no longer lists.
  5. Finding aggregator (when the policy has one): UpdateFindingAggregator of the existing one (one per account),
     else CreateFindingAggregator. One the policy does not ask for is left alone.
* Delete: nothing (the hub, its standards and controls stay as they are).

Settings (JSON): {"ControlFindingGenerator", "AutoEnableControls", "Standards": [{"Key", "StandardsArn"}],
"DisabledControls": [{"StandardsArn", "StandardsControlArn", "Reason"}], "FindingAggregator": null |
{"RegionLinkingMode", "Regions"}}.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from findings_router.baseline.resource import (
    BOTO_CONFIG,
    RESPONSE_MARGIN_SECONDS,
    BaselineError,
    Outcome,
    Request,
    aws_call,
    error_code,
    run,
    wait_until,
)

SERVICE = "SecurityHub"
READY = "READY"
READY_FOR_UPDATES = "READY_FOR_UPDATES"
FAILED_STATES = ("FAILED", "INCOMPLETE", "DELETING")


def _enable(client: Any, generator: str) -> bool:
    """Enable the hub; False if it was on already."""
    try:
        aws_call(
            SERVICE,
            "EnableSecurityHub",
            client.enable_security_hub,
            EnableDefaultStandards=False,
            ControlFindingGenerator=generator,
        )
    except BaselineError as error:
        if error_code(error) == "ResourceConflictException":
            return False
        raise
    return True


def _configure(client: Any, settings: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The hub's ARN, and what UpdateSecurityHubConfiguration changed."""
    hub = aws_call(SERVICE, "DescribeHub", client.describe_hub)
    update: dict[str, Any] = {}
    if hub.get("AutoEnableControls") != settings["AutoEnableControls"]:
        update["AutoEnableControls"] = bool(settings["AutoEnableControls"])
    if hub.get("ControlFindingGenerator") != settings["ControlFindingGenerator"]:
        update["ControlFindingGenerator"] = settings["ControlFindingGenerator"]
    if update:
        try:
            aws_call(SERVICE, "UpdateSecurityHubConfiguration", client.update_security_hub_configuration, **update)
        except BaselineError as error:
            if "ControlFindingGenerator" in update:
                raise BaselineError(
                    SERVICE,
                    "UpdateSecurityHubConfiguration",
                    f"{error.reason} (a member account takes consolidated control findings from its administrator "
                    "account: turn them on there)",
                ) from error
            raise
    return str(hub["HubArn"]), sorted(update)


def _enabled_standards(client: Any) -> dict[str, Mapping[str, Any]]:
    """StandardsArn -> its subscription (StandardsStatus, StandardsControlsUpdatable, …)."""
    found: dict[str, Mapping[str, Any]] = {}
    token: str | None = None
    while True:
        page = aws_call(
            SERVICE, "GetEnabledStandards", client.get_enabled_standards, **({"NextToken": token} if token else {})
        )
        for subscription in page.get("StandardsSubscriptions", []):
            found[subscription["StandardsArn"]] = subscription
        token = page.get("NextToken")
        if not token:
            return found


def _not_ready(client: Any, wanted: list[str]) -> str | None:
    """None when every wanted standard is ready for control updates; else what is not (a failed one raises)."""
    subscriptions = _enabled_standards(client)
    pending = []
    for arn in wanted:
        subscription = subscriptions.get(arn)
        if subscription is None:
            pending.append(f"{arn} (not enabled yet)")
            continue
        status = subscription.get("StandardsStatus")
        if status in FAILED_STATES:
            reason = (subscription.get("StandardsStatusReason") or {}).get("StatusReasonCode", "no reason given")
            raise BaselineError(SERVICE, "GetEnabledStandards", f"standard {arn} is {status}: {reason}")
        updatable = subscription.get("StandardsControlsUpdatable", READY_FOR_UPDATES)
        if status != READY or updatable != READY_FOR_UPDATES:
            pending.append(f"{arn} ({status}, {updatable})")
    return "; ".join(pending) or None


def _set_control(client: Any, arn: str, *, disabled: bool, reason: str | None = None) -> None:
    kwargs: dict[str, Any] = {"StandardsControlArn": arn, "ControlStatus": "DISABLED" if disabled else "ENABLED"}
    if disabled:
        kwargs["DisabledReason"] = reason
    try:
        aws_call(SERVICE, "UpdateStandardsControl", client.update_standards_control, **kwargs)
    except BaselineError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise BaselineError(
                SERVICE,
                "UpdateStandardsControl",
                f"{arn}: no such control in that standard ({error.reason}); check the control id: CIS benchmarks "
                "number their controls themselves (e.g. 1.14), the other standards use Security Hub's ids "
                "(e.g. Config.1)",
            ) from error
        raise


def _aggregator(client: Any, wanted: Mapping[str, Any]) -> str:
    page = aws_call(SERVICE, "ListFindingAggregators", client.list_finding_aggregators)
    existing = [a["FindingAggregatorArn"] for a in page.get("FindingAggregators", [])]
    kwargs: dict[str, Any] = {"RegionLinkingMode": wanted["RegionLinkingMode"]}
    if wanted.get("Regions"):
        kwargs["Regions"] = list(wanted["Regions"])
    if existing:
        aws_call(
            SERVICE,
            "UpdateFindingAggregator",
            client.update_finding_aggregator,
            FindingAggregatorArn=existing[0],
            **kwargs,
        )
        return f"finding aggregator updated ({wanted['RegionLinkingMode']})"
    aws_call(SERVICE, "CreateFindingAggregator", client.create_finding_aggregator, **kwargs)
    return f"finding aggregator created ({wanted['RegionLinkingMode']})"


def _enable_standards(client: Any, wanted: list[str]) -> tuple[list[str], list[str]]:
    """BatchEnableStandards for the wanted standards that are off: (enabled now, on already but not wanted)."""
    subscriptions = _enabled_standards(client)
    missing = [arn for arn in wanted if arn not in subscriptions]
    if missing:
        aws_call(
            SERVICE,
            "BatchEnableStandards",
            client.batch_enable_standards,
            StandardsSubscriptionRequests=[{"StandardsArn": arn} for arn in missing],
        )
    return missing, sorted(set(subscriptions) - set(wanted))


def _apply_controls(
    client: Any, request: Request, wanted: list[str], wait: Callable[[Callable[[], str | None]], str | None]
) -> tuple[int, int]:
    """Disable the policy's controls, re-enable those it disabled before and dropped: (disabled, re-enabled)."""
    disabled = {str(c["StandardsControlArn"]): c for c in request.settings.get("DisabledControls", [])}
    previously = {str(c["StandardsControlArn"]) for c in (request.old_settings or {}).get("DisabledControls", [])}
    to_enable = sorted(previously - set(disabled))
    if not (disabled or to_enable):
        return 0, 0
    # Controls of a standard enabled a moment ago cannot be updated until it is READY (UpdateStandardsControl
    # answers ResourceNotFoundException while the subscription is NOT_READY_FOR_UPDATES).
    touched = sorted({str(c["StandardsArn"]) for c in disabled.values()} & set(wanted)) or wanted
    pending = wait(lambda: _not_ready(client, touched))
    if pending is not None:
        raise BaselineError(
            SERVICE,
            "GetEnabledStandards",
            f"standards not ready for control updates in time: {pending} (deploy again in a few minutes)",
        )
    for arn, control in sorted(disabled.items()):
        _set_control(client, arn, disabled=True, reason=str(control["Reason"]))
    for arn in to_enable:
        _set_control(client, arn, disabled=False)
    return len(disabled), len(to_enable)


def handle(
    request: Request,
    client: Any,
    *,
    wait_seconds: float = 600,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    if request.request_type == "Delete":
        return Outcome(request.physical_resource_id or "none")
    settings = request.settings
    enabled_now = _enable(client, str(settings["ControlFindingGenerator"]))
    hub_arn, changed = _configure(client, settings)
    wanted = [str(s["StandardsArn"]) for s in settings.get("Standards", [])]
    missing, others = _enable_standards(client, wanted)
    disabled, reenabled = _apply_controls(
        client,
        request,
        wanted,
        lambda check: wait_until(check, timeout_seconds=wait_seconds, sleep=sleep, clock=clock),
    )
    notes = ["Security Hub enabled" if enabled_now else "Security Hub was on already (adopted)"]
    if changed:
        notes.append(f"changed {', '.join(changed)}")
    if missing:
        notes.append(f"enabled {len(missing)} standard(s)")
    if others:
        notes.append(f"also on, left as they are: {', '.join(others)}")
    notes.append(f"{disabled} control(s) disabled" + (f", {reenabled} re-enabled" if reenabled else ""))
    if settings.get("FindingAggregator"):
        notes.append(_aggregator(client, settings["FindingAggregator"]))
    return Outcome(hub_arn, {"Summary": "; ".join(notes), "HubArn": hub_arn})


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    client = boto3.client("securityhub", config=BOTO_CONFIG)
    budget = context.get_remaining_time_in_millis() / 1000 - RESPONSE_MARGIN_SECONDS
    return run(event, lambda request: handle(request, client, wait_seconds=max(budget - 60, 30)))
