"""One HTTP POST of a JSON body, for every integration: the response, or a retryable `DeliveryError` when the
service could not be reached. Errors name only the exception type: a URL may carry a secret (a webhook's token)."""

from __future__ import annotations

from typing import Any

from findings_router.notify import DeliveryError, Reason


def new_session() -> Any:
    import requests  # deferred: replay, explain and unit tests never pay for it

    return requests.Session()


def post_json(session: Any, url: str, body: Any, timeout: float, headers: dict[str, str] | None = None) -> Any:
    import requests

    try:
        extra = {"headers": headers} if headers else {}
        return session.post(url, json=body, timeout=timeout, **extra)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise DeliveryError(type(exc).__name__, retryable=True, reason="network") from None


def service_reason(response: Any, secrets: tuple[str, ...] = ()) -> str:
    """The service's own words for a refusal (JSON `message` and `errors`, else the start of the body), with any of
    `secrets` it echoes (a routing key quoted back in an error) blanked: this text goes into logs."""
    try:
        body = response.json()
    except ValueError:
        text = str(response.text)[:300]
    else:
        if isinstance(body, dict):
            errors = body.get("errors")
            message = body.get("message", "")
            text = f"{message}: {'; '.join(map(str, errors))}" if errors else str(message or body)[:300]
        else:
            text = str(body)[:300]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    return text


def classify(status: int) -> tuple[bool, Reason] | None:
    """What an on-call service's HTTP status means (Alertmanager's notifier rules): None accepted; else (retryable,
    reason): 429 rate-limited and 5xx unavailable are retried, any other 4xx is a refusal that retrying cannot help."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return True, "rate-limited"
    if 400 <= status < 500:
        return False, "rejected"
    return True, "unavailable"


def retryable_error(status: int, reason: Reason, response: Any) -> DeliveryError:
    """A retryable refusal (429, 5xx), with the service's Retry-After for the Retrier to honour."""
    return DeliveryError(
        f"HTTP {status}", retryable=True, reason=reason, status=status, retry_after=response.headers.get("Retry-After")
    )
