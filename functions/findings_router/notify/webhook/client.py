"""`WebhookNotifier`: one HTTPS POST per notification to a receiver of the team's own (a SOAR, a ticket queue, a chat).

`format`:
* `standard` (default): the versioned JSON body of docs/webhook-schema.md, signed with Standard Webhooks 1.0
  (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`); several space-separated
  `whsec_` secrets sign with each (rotation);
* `slack`: a Slack incoming webhook (`{"text": …}`), unsigned: the URL is the secret;
* `teams`: a Microsoft Teams Workflows webhook (an Adaptive Card message), unsigned: the URL is the secret.

`webhook-id` is the same for every attempt of one notification, and for the same notification sent again (the
message's redelivery after an unanswered attempt): it is derived from the environment, the incident key, the kind,
the episode, and the storm's size or the alarm's change. Receivers deduplicate on it. A resolve that names no episode
(an acknowledgement resolving sibling incidents) gets a fresh id per send: resolving twice is harmless, and an id
reused for a later episode's resolve would be dropped. `webhook-timestamp` is taken at each attempt; the body's own
`timestamp`, once per send, so every attempt sends the same body.

What a status means (Standard Webhooks' delivery guidance): 2xx delivered; 3xx a failure and not followed (a
redirected URL is a misconfiguration: point the policy at the final URL); 410 the receiver retired the endpoint
(not retried); 429 and 5xx retried, honouring `Retry-After`; other 4xx refusals (not retried).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from findings_router.domain.notifications import Notification, NotifyContext
from findings_router.notify import DeliveryError, DeliveryResult, Reason
from findings_router.notify.http import classify as common
from findings_router.notify.http import new_session, retryable_error, service_reason
from findings_router.notify.retry import Retrier
from findings_router.notify.webhook.chat import slack_body, teams_body
from findings_router.notify.webhook.payload import build_body, encode
from findings_router.notify.webhook.signing import SecretError, secret_keys, webhook_headers

Format = Literal["standard", "slack", "teams"]
FORMATS: tuple[Format, ...] = ("standard", "slack", "teams")
CHANNEL = "webhook"
CHANNELS: dict[str, str] = {"standard": CHANNEL, "slack": "Slack", "teams": "Microsoft Teams"}
USER_AGENT = "findings-router-webhook/1"
_URL_SECRET_MIN = 16  # path segments and query values at least this long are treated as secret (tokens, `sig`)


def classify(status: int) -> tuple[bool, Reason, str] | None:
    """None: delivered. Otherwise (retryable, reason, what went wrong)."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return False, "rejected", f"answered a redirect ({status}), which is not followed: configure the final URL"
    if status == 410:
        return False, "rejected", "endpoint gone (410): the receiver retired this URL; replace it in the policy"
    retryable, reason = common(status) or (True, "unavailable")
    return retryable, reason, f"refused the delivery ({status})" if reason == "rejected" else f"HTTP {status}"


def message_id(n: Notification, context: NotifyContext) -> str | None:
    """The `webhook-id` of a notification: stable across sends of the same notification; None when nothing tells
    one occurrence of it from the next (a resolve by key alone), and a fresh id must be made."""
    parts = [context.environment, n.key, n.kind, str(context.episode)]
    if n.storm is not None:
        parts += ["storm", str(n.storm.count)]
    if n.meta is not None:
        parts += ["meta", n.meta.kind, n.meta.name, n.meta.changed_at]
    if context.episode <= 0 and not (n.meta is not None and n.meta.changed_at):
        return None
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()[:20]
    return "msg_" + base64.b32encode(digest).decode().lower()


def url_secrets(url: str) -> tuple[str, ...]:
    """What of a webhook URL must never reach a log: the URL, and its token-like path segments and query values."""
    parts = urlsplit(url)
    found = [url]
    found += [s for s in parts.path.split("/") if len(s) >= _URL_SECRET_MIN]
    found += [v for _, v in parse_qsl(parts.query) if len(v) >= _URL_SECRET_MIN]
    return tuple(found)


def _post_bytes(session: Any, url: str, data: bytes, headers: dict[str, str], timeout: float) -> Any:
    """One POST of exactly `data` (what was signed), redirects not followed. Network errors name only their type."""
    import requests

    try:
        return session.post(url, data=data, headers=headers, timeout=timeout, allow_redirects=False)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise DeliveryError(type(exc).__name__, retryable=True, reason="network") from None


class WebhookNotifier:
    """Sends through `retrier` (one per container). `url` and `secret` may be callables, read at each send (a rotated
    secret in Secrets Manager is picked up); `secret` is required for `standard` and unused by the chat presets.
    `clock` gives unix seconds (the body's `timestamp` and each attempt's `webhook-timestamp`)."""

    def __init__(
        self,
        url: str | Callable[[], str],
        secret: str | Callable[[], str] | None,
        retrier: Retrier,
        *,
        format: Format = "standard",
        session: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if format not in FORMATS:
            raise ValueError(f"unknown webhook format {format!r} (one of: {', '.join(FORMATS)})")
        if format == "standard" and secret is None:
            raise ValueError("a standard webhook is signed: give its whsec_ secret")
        self.format: Format = format
        self.channel = CHANNELS[format]
        self._url = url
        self._secret = secret
        self.retrier = retrier
        self._session = session or new_session()
        self._clock = clock

    def body(self, notification: Notification, context: NotifyContext) -> dict[str, Any]:
        """What this notifier sends for `notification`, as JSON (the twin records the same)."""
        return render(self.format, notification, context, self._clock())

    def send(self, notification: Notification, context: NotifyContext) -> DeliveryResult:
        url = self._url() if callable(self._url) else self._url
        secrets = url_secrets(url)
        keys: list[bytes] = []
        if self.format == "standard":
            secret = self._secret() if callable(self._secret) else self._secret
            assert secret is not None
            secrets += (secret, *secret.split(), *(s.removeprefix("whsec_") for s in secret.split()))
            try:
                keys = secret_keys(secret)
            except SecretError as exc:
                raise DeliveryError(f"{self.channel}: {exc}", retryable=False, reason="rejected") from None
        data = encode(self.body(notification, context))
        msg_id = message_id(notification, context) or "msg_" + uuid.uuid4().hex
        return self.retrier.run(lambda timeout: self._post(url, data, keys, msg_id, timeout, notification, secrets))

    def _post(
        self,
        url: str,
        data: bytes,
        keys: list[bytes],
        msg_id: str,
        timeout: float,
        notification: Notification,
        secrets: tuple[str, ...],
    ) -> DeliveryResult:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if keys:
            headers |= webhook_headers(keys, msg_id, int(self._clock()), data)
        response = _post_bytes(self._session, url, data, headers, timeout)
        status = response.status_code
        verdict = classify(status)
        if verdict is None:
            return DeliveryResult(status, 1, notification.key)
        retryable, reason, what = verdict
        if retryable:
            raise retryable_error(status, reason, response)
        raise DeliveryError(
            f"{self.channel} {what}: {service_reason(response, secrets)}",
            retryable=False,
            reason=reason,
            status=status,
        )


def render(format: Format, notification: Notification, context: NotifyContext, now: float) -> dict[str, Any]:
    """The JSON body of `notification` in `format`, decided at `now` (unix seconds)."""
    if format == "slack":
        return slack_body(notification, context)
    if format == "teams":
        return teams_body(notification, context)
    return build_body(notification, context, now)
