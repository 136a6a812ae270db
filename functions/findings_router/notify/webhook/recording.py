"""`RecordingWebhookNotifier`: the in-memory twin of `WebhookNotifier` (a dry run, the tests).

It records each notification with its context, and the body the webhook integration would have sent for it in its
format (`events`), so that what a dry run shows is exactly what would go out. It fails on demand (`fail_with`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify.recording import RecordingTwin
from findings_router.notify.webhook.client import CHANNELS, Format, render


class RecordingWebhookNotifier(RecordingTwin):
    status = 200

    def __init__(self, format: Format = "standard", *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.format: Format = format
        self.channel = CHANNELS[format]
        self._clock = clock

    def render(self, notification: Notification, context: NotifyContext) -> dict[str, Any]:
        return render(self.format, notification, context, self._clock())
