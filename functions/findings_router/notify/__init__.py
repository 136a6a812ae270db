"""The notifier contract: what every on-call integration offers the router, the ack receiver and the meta-alerts.

The domain asks for `Notification`s (domain/notifications.py). A notifier turns one into its vendor's payload, sends
it, and either returns a `DeliveryResult` or raises `DeliveryError` saying whether trying again can help
(`retryable`) and why (`reason`). An integration only builds payloads and classifies responses, like Alertmanager's
notifiers with their `Retrier`; retries, the time budget, `Retry-After` and pacing live in notify/retry.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from findings_router.domain.notifications import Notification, NotifyContext

# Why a delivery failed. `rejected`: the service refused the payload itself (retrying cannot help); the others are
# transient: retried in line within the time budget, then by the message's redelivery.
Reason = Literal["rejected", "rate-limited", "unavailable", "network", "budget", "paced"]


class DeliveryError(Exception):
    """Delivery failed. Never carries a secret: messages name the channel, the status and the service's reason."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        reason: Reason,
        status: int | None = None,
        attempts: int = 0,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason
        self.status = status
        self.attempts = attempts
        self.retry_after = retry_after  # the response's Retry-After header, as sent (notify/retry.py reads it)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: int
    attempts: int
    key: str | None  # the incident key the service acknowledged, when it says


class Notifier(Protocol):
    """One on-call integration. `channel` names it for people (logs, Security Hub notes)."""

    channel: str

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult: ...
