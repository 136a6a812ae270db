"""`RecordingJsmNotifier`: the in-memory twin of `JsmNotifier` (a dry run, the tests).

It records each notification with its context, and the request the JSM integration would have sent for it
(`requests`: path and body; `events`: the bodies), so that what a dry run shows is exactly what would go out. It
fails on demand (`fail_with`)."""

from __future__ import annotations

from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify.jsm.alerts import build_request
from findings_router.notify.jsm.client import CHANNEL
from findings_router.notify.recording import RecordingTwin


class RecordingJsmNotifier(RecordingTwin):
    """`requests`: the path and body of each request; `events`: the bodies."""

    channel = CHANNEL

    def render(self, notification: Notification, context: NotifyContext) -> tuple[str, dict[str, Any]]:
        return build_request(notification, context)

    @property
    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        return self.records

    @property
    def events(self) -> list[Any]:
        """The request bodies, in order."""
        return [body for _, body in self.requests]
