"""`RecordingWebhookNotifier`: the in-memory twin of `WebhookNotifier` (a dry run, the tests).

It records each notification with its context, and the body the webhook integration would have sent for it in its
format (`events`), so that what a dry run shows is exactly what would go out. It fails on demand (`fail_with`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.webhook.client import CHANNELS, Format, render


class RecordingWebhookNotifier:
    def __init__(self, format: Format = "standard", *, clock: Callable[[], float] = time.time) -> None:
        self.format: Format = format
        self.channel = CHANNELS[format]
        self._clock = clock
        self.sent: list[tuple[Notification, NotifyContext]] = []
        self.events: list[dict[str, Any]] = []
        self.fail_with: DeliveryError | None = None

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        if self.fail_with is not None:
            raise self.fail_with
        body = render(self.format, notification, context, self._clock())
        self.sent.append((notification, context))
        self.events.append(body)
        return DeliveryResult(200, 1, notification.key)

    @property
    def resolved(self) -> list[str]:
        """Keys of the resolves sent, in order."""
        return [n.key for n, _ in self.sent if n.kind == "resolve"]
