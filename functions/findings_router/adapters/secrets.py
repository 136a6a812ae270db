"""Secrets Manager: routing keys and webhook signing secrets, read at runtime and cached briefly."""

from __future__ import annotations

import json


def routing_key_from_secret(value: str) -> str:
    """The secret is either the bare routing key or JSON with a `routing_key` field."""
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        key = data.get("routing_key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key:
            raise ValueError("secret JSON has no routing_key string")
        return key
    return value


def secret_text(name: str) -> str:
    """A Secrets Manager secret as text, cached for 5 minutes (a rotated secret is picked up)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, max_age=300)
    return value if isinstance(value, str) else value.decode()


def signing_secrets_from(value: str) -> list[bytes]:
    """The secret is the signing secret itself, or JSON `{"signing_secrets": [...]}` (several while rotating)."""
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        secrets = data.get("signing_secrets") if isinstance(data, dict) else None
        if not isinstance(secrets, list) or not all(isinstance(s, str) and s for s in secrets):
            raise ValueError("secret JSON has no signing_secrets list of strings")
        return [s.encode() for s in secrets]
    return [value.encode()]
