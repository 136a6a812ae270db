"""PagerDuty Events API v2: building events (pure) and delivering them (`PagerDutyNotifier`).

Contract (PagerDuty developer docs, api-schema events-v2): POST JSON to /v2/enqueue with routing_key,
event_action (trigger|acknowledge|resolve), dedup_key (≤255 chars), payload {summary ≤1024, source, severity
critical|error|warning|info, timestamp, component, group, class, custom_details}, links, client, client_url.
202 accepted; 400 invalid (never retry); 429 and 5xx retry with backoff.

Urgency: the Events API has no urgency field. Pages go out as `critical`/`error`, notifications as
`warning`/`info`; the PagerDuty service is set to "urgency based on alert severity" (docs/deploy.md) so the first
pair pages (high urgency) and the second does not wake anyone (low urgency).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from findings_router.dedup import Send
from findings_router.model import Finding, Severity

logger = logging.getLogger(__name__)

SUMMARY_MAX = 1024
SOURCE_MAX = 255
DESCRIPTION_MAX = 1500
MAX_RESOURCES_IN_DETAILS = 10
CLIENT = "findings-router"


@dataclass(frozen=True, slots=True)
class NotifyContext:
    environment: str
    dedup_key: str
    reason: str
    episode: int


class DeliveryError(Exception):
    """Delivery failed. `permanent`: retrying cannot help (a 400); otherwise the message goes back to SQS."""

    def __init__(self, message: str, *, permanent: bool, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: int
    attempts: int
    dedup_key: str | None


def routing_key_from_secret(value: str) -> str:
    """The secret is either the bare routing key or JSON with a `routing_key` field."""
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        key = data.get("routing_key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key:
            raise ValueError("secret JSON has no routing_key string")
        return key
    return value


def pd_severity(severity: Severity, urgency: str) -> str:
    if urgency == "high":
        return "critical" if severity is Severity.CRITICAL else "error"
    return "warning" if severity in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM) else "info"


def console_url(finding: Finding) -> str:
    """A Security Hub console link filtered to this very finding (not only to its control)."""
    region = finding.region
    base = f"https://{region}.console.aws.amazon.com/securityhub"
    if finding.format == "ocsf":
        search = "finding_info.uid=" + quote(f"\\operator\\:EQUALS\\:{finding.id}", safe="")
        return f"{base}/v2/home?region={region}#/findings?search={quote(search, safe='')}"
    search = "Id=" + quote(f"\\operator\\:EQUALS\\:{finding.id}", safe="")
    return f"{base}/home?region={region}#/findings?search={quote(search, safe='')}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resolve_event(routing_key: str, dedup_key: str) -> dict[str, Any]:
    """The Events v2 body that resolves the alert of `dedup_key` (a no-op at PagerDuty when none is open)."""
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}


def build_event(send: Send, finding: Finding, ctx: NotifyContext, routing_key: str) -> dict[str, Any]:
    """The Events v2 body for one `Send`. Everything an operator woken at night needs is in the page itself."""
    if send.event_action == "resolve":
        return resolve_event(routing_key, send.incident_key)
    if send.storm is not None:
        return build_storm_event(send, finding, ctx, routing_key)

    resource = finding.primary_resource_id
    prefix = f"[{ctx.environment}] "
    if send.escalated_from is not None and send.escalated_from is not send.severity:
        prefix += f"[ESCALATED {send.escalated_from.value}→{send.severity.value}] "
    extra = f" ({finding.max_cvss:.1f} CVSS)" if finding.max_cvss is not None else ""
    summary = (
        f"{prefix}{send.severity.value}{extra} {finding.product_name}: {finding.title} "
        f"on {resource} in {finding.account}/{finding.region}"
    )
    link = console_url(finding)
    links = [{"href": link, "text": "This finding in Security Hub"}]
    if finding.control_id:
        links.append(
            {
                "href": f"https://{finding.region}.console.aws.amazon.com/securityhub/home?region={finding.region}"
                f"#/controls/{quote(finding.control_id, safe='')}",
                "text": f"Control {finding.control_id}",
            }
        )
    if finding.remediation_url:
        links.append({"href": finding.remediation_url, "text": "Remediation"})
    if finding.source_url:
        links.append({"href": finding.source_url, "text": f"{finding.product_name} console"})

    details: dict[str, Any] = {
        "environment": ctx.environment,
        "decision": ctx.reason,
        "severity": f"{finding.severity.value} ({finding.severity_score:g})",
        "product": f"{finding.company_name} {finding.product_name}".strip(),
        "account": finding.account,
        "region": finding.region,
        "title": finding.title,
        "description": _truncate(finding.description, DESCRIPTION_MAX),
        "resources": [
            {"type": r.type, "id": r.id, **({"tags": dict(r.tags)} if r.tags else {})}
            for r in finding.resources[:MAX_RESOURCES_IN_DETAILS]
        ],
        "resource_count": len(finding.resources),
        "finding_id": finding.id,
        "product_arn": finding.product_arn,
        "generator_id": finding.generator_id,
        "types": list(finding.types),
        "security_hub_console": link,
        "dedup_key": ctx.dedup_key,
        "episode": ctx.episode,
    }
    if finding.control_id:
        details["control_id"] = finding.control_id
    if finding.cve_ids:
        details["cve_ids"] = list(finding.cve_ids[:20])
    if finding.max_cvss is not None:
        details["max_cvss"] = finding.max_cvss
    if finding.remediation_text or finding.remediation_url:
        details["remediation"] = " ".join(x for x in (finding.remediation_text, finding.remediation_url) if x)
    for name in ("first_observed_at", "last_observed_at", "compliance_status", "workflow_status"):
        value = getattr(finding, name)
        if value:
            details[name] = value

    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": send.incident_key,
        "payload": {
            "summary": _truncate(summary, SUMMARY_MAX),
            "source": _truncate(resource, SOURCE_MAX),
            "severity": pd_severity(send.severity, send.urgency),
            "component": _truncate(finding.resources[0].type if finding.resources else "AwsAccount", 255),
            "group": finding.account,
            "class": _truncate(
                finding.control_id or (finding.types[0] if finding.types else finding.product_name), 255
            ),
            "custom_details": details,
        },
        "links": links,
        "client": CLIENT,
        "client_url": link,
    }
    timestamp = finding.last_observed_at or finding.updated_at
    if timestamp:
        body["payload"]["timestamp"] = timestamp
    return body


def build_storm_event(send: Send, finding: Finding, ctx: NotifyContext, routing_key: str) -> dict[str, Any]:
    """One incident for a flood of findings of one group, or the router's own storm meta-alert."""
    storm = send.storm
    assert storm is not None
    if storm.meta:
        summary = (
            f"[{ctx.environment}] findings-router is in a finding storm: {storm.group} passed its threshold; "
            "findings are being grouped per storm incident"
        )
        severity, klass = ("critical" if send.urgency == "high" else "warning"), "meta-alert"
    else:
        summary = (
            f"[{ctx.environment}] STORM: {storm.count}+ new {finding.severity.value} findings in {storm.window_minutes} min "
            f"for {storm.group} (e.g. {finding.title})"
        )
        severity, klass = pd_severity(send.severity, send.urgency), "storm"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": send.incident_key,
        "payload": {
            "summary": _truncate(summary, SUMMARY_MAX),
            "source": f"findings-router-{ctx.environment}",
            "severity": severity,
            "component": "findings-router",
            "group": finding.account,
            "class": klass,
            "custom_details": {
                "environment": ctx.environment,
                "group": storm.group,
                "new_problems_in_window": storm.count,
                "window_minutes": storm.window_minutes,
                "sample_resources": list(storm.samples),
                "example_finding_id": finding.id,
                "example_title": finding.title,
                "example_console": console_url(finding),
                "note": "Every finding of the group is still tracked and deduplicated individually; "
                "resolve this incident when the flood is handled.",
            },
        },
        "links": [{"href": console_url(finding), "text": "An example finding in Security Hub"}],
        "client": CLIENT,
    }


