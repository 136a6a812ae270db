"""Router Lambda: SQS batch of EventBridge events from Security Hub → `route_findings`.

Thin on purpose: parse every record, read all dedup state in one batched read, then route record by record and
report partial failures (`PartialBatch`, Powertools' batch processor's behaviour), so one bad message never fails the
others.
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
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, cast

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.bootstrap import RouterRuntime, RuntimeSlot, build_during_init, build_router
from findings_router.domain.canary import is_canary
from findings_router.domain.model import Finding, FindingError
from findings_router.domain.normalize import NormalizedEvent, loads, normalize_event
from findings_router.entrypoints.observability import build_logger, build_metrics, publish_canary
from findings_router.notify import DeliveryError
from findings_router.service.route import FindingsRouter, Routed, StateConflictError, TriggerInFlightError

if TYPE_CHECKING:
    from findings_router.adapters.dead_letters import DeadLetterParking

logger = build_logger("findings-router")


metrics = build_metrics()


class ItemFailure(TypedDict):
    itemIdentifier: str


class PartialItemFailureResponse(TypedDict):
    """What the SQS event source reads back (ReportBatchItemFailures): the messages to receive again."""

    batchItemFailures: list[ItemFailure]


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """One SQS record of the invocation's event, as the handler reads it."""

    raw: dict[str, Any]

    @property
    def message_id(self) -> str:
        return str(self.raw.get("messageId", ""))

    @property
    def body(self) -> str:
        body = self.raw.get("body", "")
        return body if isinstance(body, str) else str(body)

    @property
    def receive_count(self) -> str | None:
        attributes = self.raw.get("attributes")
        return attributes.get("ApproximateReceiveCount") if isinstance(attributes, dict) else None


ExceptionInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class PartialBatch:
    """Powertools' `BatchProcessor` for SQS, as this handler uses it, without importing it (its module pulls in
    asyncio and every event data class: about 30 ms of CPU at each cold start): each record handled alone, a failure
    reported as a batch item failure, never failing the invocation (even when every record fails: the effect on SQS
    is the same, and the log then holds one clear line per message instead of a stack trace for the batch). The
    last batch's failed records and exceptions stay readable, as the processor's do (`fail_messages`, `exceptions`).
    """

    def __init__(self) -> None:
        self.fail_messages: list[QueueMessage] = []
        self.exceptions: list[ExceptionInfo] = []

    def process(self, event: dict[str, Any], handler: Callable[[QueueMessage], None]) -> PartialItemFailureResponse:
        records = event.get("Records")
        if not records or not isinstance(records, list):
            raise ValueError("not an SQS event: it has no Records")
        self.fail_messages.clear()
        self.exceptions.clear()
        for raw in records:
            message = QueueMessage(raw if isinstance(raw, dict) else {})
            try:
                handler(message)
            except Exception:
                self.fail_messages.append(message)
                self.exceptions.append(cast(ExceptionInfo, sys.exc_info()))
        return {"batchItemFailures": [{"itemIdentifier": m.message_id} for m in self.fail_messages]}


processor = PartialBatch()


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


def _fail(record: QueueMessage, reason: str, exc: Exception, **extra: Any) -> None:
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
    logger.error(
        "message failed; it will be retried and, after its last receive, dead-lettered",
        extra={
            "message_id": record.message_id,
            "receive_count": record.receive_count,
            "reason": reason,
            "error": str(exc),
            **extra,
        },
    )


def _route_one(record: QueueMessage, finding: Finding, inv: _Invocation) -> Exception | None:
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


def _record_handler(record: QueueMessage, inv: _Invocation) -> None:
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


def _park(record: QueueMessage, exc: DeliveryError, inv: _Invocation) -> None:
    """A delivery the on-call service refused as invalid: retrying cannot help, so dead-letter the message now."""
    reason = "permanent delivery error"
    if inv.dead_letters is None:
        _fail(record, reason, exc)
        raise exc
    try:
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

        inv.dead_letters.park(SQSRecord(record.raw), reason, str(exc))
    except Exception as send_error:  # could not park it: let SQS retry (and dead-letter) it as usual
        _fail(record, reason, exc, parking_error=str(send_error))
        raise exc from send_error
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
    logger.error(
        "message dead-lettered at once: the on-call service refused its event as invalid, retrying cannot help",
        extra={
            "message_id": record.message_id,
            "receive_count": record.receive_count,
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
    response = processor.process(event, lambda record: _record_handler(record, inv))
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
