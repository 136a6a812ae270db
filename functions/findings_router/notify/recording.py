"""`RecordingNotifier`: the in-memory twin of a notifier (replay's dry run, explain, the tests).

It records each notification with its context, and the body the PagerDuty integration would have sent for it
(`events`), so that what a dry run shows is exactly what would go out. It fails on demand (`fail_with`)."""

from __future__ import annotations

from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.pagerduty.client import CHANNEL
from findings_router.notify.pagerduty.events import build_event


class RecordingTwin:
    """What every twin shares: it fails on demand (`fail_with`), else renders the notification as its integration
    would (`render`), records it (`sent`, `records`) and answers `status`. `events`: what would have been sent."""

    channel = CHANNEL
    status = 202

    def __init__(self) -> None:
        self.sent: list[tuple[Notification, NotifyContext]] = []
        self.records: list[Any] = []
        self.fail_with: DeliveryError | None = None

    def render(self, notification: Notification, context: NotifyContext) -> Any:
        raise NotImplementedError

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        if self.fail_with is not None:
            raise self.fail_with
        record = self.render(notification, context)
        self.sent.append((notification, context))
        self.records.append(record)
        return DeliveryResult(self.status, 1, notification.key)

    @property
    def events(self) -> list[Any]:
        return self.records

    @property
    def resolved(self) -> list[str]:
        """Keys of the resolves sent, in order."""
        return [n.key for n, _ in self.sent if n.kind == "resolve"]


class RecordingNotifier(RecordingTwin):
    """The PagerDuty integration's twin: `events` are the Events v2 bodies."""

    def __init__(self, routing_key: str = "R" * 32) -> None:
        super().__init__()
        self.routing_key = routing_key

    def render(self, notification: Notification, context: NotifyContext) -> dict[str, Any]:
        return build_event(notification, context, self.routing_key)
