"""Retries for every notifier: backoff with full jitter, `Retry-After`, a time budget, per-container pacing.

An integration makes one attempt and classifies its outcome (`DeliveryError.retryable`); `Retrier.run` decides
whether and when to try again. The budget is the smaller of the policy's `budget_seconds` and what is left of the
Lambda invocation (minus a reserve to write state and answer the batch), so a slow on-call service never makes the
function time out with a page half-recorded.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from findings_router.notify import DeliveryError, DeliveryResult

logger = logging.getLogger(__name__)

# Seconds kept back from the invocation's remaining time: the conditional state write and the batch answer.
INVOCATION_RESERVE = 5.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    budget_seconds: float = 30.0
    timeout_seconds: float = 5.0  # of one attempt


class TokenBucket:
    """Paces sends under an on-call service's rate limit; shared by the invocations of one container."""

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

    def acquire(self, max_wait: float, channel: str = "PagerDuty") -> float:
        """Take one token, waiting for it if needed. Raises `DeliveryError` (retryable) past `max_wait`."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        wait = (1 - self.tokens) / self.rate
        if wait > max_wait:
            raise DeliveryError(
                f"paced: {channel} rate limit share exhausted, next slot in {wait:.1f}s", retryable=True, reason="paced"
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


class Retrier:
    """Runs one notifier's attempts: bounded, jittered, `Retry-After` honoured, within a time budget, paced.

    `remaining_seconds` reads what is left of the current invocation (None: no invocation, e.g. tools and tests).
    `calls` and `retries` count HTTP attempts and retries since `reset_counts`."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        channel: str,
        remaining_seconds: Callable[[], float] | None = None,
        pacer: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.policy = policy
        self.channel = channel
        self.remaining_seconds = remaining_seconds
        self._pacer = pacer
        self._sleep = sleep
        self._clock = clock
        self._wall = wall_clock
        self._jitter = jitter
        self.calls = 0
        self.retries = 0

    def reset_counts(self) -> None:
        self.calls = 0
        self.retries = 0

    def _budget_left(self, started: float) -> float:
        left = self.policy.budget_seconds - (self._clock() - started)
        if self.remaining_seconds is not None:
            left = min(left, self.remaining_seconds() - INVOCATION_RESERVE)
        return left

    def run(self, attempt: Callable[[float], DeliveryResult]) -> DeliveryResult:
        """Call `attempt(timeout_seconds)` until it returns, raises a non-retryable `DeliveryError`, or the attempts
        or the budget run out (then the last error is raised, retryable: the message's redelivery tries again)."""
        policy, channel = self.policy, self.channel
        started = self._clock()
        number = 0
        while True:
            number += 1
            left = self._budget_left(started)
            if left <= 0:
                raise DeliveryError(
                    "retry budget exhausted before sending", retryable=True, reason="budget", attempts=number - 1
                )
            if self._pacer is not None and self._pacer.acquire(max(0.0, left - policy.timeout_seconds), channel):
                left = self._budget_left(started)
            self.calls += 1
            try:
                result = attempt(min(policy.timeout_seconds, left))
            except DeliveryError as exc:
                exc.attempts = number
                if not exc.retryable:
                    raise
                problem = f"HTTP {exc.status}" if exc.status is not None else str(exc)
                if number >= policy.max_attempts:
                    raise _final(f"{channel} unavailable after {number} attempts (last: {problem})", exc) from exc
                waited = retry_after_seconds(exc.retry_after, self._wall())
                cap = min(policy.max_delay, policy.base_delay * 2 ** (number - 1))
                delay = waited if waited is not None else self._jitter(0, cap)
                if delay + 0.1 > self._budget_left(started):
                    message = (
                        f"{channel} unavailable (last: {problem}); next retry in {delay:.1f}s exceeds the time budget"
                    )
                    raise _final(message, exc) from exc
            else:
                return dataclasses.replace(result, attempts=number)
            logger.warning(
                "delivery retry",
                extra={"channel": channel, "attempt": number, "problem": problem, "delay_seconds": round(delay, 3)},
            )
            self.retries += 1
            self._sleep(delay)


def _final(message: str, last: DeliveryError) -> DeliveryError:
    return DeliveryError(message, retryable=True, reason=last.reason, status=last.status, attempts=last.attempts)
