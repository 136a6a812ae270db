"""`PagerDutyNotifier`: one Events API v2 POST per notification, its response classified.

What a status means (PagerDuty developer docs, events-v2 "Responses"): 202 accepted; 400 the event is invalid
(retrying cannot help); 429 too many events for this routing key and 5xx PagerDuty trouble (both retried, honouring
`Retry-After`). Anything else is unexpected and retried: a page is never given up on a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.http import classify, new_session, post_json, retryable_error, service_reason
from findings_router.notify.pagerduty.events import build_event
from findings_router.notify.retry import Retrier

CHANNEL = "PagerDuty"


class PagerDutyNotifier:
    """Sends Events v2 through `retrier` (one per container: its pacing is this container's share of the limit)."""

    channel = CHANNEL

    def __init__(
        self, events_url: str, routing_key: Callable[[], str], retrier: Retrier, *, session: Any = None
    ) -> None:
        self.events_url = events_url
        self._routing_key = routing_key
        self.retrier = retrier
        self._session = session or new_session()

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        routing_key = self._routing_key()
        body = build_event(notification, context, routing_key)
        return self.retrier.run(lambda timeout: self._post(body, timeout, routing_key))

    def _post(self, body: dict[str, Any], timeout: float, routing_key: str) -> DeliveryResult:
        response = post_json(self._session, self.events_url, body, timeout)
        status = response.status_code
        verdict = classify(status)
        if verdict is None:
            try:
                key = response.json().get("dedup_key")
            except (ValueError, AttributeError):
                key = None
            return DeliveryResult(status, 1, key)
        retryable, reason = verdict
        if retryable:
            raise retryable_error(status, reason, response)
        raise DeliveryError(
            f"{CHANNEL} rejected the event ({status}): {service_reason(response, (routing_key,))}",
            retryable=False,
            reason=reason,
            status=status,
        )
