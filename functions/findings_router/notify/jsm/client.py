"""`JsmNotifier`: one JSM Ops integration-events request per notification (create, or close by alias), its answer
classified.

What a status means: 2xx accepted (JSM answers 202 `{result, took, requestId}`: the request is queued and processed
asynchronously, so "accepted" is not "alert created"; the request id is kept in `last_request_id` for the logs);
429 too many requests (Jira Cloud answers it with `Retry-After`) and 5xx Atlassian trouble: both retried, honouring
`Retry-After`; any other 4xx (401 a wrong API key, 422 an invalid body) is a refusal that retrying cannot help.
Errors carry JSM's own reason with the API key blanked out, never the key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryError, DeliveryResult
from findings_router.notify.http import classify, new_session, post_json, retryable_error, service_reason
from findings_router.notify.jsm.alerts import build_request
from findings_router.notify.retry import Retrier

CHANNEL = "Jira Service Management"
DEFAULT_BASE_URL = "https://api.atlassian.com"


def jsm_reason(response: Any, secrets: tuple[str, ...]) -> str:
    """JSM's words for a refusal. Its 422 names each bad field in an `errors` *map* (`{"message": "Message can not
    be empty."}`), which `service_reason` would reduce to the field names: keep the reasons too."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        fields = "; ".join(f"{k}: {v}" for k, v in body["errors"].items())
        text = f"{body.get('message', '')}: {fields}"[:500]
        for secret in secrets:
            if secret:
                text = text.replace(secret, "<secret>")
        return text
    return service_reason(response, secrets)


class JsmNotifier:
    """Sends JSM Ops alert requests through `retrier` (one per container). `api_key` is read at each send (a rotated
    key in Secrets Manager is picked up); `base_url` is https://api.atlassian.com unless a stand-in is used."""

    channel = CHANNEL

    def __init__(self, base_url: str, api_key: Callable[[], str], retrier: Retrier, *, session: Any = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.retrier = retrier
        self._session = session or new_session()
        self.last_request_id: str | None = None

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        api_key = self._api_key()
        path, body = build_request(notification, context)
        url = self.base_url + path
        headers = {"Authorization": f"GenieKey {api_key}"}
        return self.retrier.run(lambda timeout: self._post(url, body, headers, timeout, notification.key, api_key))

    def _post(
        self, url: str, body: dict[str, Any], headers: dict[str, str], timeout: float, alias: str, api_key: str
    ) -> DeliveryResult:
        response = post_json(self._session, url, body, timeout, headers)
        status = response.status_code
        verdict = classify(status)
        if verdict is None:
            try:
                request_id = response.json().get("requestId")
            except (ValueError, AttributeError):
                request_id = None
            self.last_request_id = str(request_id) if request_id else None
            return DeliveryResult(status, 1, alias)
        retryable, reason = verdict
        if retryable:
            raise retryable_error(status, reason, response)
        what = "the API key" if status in (401, 403) else "the request"
        raise DeliveryError(
            f"{CHANNEL} refused {what} ({status}): {jsm_reason(response, (api_key,))}",
            retryable=False,
            reason=reason,
            status=status,
        )