class TokenBucket:
    """Paces sends under PagerDuty's per-routing-key rate limit; shared by the invocations of one container."""

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 10.0)
        self.tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    def acquire(self, max_wait: float) -> float:
        """Take one token, waiting for it if needed. Raises `DeliveryError` (transient) past `max_wait`."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        wait = (1 - self.tokens) / self.rate
        if wait > max_wait:
            raise DeliveryError(
                f"paced: PagerDuty rate limit share exhausted, next slot in {wait:.1f}s", permanent=False
            )
        self._sleep(wait)
        self.tokens = 0.0
        self._last = self._clock()
        return wait


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """`Retry-After` is either delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _reason(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        errors = body.get("errors")
        message = body.get("message", "")
        return f"{message}: {'; '.join(map(str, errors))}" if errors else str(message or body)[:300]
    return str(body)[:300]


class PagerDutyNotifier:
    """Sends Events v2 with bounded retries: backoff with full jitter, `Retry-After` honoured, a time budget."""

    def __init__(
        self,
        events_url: str,
        routing_key: Callable[[], str],
        *,
        session: Any = None,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        budget_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
        remaining_seconds: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        pacer: TokenBucket | None = None,
    ) -> None:
        import requests  # deferred: keeps replay and unit tests from paying for it

        self._requests = requests
        self.events_url = events_url
        self._routing_key = routing_key
        self._session = session or requests.Session()
        self._max_attempts = max_attempts
        self._base = base_delay
        self._max_delay = max_delay
        self._budget = budget_seconds
        self._timeout = timeout_seconds
        self._remaining = remaining_seconds
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self._pacer = pacer
        self.calls = 0
        self.retries = 0

    def routing_key(self) -> str:
        return self._routing_key()

    def send(self, send: Send, finding: Finding, ctx: NotifyContext) -> DeliveryResult:
        body = build_event(send, finding, ctx, self._routing_key())
        return self.post(body)

    def _budget_left(self, started: float) -> float:
        left = self._budget - (self._clock() - started)
        if self._remaining is not None:
            # Leave time to write state and answer the batch before Lambda kills the invocation.
            left = min(left, self._remaining() - 5.0)
        return left

    def post(self, body: dict[str, Any]) -> DeliveryResult:
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            left = self._budget_left(started)
            if left <= 0:
                raise DeliveryError("retry budget exhausted before sending", permanent=False, attempts=attempt - 1)
            retry_after: float | None = None
            status: int | None = None
            if self._pacer is not None and self._pacer.acquire(max(0.0, left - self._timeout)):
                left = self._budget_left(started)
            self.calls += 1
            try:
                response = self._session.post(self.events_url, json=body, timeout=min(self._timeout, left))
            except (self._requests.Timeout, self._requests.ConnectionError) as exc:
                problem = f"{type(exc).__name__}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        key = response.json().get("dedup_key")
                    except (ValueError, AttributeError):
                        key = None
                    return DeliveryResult(status, attempt, key)
                if status != 429 and 400 <= status < 500:
                    raise DeliveryError(
                        f"PagerDuty rejected the event ({status}): {_reason(response)}",
                        permanent=True,
                        status=status,
                        attempts=attempt,
                    )
                problem = f"HTTP {status}"
                retry_after = retry_after_seconds(response.headers.get("Retry-After"), self._wall())
            if attempt >= self._max_attempts:
                raise DeliveryError(
                    f"PagerDuty unavailable after {attempt} attempts (last: {problem})",
                    permanent=False,
                    status=status,
                    attempts=attempt,
                )
            cap = min(self._max_delay, self._base * 2 ** (attempt - 1))
            delay = retry_after if retry_after is not None else random.uniform(0, cap)
            if delay + 0.1 > self._budget_left(started):
                raise DeliveryError(
                    f"PagerDuty unavailable (last: {problem}); next retry in {delay:.1f}s exceeds the time budget",
                    permanent=False,
                    status=status,
                    attempts=attempt,
                )
            logger.warning(
                "pagerduty delivery retry",
                extra={"attempt": attempt, "problem": problem, "delay_seconds": round(delay, 3)},
            )
            self.retries += 1
            self._sleep(delay)


class RecordingNotifier:
    """In-memory twin: records what would be sent (replay's dry run, unit tests). Optionally fails on demand."""

    def __init__(self, routing_key: str = "R" * 32) -> None:
        self.routing_key = routing_key
        self.events: list[dict[str, Any]] = []
        self.fail_with: DeliveryError | None = None

    def send(self, send: Send, finding: Finding, ctx: NotifyContext) -> DeliveryResult:
        if self.fail_with is not None:
            raise self.fail_with
        body = build_event(send, finding, ctx, self.routing_key)
        self.events.append(body)
        return DeliveryResult(202, 1, send.incident_key)
