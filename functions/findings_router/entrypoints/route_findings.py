"""Router Lambda: SQS batch of EventBridge events from Security Hub → `route_findings`.

Thin on purpose: parse every record, read all dedup state in one batched read, then let Powertools' batch
processor route record by record and report partial failures, so one bad message never fails the others.
A message that fails comes back after the visibility timeout and, after `maxReceiveCount` tries, lands in the
dead-letter queue; every failure is logged with its reason and the message id.

A message that can never succeed (PagerDuty refused its event as invalid: a 4xx other than 429) is parked in the
dead-letter queue at once, with the reason as message attributes, and not reported as failed: retrying it
`maxReceiveCount` times would only delay the alarm. Its state keeps the trigger recorded, so the finding's next copy
tries again once the cause is fixed (or `findings-router redrive` moves it back).

Environment (non-secret only): POLICY_FILE, STATE_TABLE_NAME, DEAD_LETTER_QUEUE_URL, optional EVENTS_URL (overrides
the policy's endpoint, for local runs), POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, cast

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.adapters.dead_letters import DeadLetterParking
from findings_router.bootstrap import RouterRuntime, RuntimeSlot, build_during_init, build_router
from findings_router.domain.canary import is_canary
from findings_router.domain.model import Finding, FindingError
from findings_router.domain.normalize import NormalizedEvent, loads, normalize_event
from findings_router.entrypoints.observability import build_logger, build_metrics, publish_canary
from findings_router.notify import DeliveryError
from findings_router.service.route import FindingsRouter, Routed, StateConflictError, TriggerInFlightError

logger = build_logger("findings-router")


metrics = build_metrics()


# Report every failed record, even when all failed, instead of failing the invocation: the effect on SQS is the
# same, and the log then holds one clear line per message instead of a stack trace for the batch.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


# Findings of a batch, the canary's aside; infra's silence alarm watches it (infra/contract.py has the same name).
FINDINGS_RECEIVED_METRIC = "FindingsReceived"


METRIC_BY_OUTCOME = {
    "page": "Pages",
    "notify": "Notifications",
    "drop": "Drops",
    "duplicate": "Duplicates",
    "resolve": "Resolves",
}


class MalformedEventError(ValueError):
    """The message can never be routed as it is; it will end in the dead-letter queue."""


# One per execution environment. Tests, the demo and the benches `install` theirs, built with bootstrap.build_router.
runtime_slot: RuntimeSlot[RouterRuntime] = RuntimeSlot(build_router, metrics)
get_runtime = runtime_slot.get
install = runtime_slot.install


def reset_runtime() -> None:
    """Build the runtime again from the environment at the next invocation (tests switch policy or endpoints)."""
    install(None)


@dataclass
class _Invocation:
    router: FindingsRouter
    now: dt.datetime
    parsed: dict[str, NormalizedEvent | Exception] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    dead_letters: DeadLetterParking | None = None


def _parse(body: str) -> NormalizedEvent:
    try:
        event = loads(body)
    except FindingError as exc:
        raise MalformedEventError(f"message body is {exc}") from None
    return normalize_event(event)


def _log_canary(routed: Routed, message_id: str) -> None:
    assert routed.canary is not None
    outcome = routed.canary
    if outcome.outcome in ("paged", "completed"):
        publish_canary(metrics, outcome.hops, reached=("received", "delivered"), completed=outcome.completed)
    log = logger.warning if outcome.outcome in ("not-configured", "foreign") else logger.info
    log(
        "canary routed",
        extra={
            "finding_id": routed.finding.id,
            "incident_key": routed.decision.key,
            "outcome": outcome.outcome,
            "reason": outcome.reason,
            "hops": outcome.hops,
            "message_id": message_id,
        },
    )


def _log_routed(routed: Routed, message_id: str) -> None:
    if routed.canary is not None:
        _log_canary(routed, message_id)
        return
    f: Finding = routed.finding
    metrics.add_metric(name=METRIC_BY_OUTCOME[routed.decision.outcome], unit=MetricUnit.Count, value=1)
    # Duplicates are most of the traffic and tell nobody anything: DEBUG (POWERTOOLS_LOG_LEVEL=DEBUG shows them);
    # every other decision is one INFO line. The invocation's summary line counts them all.
    log = logger.debug if routed.decision.outcome == "duplicate" else logger.info
    log(
        "finding routed",
        extra={
            "finding_id": f.id,
            "dedup_key": routed.decision.key,
            "decision": routed.decision.outcome,
            "reason": routed.decision.reason,
            "product": f.product_name,
            "severity": f.severity.value,
            "account": f.account,
            "region": f.region,
            "message_id": message_id,
            "deliveries": routed.deliveries,
        },
    )


def _fail(record: SQSRecord, reason: str, exc: Exception, **extra: Any) -> None:
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
    logger.error(
        "message failed; it will be retried and, after its last receive, dead-lettered",
        extra={
            "message_id": record.message_id,
            "receive_count": record.attributes.approximate_receive_count,
            "reason": reason,
            "error": str(exc),
            **extra,
        },
    )


def _route_one(record: SQSRecord, finding: Finding, inv: _Invocation) -> Exception | None:
    """Route one finding of `record`; the error that must send the message back to SQS, if any. A delivery the
    on-call service refused for good is returned as is: the caller parks the message instead."""
    try:
        routed = inv.router.route(finding, inv.now)
    except DeliveryError as exc:
        if exc.retryable:
            _fail(record, "delivery failed", exc, finding_id=finding.id)
        return exc
    except StateConflictError as exc:
        _fail(record, "delivery failed", exc, finding_id=finding.id)
        return exc
    except TriggerInFlightError as exc:
        # Not an error: two copies of one new finding at once. This one comes back after the visibility timeout.
        logger.info(
            "message deferred: the page is being sent by another invocation",
            extra={"message_id": record.message_id, "finding_id": finding.id, "reason": str(exc)},
        )
        return exc
    except Exception as exc:
        _fail(record, "unexpected error", exc, finding_id=finding.id, error_type=type(exc).__name__)
        return exc
    inv.outcomes[routed.decision.outcome] = inv.outcomes.get(routed.decision.outcome, 0) + 1
    _log_routed(routed, record.message_id)
    return None


def _record_handler(record: SQSRecord, inv: _Invocation) -> None:
    parsed = inv.parsed.get(record.message_id)
    if parsed is None:
        parsed = _parse(record.body)
    if isinstance(parsed, Exception):
        _fail(record, "malformed event", parsed)
        raise parsed
    if parsed.ignored_reason:
        logger.info("event ignored", extra={"message_id": record.message_id, "reason": parsed.ignored_reason})
        return
    errors = [e for e in (_route_one(record, f, inv) for f in parsed.findings) if e is not None]
    for error in parsed.errors:
        _fail(record, "malformed finding", error, finding_id=error.finding_id, field=error.field)
        errors.append(error)
    retry = [e for e in errors if not (isinstance(e, DeliveryError) and not e.retryable)]
    if retry:
        # The good findings of this message went through; retrying them later is harmless (dedup).
        raise retry[0]
    if errors:
        _park(record, cast(DeliveryError, errors[0]), inv)


def _park(record: SQSRecord, exc: DeliveryError, inv: _Invocation) -> None:
    """A delivery the on-call service refused as invalid: retrying cannot help, so dead-letter the message now."""
    reason = "permanent delivery error"
    if inv.dead_letters is None:
        _fail(record, reason, exc)
        raise exc
    try:
        inv.dead_letters.park(record, reason, str(exc))
    except Exception as send_error:  # could not park it: let SQS retry (and dead-letter) it as usual
        _fail(record, reason, exc, parking_error=str(send_error))
        raise exc from send_error
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
    logger.error(
        "message dead-lettered at once: the on-call service refused its event as invalid, retrying cannot help",
        extra={
            "message_id": record.message_id,
            "receive_count": record.attributes.approximate_receive_count,
            "reason": reason,
            "status": exc.status,
            "error": str(exc),
        },
    )


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    runtime = get_runtime()
    inv = _Invocation(runtime.begin(context), dt.datetime.now(dt.UTC), dead_letters=runtime.dead_letters)
    findings: list[Finding] = []
    for raw in event.get("Records", []):
        message_id = raw.get("messageId", "")
        try:
            normalized = _parse(raw.get("body", ""))
        except (MalformedEventError, FindingError) as exc:
            inv.parsed[message_id] = exc
            continue
        inv.parsed[message_id] = normalized
        findings.extend(normalized.findings)
    inv.router.prefetch(findings)
    # What the silence alarm (monitoring.no_findings_alarm_minutes) watches: real findings, the canary's aside.
    real = sum(1 for f in findings if not is_canary(f))
    if real:
        metrics.add_metric(name=FINDINGS_RECEIVED_METRIC, unit=MetricUnit.Count, value=real)
    response = process_partial_response(
        event=event,
        record_handler=lambda record: _record_handler(record, inv),
        processor=processor,
        context=context,
    )
    logger.info(
        "batch routed",
        extra={"records": len(event.get("Records", [])), "findings": len(findings), **inv.outcomes},
    )
    retrier = runtime.retrier
    if retrier is not None and retrier.retries:
        # Retried deliveries that then succeeded (or failed back to SQS): a flaky on-call endpoint shows here.
        metrics.add_metric(name="DeliveryRetries", unit=MetricUnit.Count, value=retrier.retries)
        logger.info("delivery retries", extra={"retries": retrier.retries, "http_calls": retrier.calls})
    if inv.router.writeback_failures:
        metrics.add_metric(name="WritebackErrors", unit=MetricUnit.Count, value=inv.router.writeback_failures)
    return response


build_during_init(get_runtime)
