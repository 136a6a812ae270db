"""`RecordingJsmNotifier`: the in-memory twin of `JsmNotifier` (a dry run, the tests).

It records each notification with its context, and the request the JSM integration would have sent for it
(`requests`: path and body; `events`: the bodies), so that what a dry run shows is exactly what would go out. It
fails on demand (`fail_with`)."""

from __future__ import annotations

from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.jsm.alerts import build_request
from findings_router.notify.jsm.client import CHANNEL


class RecordingJsmNotifier:
    channel = CHANNEL

    def __init__(self) -> None:
        self.sent: list[tuple[Notification, NotifyContext]] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail_with: DeliveryError | None = None

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        if self.fail_with is not None:
            raise self.fail_with
        path, body = build_request(notification, context)
        self.sent.append((notification, context))
        self.requests.append((path, body))
        return DeliveryResult(202, 1, notification.key)

    @property
    def events(self) -> list[dict[str, Any]]:
        """The request bodies, in order."""
        return [body for _, body in self.requests]

    @property
    def resolved(self) -> list[str]:
        """Keys of the closes sent, in order."""
        return [n.key for n, _ in self.sent if n.kind == "resolve"]
