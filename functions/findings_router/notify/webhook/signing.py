"""Standard Webhooks 1.0 signatures (symmetric, `v1`): what a signed delivery's `webhook-*` headers hold.

Spec (standard-webhooks/standard-webhooks `spec/standard-webhooks.md`): the signed content is
``"{webhook-id}.{webhook-timestamp}.{body}"``; the signature is the base64 HMAC-SHA256 of it, keyed with the secret's
bytes, sent as ``v1,<base64>``. Secrets are written ``whsec_<base64 of 24–64 random bytes>``. `webhook-signature`
is a space-separated list, so during a rotation the old and the new secret both sign and receivers holding either
verify. Asymmetric `v1a` (ed25519) signatures are not supported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64


class SecretError(ValueError):
    """A signing secret that is not a `whsec_` secret. The message never contains the secret."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of one `whsec_<base64>` secret (the prefix is optional, as in the reference library)."""
    text = secret.strip()
    if text.startswith(SECRET_PREFIX):
        text = text[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("a webhook signing secret is not base64 after its whsec_ prefix") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise SecretError(
            f"a webhook signing secret holds {len(key)} bytes; Standard Webhooks wants {MIN_KEY_BYTES}–{MAX_KEY_BYTES}"
        )
    return key


def secret_keys(secrets: str) -> list[bytes]:
    """The keys of a space-separated list of secrets (several during a rotation)."""
    keys = [secret_key(s) for s in secrets.split()]
    if not keys:
        raise SecretError("the webhook signing secret is empty")
    return keys


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of `body`, sent as `msg_id` at `timestamp` (unix seconds)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signature_header(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one signature per key, space-separated."""
    return " ".join(signature(key, msg_id, timestamp, body) for key in keys)


def webhook_headers(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed delivery."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, msg_id, timestamp, body),
    }
