"""The notifier contract: what every on-call integration (PagerDuty, and the next ones) offers the router."""

from __future__ import annotations

from dataclasses import dataclass


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
