"""Amazon Inspector (inspector2) scanning: CloudFormation has no resource that enables it, so this custom resource
calls the API, in both modes.

* manage, Create: BatchGetAccountStatus first: a policy type already enabled (by someone else) is an error that
  says to adopt it, because a managed resource disables its types when the stack is deleted. Then Enable.
* manage, Update: Enable the policy's types; Disable those the previous settings had and the policy dropped.
* manage, Delete: Disable the types it enabled.
* adopt, Create / Update: Enable (idempotent: a type enabled already is fine). Never disables anything.
* adopt, Delete: nothing.

Enable and Disable answer per account: any `failedAccounts` entry (other than "already enabled" for Enable) fails
the resource with its error code and message.

Settings (JSON): {"Mode": "manage" | "adopt", "ResourceTypes": ["EC2", "ECR", "LAMBDA", "LAMBDA_CODE"]}.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from findings_router.baseline.resource import BOTO_CONFIG, BaselineError, Outcome, Request, aws_call, run

SERVICE = "Inspector2"
PHYSICAL_ID = "inspector2-scanning"
# Enable's resourceTypes -> BatchGetAccountStatus' resourceState keys.
STATE_KEYS = {"EC2": "ec2", "ECR": "ecr", "LAMBDA": "lambda", "LAMBDA_CODE": "lambdaCode"}
ON_STATES = ("ENABLED", "ENABLING")
# failedAccounts errors of Enable that mean "on already / on its way".
ENABLE_ACCEPTED = ("ALREADY_ENABLED", "ENABLE_IN_PROGRESS")


def _types(settings: Any) -> list[str]:
    return [str(t) for t in (settings or {}).get("ResourceTypes", [])]


def _check(call: str, answer: dict[str, Any], accepted: Iterable[str] = ()) -> None:
    failed = [f for f in answer.get("failedAccounts", []) if f.get("errorCode") not in set(accepted)]
    if failed:
        reasons = "; ".join(
            f"account {f.get('accountId')}: {f.get('errorCode')}: {f.get('errorMessage')}" for f in failed
        )
        raise BaselineError(SERVICE, call, reasons)


def _already_on(client: Any, types: list[str]) -> list[str]:
    answer = aws_call(SERVICE, "BatchGetAccountStatus", client.batch_get_account_status)
    _check("BatchGetAccountStatus", answer)
    accounts = answer.get("accounts", [])
    state = accounts[0].get("resourceState", {}) if accounts else {}
    return [t for t in types if (state.get(STATE_KEYS[t]) or {}).get("status") in ON_STATES]


def _enable(client: Any, types: list[str]) -> None:
    answer = aws_call(SERVICE, "Enable", client.enable, resourceTypes=types)
    _check("Enable", answer, ENABLE_ACCEPTED)


def _disable(client: Any, types: list[str]) -> None:
    answer = aws_call(SERVICE, "Disable", client.disable, resourceTypes=types)
    _check("Disable", answer)


def handle(request: Request, client: Any) -> Outcome:
    new_types = _types(request.settings)
    old_types = _types(request.old_settings)
    mode = str(request.settings.get("Mode", "adopt"))
    if request.request_type == "Delete":
        if mode == "manage" and not request.failed_create and new_types:
            _disable(client, new_types)
            return Outcome(PHYSICAL_ID, {"Summary": f"Inspector scanning disabled: {', '.join(new_types)}"})
        return Outcome(request.physical_resource_id or PHYSICAL_ID)
    if request.request_type == "Create" and mode == "manage":
        on = _already_on(client, new_types)
        if on:
            raise BaselineError(
                SERVICE,
                "BatchGetAccountStatus",
                f"{', '.join(on)} scanning is enabled already in this account and Region (by someone else): set "
                "baseline.inspector.mode to adopt (a managed resource would disable it when the stack is deleted)",
            )
    _enable(client, new_types)
    summary = f"Inspector scanning enabled: {', '.join(new_types)}"
    dropped = [t for t in old_types if t not in new_types]
    if dropped:
        if mode == "manage":
            _disable(client, dropped)
            summary += f"; disabled: {', '.join(dropped)}"
        else:
            summary += f"; left on (adopt never disables): {', '.join(dropped)}"
    return Outcome(PHYSICAL_ID, {"Summary": summary})


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    import boto3

    client = boto3.client("inspector2", config=BOTO_CONFIG)
    return run(event, lambda request: handle(request, client))
