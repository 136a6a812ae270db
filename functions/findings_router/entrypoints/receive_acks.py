"""Ack receiver Lambda: PagerDuty incident events → dedup state → Security Hub notes and workflow.

Entry points, chosen per environment (`acknowledgements.mode`; `lambda_handler` when the partner bus and JSM's
webhooks share the function):
* `function_url_handler`, behind a Lambda Function URL, for PagerDuty Webhooks v3 (POST /webhooks/pagerduty):
  verifies `X-PagerDuty-Signature` before anything else (401 and no side effect when it does not match), answers
  413 for a body over 256 KB, 400 for a body that is not an incident webhook, 200 for a signed event that is not
  about an incident (the test ping), for incidents that are not ours (logged) and for stale events (older than
  `domain.acks.MAX_EVENT_AGE`: a replayed capture; no side effect). Deliveries are deduplicated on the signed body's event
  id: PagerDuty delivers at least once.
* `eventbridge_handler`, for the same events delivered to an EventBridge partner event bus (no public endpoint;
  EventBridge and IAM authenticate the source, so there is no signature).

Answering in time (PagerDuty waits 5 s, then retries; tests/fixtures/pagerduty/FACTS.md §3): each Function URL
request gets a `Deadline` of `ANSWER_WITHIN_SECONDS` from when the Function URL received it (init included), capped by
the Lambda's remaining time; the AWS clients have short timeouts and few attempts. Work that does not fit, or fails
(Security Hub throttling, 5xx, AccessDenied; PagerDuty unavailable), stays in the state item's outbox and the answer
is 503: PagerDuty delivers the webhook again (it retries 5xx; any other 4xx would drop it and count towards disabling
the subscription). A failed run raises inside the idempotency layer, which then deletes its record (Powertools:
"unhandled exception deletes the record"), so only a fully carried-out event is remembered as done. On the
EventBridge path the invocation fails instead, and Lambda's asynchronous retries deliver the event again.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import time
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.bootstrap import (
    ACK_DEDUP_WINDOW_SECONDS,
    AckRuntime,
    RuntimeSlot,
    build_ack_receiver,
    build_during_init,
)
from findings_router.domain.acks import (
    MAX_BODY_BYTES,
    MAX_EVENT_AGE,
    SIGNATURE_HEADER,
    WEBHOOK_ID_HEADER,
    IncidentEvent,
    WebhookError,
    parse_eventbridge_v2,
    parse_jsm_action,
    parse_webhook,
    verify_signature,
)
from findings_router.domain.model import FindingError
from findings_router.domain.normalize import loads
from findings_router.entrypoints.observability import build_logger, build_metrics, publish_canary
from findings_router.service.acknowledge import Deadline, RetryLater

logger = build_logger("findings-router-ack")


metrics = build_metrics()


app = LambdaFunctionUrlResolver()


WEBHOOK_PATH = "/webhooks/pagerduty"


# A replayed body must meet the staleness check before its idempotency record expires.
assert MAX_EVENT_AGE.total_seconds() < ACK_DEDUP_WINDOW_SECONDS


# PagerDuty waits 5 s for the answer (FACTS.md §3); keep 1 s for the Function URL and the idempotency record.
ANSWER_WITHIN_SECONDS = 4.0


LAMBDA_MARGIN_SECONDS = 1.0  # before the Lambda's own timeout (the EventBridge path has no 5 s limit)


class RejectionLog:
    """At most `per_minute` log lines a minute for rejected signatures per container: a flood of forged requests at
    the public URL must not turn into a flood of log ingestion. Every rejection is still counted (AcksRejected, which
    the rejected-signatures alarm watches); the next line logged says how many were not."""

    def __init__(self, per_minute: int = 10) -> None:
        self.per_minute = per_minute
        self._window_start = float("-inf")
        self._logged = 0
        self._suppressed = 0

    def admit(self, now: float) -> int | None:
        """None: do not log this one; else log it, with the number not logged since the last line."""
        if now - self._window_start >= 60:
            self._window_start, self._logged = now, 0
        if self._logged >= self.per_minute:
            self._suppressed += 1
            return None
        self._logged += 1
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed


rejection_log = RejectionLog()


# One per execution environment. Tests and the demo `install` theirs, built with bootstrap.build_ack_receiver.
runtime_slot: RuntimeSlot[AckRuntime] = RuntimeSlot(build_ack_receiver, metrics)
get_runtime = runtime_slot.get
install = runtime_slot.install


def reset_runtime() -> None:
    install(None)


def _metric(outcome: str) -> None:
    metrics.add_metric(name=f"Acks{outcome.title().replace('-', '')}", unit=MetricUnit.Count, value=1)


def _handle(event: IncidentEvent, runtime: AckRuntime, via: str, deadline: Deadline) -> dict[str, Any]:
    """Process once per event id. Raises `RetryLater` (logged) when the event must be delivered again."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    about = {
        "via": via,
        "webhook_id": event.webhook_id,
        "event_type": event.event_type,
        "incident_id": event.incident_id,
        "incident_key": event.incident_key,
        "agent": event.agent,
        "agent_type": event.agent_type,
    }
    try:
        result: dict[str, Any] = runtime.process_once(event=dataclasses.asdict(event), deadline=deadline)
    except RetryLater as exc:
        _metric("retry")
        done = dataclasses.asdict(exc.result) if exc.result is not None else {}
        logger.warning(
            "incident event to be delivered again",
            extra={**about, "reason": str(exc), **{k: v for k, v in done.items() if k not in ("note", "reason")}},
        )
        raise
    except IdempotencyAlreadyInProgressError:
        # A redelivery while the first delivery still runs: it must come again, not be dropped.
        _metric("retry")
        logger.warning("incident event already being processed", extra=about)
        raise RetryLater("the same event is being processed") from None
    _metric(str(result["outcome"]))
    hops = result.get("canary_hops")
    if hops and not result.get("duplicate_delivery"):
        publish_canary(metrics, hops, reached=("acknowledged",), completed=True)
    logger.info("incident event processed", extra={**about, **{k: v for k, v in result.items() if k != "note"}})
    return result


