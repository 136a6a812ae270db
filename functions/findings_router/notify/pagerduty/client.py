"""`PagerDutyNotifier`: one Events API v2 POST per notification, its response classified."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from findings_router.domain.model import Finding
from findings_router.domain.notifications import Send
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.pagerduty.events import NotifyContext, build_event
from findings_router.notify.retry import TokenBucket, retry_after_seconds

logger = logging.getLogger(__name__)


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
