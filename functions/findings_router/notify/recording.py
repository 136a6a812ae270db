"""`RecordingNotifier`: the in-memory twin of a notifier (replay's dry run, explain, the tests).

It records each notification with its context, and the body the PagerDuty integration would have sent for it
(`events`), so that what a dry run shows is exactly what would go out. It fails on demand (`fail_with`)."""

from __future__ import annotations

from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.pagerduty.client import CHANNEL
from findings_router.notify.pagerduty.events import build_event


class RecordingNotifier:
    channel = CHANNEL  # it records what the PagerDuty integration would send

    def __init__(self, routing_key: str = "R" * 32) -> None:
        self.routing_key = routing_key
        self.sent: list[tuple[Notification, NotifyContext]] = []
        self.events: list[dict[str, Any]] = []
        self.fail_with: DeliveryError | None = None

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        if self.fail_with is not None:
            raise self.fail_with
        body = build_event(notification, context, self.routing_key)
        self.sent.append((notification, context))
        self.events.append(body)
        return DeliveryResult(202, 1, notification.key)

    @property
    def resolved(self) -> list[str]:
        """Keys of the resolves sent, in order."""
        return [n.key for n, _ in self.sent if n.kind == "resolve"]