def function_url_deadline(request: dict[str, Any], context: Any, clock: Any = time.time) -> Deadline:
    """`ANSWER_WITHIN_SECONDS` from when the Function URL received the request (`requestContext.timeEpoch`, so a cold
    start's init counts), and never past the Lambda's own remaining time."""
    budget = ANSWER_WITHIN_SECONDS
    received = (request.get("requestContext") or {}).get("timeEpoch")
    if isinstance(received, int | float) and not isinstance(received, bool):
        budget -= min(max(clock() - received / 1000, 0.0), budget)  # clamped: clocks of two hosts
    return Deadline(max(0.0, min(budget, _remaining_seconds(context) - LAMBDA_MARGIN_SECONDS)))


def _remaining_seconds(context: Any) -> float:
    try:
        return float(context.get_remaining_time_in_millis()) / 1000
    except (AttributeError, TypeError, ValueError):
        return float("inf")


def _raw_body(event: dict[str, Any]) -> bytes:
    """The exact bytes PagerDuty signed (Function URLs base64-encode bodies that are not text)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except ValueError:
            return b""
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)


@app.post(WEBHOOK_PATH)
def pagerduty_webhook() -> Response[str]:
    runtime = get_runtime()
    request = app.current_event
    body_bytes = _raw_body(request.raw_event)
    if len(body_bytes) > MAX_BODY_BYTES:
        metrics.add_metric(name="AcksMalformed", unit=MetricUnit.Count, value=1)
        logger.warning("webhook rejected: body too large", extra={"bytes": len(body_bytes)})
        return Response(413, "application/json", json.dumps({"error": "body too large"}))
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    if not verify_signature(body_bytes, headers.get(SIGNATURE_HEADER), runtime.signing_secrets()):
        metrics.add_metric(name="AcksRejected", unit=MetricUnit.Count, value=1)
        suppressed = rejection_log.admit(time.monotonic())
        if suppressed is not None:
            logger.warning(
                "webhook rejected: bad or missing signature",
                extra={
                    "webhook_id": headers.get(WEBHOOK_ID_HEADER),
                    "source_ip": request.request_context.http.source_ip,
                    "not_logged_before": suppressed,
                },
            )
        return Response(401, "application/json", json.dumps({"error": "invalid signature"}))
    try:
        body = loads(body_bytes)
    except FindingError as exc:
        metrics.add_metric(name="AcksMalformed", unit=MetricUnit.Count, value=1)
        logger.warning("webhook rejected: malformed body", extra={"error": str(exc)})
        return Response(400, "application/json", json.dumps({"error": f"body is {exc}"}))
    event_type = (
        body.get("event", {}).get("event_type")
        if isinstance(body, dict) and isinstance(body.get("event"), dict)
        else None
    )
    if isinstance(event_type, str) and not event_type.startswith("incident."):
        # Signed, but not about an incident (e.g. PagerDuty's "Send Test Event", pagey.ping): acknowledge it.
        # A 4xx here would count towards PagerDuty disabling the subscription.
        metrics.add_metric(name="AcksIgnored", unit=MetricUnit.Count, value=1)
        logger.info("webhook ignored: not an incident event", extra={"event_type": event_type})
        return Response(200, "application/json", json.dumps({"outcome": "ignored"}))
    try:
        event = parse_webhook(body, headers.get(WEBHOOK_ID_HEADER))
    except WebhookError as exc:
        metrics.add_metric(name="AcksMalformed", unit=MetricUnit.Count, value=1)
        logger.warning("webhook rejected: malformed body", extra={"error": str(exc)})
        return Response(400, "application/json", json.dumps({"error": str(exc)}))
    if not event.webhook_id:
        metrics.add_metric(name="AcksMalformed", unit=MetricUnit.Count, value=1)
        return Response(400, "application/json", json.dumps({"error": "no webhook id (X-Webhook-Id or event.id)"}))
    try:
        result = _handle(event, runtime, "webhook", app.context.get("deadline") or Deadline(ANSWER_WITHIN_SECONDS))
    except RetryLater:
        # 5xx: PagerDuty retries (for up to 48 h); a 4xx would drop the webhook and count towards disabling us.
        return Response(503, "application/json", json.dumps({"outcome": "retry"}))
    return Response(200, "application/json", json.dumps({"outcome": result["outcome"]}))


# JSM's outgoing webhooks are not signed: the integration sends a secret token in this header (docs/security.md).
JSM_WEBHOOK_PATH = "/webhooks/jsm"
JSM_TOKEN_HEADER = "x-findings-router-token"  # noqa: S105  (a header name, not a secret)


def _token_matches(offered: str | None, tokens: list[str]) -> bool:
    if not offered:
        return False
    valid = False
    for token in tokens:  # every token compared, constant time: the answer's timing says nothing
        valid |= hmac.compare_digest(offered.encode(), token.encode())
    return valid


@app.post(JSM_WEBHOOK_PATH)
def jsm_webhook() -> Response[str]:
    """Jira Service Management's outgoing webhook ("alert action data") for an alert we created: acknowledge,
    unacknowledge and close come back like PagerDuty's (the alert's alias is our incident key)."""
    runtime = get_runtime()
    request = app.current_event
    body_bytes = _raw_body(request.raw_event)
    if len(body_bytes) > MAX_BODY_BYTES:
        metrics.add_metric(name="AcksMalformed", unit=MetricUnit.Count, value=1)
        return Response(413, "application/json", json.dumps({"error": "body too large"}))
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    if not _token_matches(headers.get(JSM_TOKEN_HEADER), runtime.jsm_tokens()):
        metrics.add_metric(name="AcksRejected", unit=MetricUnit.Count, value=1)
        suppressed = rejection_log.admit(time.monotonic())
        if suppressed is not None:
            logger.warning(
                "jsm webhook rejected: bad or missing token",
                extra={"source_ip": request.request_context.http.source_ip, "not_logged_before": suppressed},
            )
        return Response(401, "application/json", json.dumps({"error": "invalid token"}))
    try:
        event = parse_jsm_action(loads(body_bytes))
    except (FindingError, WebhookError) as exc:
        metrics.add_metric(name="AcksMalformed", unit=MetricUnit.Count, value=1)
        logger.warning("jsm webhook rejected: malformed body", extra={"error": str(exc)})
        return Response(400, "application/json", json.dumps({"error": str(exc)}))
    try:
        result = _handle(event, runtime, "jsm", app.context.get("deadline") or Deadline(ANSWER_WITHIN_SECONDS))
    except RetryLater:
        return Response(503, "application/json", json.dumps({"outcome": "retry"}))
    return Response(200, "application/json", json.dumps({"outcome": result["outcome"]}))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def function_url_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    deadline = function_url_deadline(event, context)
    get_runtime().idempotency.register_lambda_context(context)
    app.append_context(deadline=deadline)
    return app.resolve(event, context)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def eventbridge_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """PagerDuty's events from an EventBridge partner event bus (`detail-type` "PagerDuty Webhook").

    PagerDuty's EventBridge integration sends V2 webhook messages, not V3 events: see `parse_eventbridge_v2`.
    Raises `RetryLater` when work is left (the failed invocation is retried by Lambda's asynchronous retries).
    """
    deadline = Deadline(max(0.0, _remaining_seconds(context) - LAMBDA_MARGIN_SECONDS))
    runtime = get_runtime()
    runtime.idempotency.register_lambda_context(context)
    try:
        incident_event = parse_eventbridge_v2(event.get("detail"), str(event.get("id") or ""))
    except WebhookError as exc:
        # Not retryable: EventBridge would only deliver the same bad event again.
        metrics.add_metric(name="AcksMalformed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "eventbridge event ignored: not an incident event", extra={"error": str(exc), "id": event.get("id")}
        )
        return {"outcome": "rejected", "reason": str(exc)}
    if not incident_event.webhook_id:  # without an id, a redelivery could not be recognised
        metrics.add_metric(name="AcksMalformed", unit=MetricUnit.Count, value=1)
        logger.warning("eventbridge event ignored: no message or event id")
        return {"outcome": "rejected", "reason": "no message or event id"}
    return _handle(incident_event, runtime, "eventbridge", deadline)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Both front doors on one function (acknowledgements.mode eventbridge with JSM's webhooks): a Function URL
    request (it has a `requestContext`) or an event from the partner event bus."""
    handler = function_url_handler if "requestContext" in event else eventbridge_handler
    answer: dict[str, Any] = handler(event, context)
    return answer


build_during_init(get_runtime)
