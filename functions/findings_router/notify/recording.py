"""`RecordingNotifier`: the in-memory twin of a notifier (replay's dry run, tests)."""

from __future__ import annotations

from typing import Any

from findings_router.domain.model import Finding
from findings_router.domain.notifications import Send
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.pagerduty.events import NotifyContext, build_event


class RecordingNotifier:
    """In-memory twin: records what would be sent (replay's dry run, unit tests). Optionally fails on demand."""

    def __init__(self, routing_key: str = "R" * 32) -> None:
        self.routing_key = routing_key
        self.events: list[dict[str, Any]] = []
        self.fail_with: DeliveryError | None = None

    def send(self, send: Send, finding: Finding, ctx: NotifyContext) -> DeliveryResult:
        if self.fail_with is not None:
            raise self.fail_with
        body = build_event(send, finding, ctx, self.routing_key)
        self.events.append(body)
        return DeliveryResult(202, 1, send.incident_key)
