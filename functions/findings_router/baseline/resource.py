"""CloudFormation's custom resource protocol for the baseline handlers: the request, the response PUT to the pre-signed
`ResponseURL`, and the rules every handler keeps.

* A handler never raises out of the Lambda function: any error becomes a FAILED response whose reason names the
  service, the API call and AWS's answer (it is the text the CloudFormation event shows), e.g.
  ``GuardDuty ListDetectors: no detector in this account and region: …``.
* The physical resource id is stable (a detector id, a recorder name, a hub ARN), so an Update never makes
  CloudFormation delete the previous resource.
* A Create that failed answers a physical id starting with FAILED_CREATE_PREFIX: the Delete CloudFormation sends
  while rolling back is then a no-op (nothing was adopted or enabled that it could undo).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger("findings_router.baseline")
LOGGER.setLevel(logging.INFO)

RequestType = Literal["Create", "Update", "Delete"]
# Each custom resource carries its settings as one JSON string property: CloudFormation turns every scalar property
# of a custom resource into a string (false would arrive as "false"), JSON keeps the types.
SETTINGS_PROPERTY = "Settings"
FAILED_CREATE_PREFIX = "failed-create-"
# The response object must stay under 4096 bytes: the reason is cut well below that.
MAX_REASON_CHARS = 2000
# Seconds kept back from the Lambda timeout to send the response after a wait gives up.
RESPONSE_MARGIN_SECONDS = 30
# SRA's settings for these APIs (aws-security-reference-architecture-examples): throttling is common in a new account.
BOTO_CONFIG = Config(retries={"max_attempts": 10, "mode": "standard"})


class BaselineError(Exception):
    """A failure CloudFormation shows as the resource's status reason: `<service> <call>: <reason>`."""

    def __init__(self, service: str, call: str, reason: str) -> None:
        self.service = service
        self.call = call
        self.reason = reason
        super().__init__(f"{service} {call}: {reason}")


@dataclass(frozen=True)
class Request:
    request_type: RequestType
    settings: Mapping[str, Any]
    old_settings: Mapping[str, Any] | None = None
    physical_resource_id: str | None = None
    logical_resource_id: str = "Resource"
    request_id: str = "request"
    stack_id: str = "stack"

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        def settings(properties: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
            if properties is None:
                return None
            value = json.loads(properties.get(SETTINGS_PROPERTY) or "{}")
            if not isinstance(value, dict):
                raise ValueError(f"{SETTINGS_PROPERTY} must be a JSON object")
            return value

        return cls(
            request_type=event["RequestType"],
            settings=settings(event.get("ResourceProperties")) or {},
            old_settings=settings(event.get("OldResourceProperties")),
            physical_resource_id=event.get("PhysicalResourceId"),
            logical_resource_id=event.get("LogicalResourceId", "Resource"),
            request_id=event.get("RequestId", "request"),
            stack_id=event.get("StackId", "stack"),
        )

    @property
    def failed_create(self) -> bool:
        """The Delete of a resource whose Create failed (rollback): nothing to undo."""
        return (self.physical_resource_id or "").startswith(FAILED_CREATE_PREFIX)


@dataclass(frozen=True)
class Outcome:
    physical_resource_id: str
    # Attributes (Fn::GetAtt); `Summary` is also a stack output: what the resource found and did.
    data: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Outcome]
Sender = Callable[[str, bytes], None]


def aws_call(service: str, call: str, function: Callable[..., Any], **kwargs: Any) -> Any:
    """`function(**kwargs)` (a boto3 client method); an AWS error becomes a BaselineError naming the call."""
    try:
        return function(**kwargs)
    except ClientError as error:
        details = error.response.get("Error", {})
        raise BaselineError(
            service, call, f"{details.get('Code', 'Error')}: {details.get('Message', error)}"
        ) from error
    except BotoCoreError as error:
        raise BaselineError(service, call, str(error)) from error


def error_code(error: BaseException) -> str | None:
    """The AWS error code behind a BaselineError or ClientError, else None."""
    cause = error.__cause__ if isinstance(error, BaselineError) else error
    if isinstance(cause, ClientError):
        code = cause.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def wait_until(
    check: Callable[[], str | None],
    *,
    timeout_seconds: float,
    interval_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str | None:
    """Call `check` until it returns None (done) or `timeout_seconds` pass; returns the last answer (what is still
    not done), None when done."""
    deadline = clock() + timeout_seconds
    while True:
        pending = check()
        if pending is None or clock() + interval_seconds > deadline:
            return pending
        sleep(interval_seconds)


def _put(url: str, body: bytes) -> None:
    request = urllib.request.Request(  # noqa: S310 (CloudFormation's pre-signed https URL)
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


def response_body(event: Mapping[str, Any], status: str, outcome: Outcome | None, reason: str) -> dict[str, Any]:
    physical = outcome.physical_resource_id if outcome else None
    if physical is None:
        physical = event.get("PhysicalResourceId") or f"{FAILED_CREATE_PREFIX}{event.get('RequestId', 'request')}"
    return {
        "Status": status,
        "Reason": reason[:MAX_REASON_CHARS],
        "PhysicalResourceId": physical,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "NoEcho": False,
        "Data": dict(outcome.data) if outcome else {},
    }


def run(event: Mapping[str, Any], handler: Handler, *, send: Sender = _put) -> dict[str, Any]:
    """Handle one CloudFormation request and send its response; returns the response (for logs and tests)."""
    outcome: Outcome | None = None
    try:
        request = Request.from_event(event)
        outcome = handler(request)
        body = response_body(event, "SUCCESS", outcome, (outcome.data.get("Summary") or "done"))
    except BaselineError as error:
        LOGGER.error("failed: %s", error)
        body = response_body(event, "FAILED", None, str(error))
    except Exception as error:  # any other bug still answers CloudFormation, which would otherwise wait an hour
        LOGGER.exception("unexpected error")
        body = response_body(event, "FAILED", None, f"unexpected {type(error).__name__}: {error}")
    LOGGER.info("response: %s", json.dumps(body))
    url = event.get("ResponseURL")
    if url:
        try:
            send(str(url), json.dumps(body).encode())
        except Exception:  # nothing else can be done: the log says what would have been answered
            LOGGER.exception("could not send the response to CloudFormation")
    return body
