"""Retries for every notifier: backoff with full jitter, `Retry-After`, a time budget, per-container pacing."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

from findings_router.notify import DeliveryError


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
