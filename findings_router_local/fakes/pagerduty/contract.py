"""What PagerDuty's Events API v2 accepts: `validate_event` checks one decoded event body against the documented
contract, and the constants here are the answers' documented shapes.

Sources: PagerDuty/api-schema ``reference/events-v2/openapiv3.json`` and PagerDuty/developer-docs
``docs/events-API-v2`` (Overview, Trigger Events, Rate Limits). Where PagerDuty documents no body (429, unknown
fields), the answers here are this stand-in's own choice and are stricter than PagerDuty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

ENQUEUE_PATH = "/v2/enqueue"
MAX_BODY_BYTES = 512 * 1024  # "Events API payloads are limited to 512 KB"
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_SOURCE = 255
ROUTING_KEY_LENGTH = 32
RATE_WINDOW_SECONDS = 60.0
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
_TOP_LEVEL_KEYS = frozenset(
    {"routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images"}
)
_PAYLOAD_KEYS = frozenset(
    {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
)

# Bodies. 202 and 400 ("invalid event") are PagerDuty's real shapes; the
# "Unrecognized object" body is the documented example of the error schema.
INVALID_STATUS = "invalid event"
INVALID_MESSAGE = "Event object is invalid"
UNRECOGNIZED_STATUS = "Unrecognized object"
UNRECOGNIZED_MESSAGE = "Event object format is unrecognized"
# PagerDuty documents no 429 body for Events v2 ("429 - Request Limit Exceeded");
# this is the body its Events API v1 throttle answered with.
THROTTLE_BODY: dict[str, Any] = {
    "status": "throttle exceeded",
    "message": "Requests for this service are arriving too quickly. Please retry later.",
}


# --------------------------------------------------------------------------- checks


def _check_string(
    obj: dict[str, Any],
    key: str,
    name: str,
    errors: list[str],
    *,
    required: bool = False,
    max_len: int | None = None,
) -> str | None:
    if key not in obj:
        if required:
            errors.append(f"'{name}' is missing or blank")
        return None
    value = obj[key]
    if not isinstance(value, str):
        errors.append(f"'{name}' must be a string")
        return None
    if required and not value.strip():
        errors.append(f"'{name}' is missing or blank")
        return None
    if max_len is not None and len(value) > max_len:
        errors.append(f"'{name}' is too long (maximum is {max_len} characters, got {len(value)})")
    return value


def _check_routing_key(event: dict[str, Any], routing_keys: set[str] | None, errors: list[str]) -> None:
    key = _check_string(event, "routing_key", "routing_key", errors, required=True)
    if key is None:
        return
    if routing_keys is not None:
        if key not in routing_keys:
            errors.append("Invalid routing key")
        return
    if len(key) != ROUTING_KEY_LENGTH:
        errors.append(f"Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} characters)")
    if not key.isascii() or not key.isalnum():
        errors.append("'routing_key' cannot contain non-alphanumeric characters.")


def _check_timestamp(payload: dict[str, Any], errors: list[str]) -> None:
    value = _check_string(payload, "timestamp", "payload.timestamp", errors)
    if value is None:
        return
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors.append(f"'payload.timestamp' is not a valid ISO 8601 timestamp: {value!r}")


def _check_payload(event: dict[str, Any], errors: list[str]) -> None:
    if "payload" not in event:
        errors.append("'payload' is missing (required for trigger events)")
        return
    payload = event["payload"]
    if not isinstance(payload, dict):
        errors.append("'payload' must be an object")
        return
    _check_string(payload, "summary", "payload.summary", errors, required=True, max_len=MAX_SUMMARY)
    _check_string(payload, "source", "payload.source", errors, required=True, max_len=MAX_SOURCE)
    if "severity" not in payload:
        errors.append("'payload.severity' is missing or blank")
    elif payload["severity"] not in SEVERITIES:
        errors.append(
            f"'payload.severity' is invalid (must be one of: {', '.join(SEVERITIES)}; got {payload['severity']!r})"
        )
    _check_timestamp(payload, errors)
    for key in ("component", "group", "class"):
        _check_string(payload, key, f"payload.{key}", errors)
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    errors.extend(f"Unknown field 'payload.{key}'" for key in sorted(set(payload) - _PAYLOAD_KEYS))


def _check_links(event: dict[str, Any], errors: list[str]) -> None:
    if "links" not in event:
        return
    links = event["links"]
    if not isinstance(links, list):
        errors.append("'links' must be an array")
        return
    for i, link in enumerate(links):
        if not isinstance(link, dict):
            errors.append(f"'links[{i}]' must be an object")
            continue
        _check_string(link, "href", f"links[{i}].href", errors, required=True)
        _check_string(link, "text", f"links[{i}].text", errors)


def _is_https_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme.lower() == "https" and bool(parts.netloc)


def _check_images(event: dict[str, Any], errors: list[str]) -> None:
    if "images" not in event:
        return
    images = event["images"]
    if not isinstance(images, list):
        errors.append("'images' must be an array")
        return
    for i, image in enumerate(images):
        if not isinstance(image, dict):
            errors.append(f"'images[{i}]' must be an object")
            continue
        src = _check_string(image, "src", f"images[{i}].src", errors, required=True)
        if src is not None and src.strip() and not _is_https_url(src):
            errors.append(f"'images[{i}].src' must be an https URL (images must be served via HTTPS)")
        _check_string(image, "href", f"images[{i}].href", errors)
        _check_string(image, "alt", f"images[{i}].alt", errors)


def validate_event(event: dict[str, Any], routing_keys: set[str] | None = None) -> list[str]:
    """Return every contract error found in one decoded event body (empty list: valid)."""
    errors: list[str] = []
    errors.extend(f"Unknown field '{key}'" for key in sorted(set(event) - _TOP_LEVEL_KEYS))
    _check_routing_key(event, routing_keys, errors)
    action = event.get("event_action")
    if "event_action" not in event:
        errors.append("'event_action' is missing or blank")
    elif action not in EVENT_ACTIONS:
        errors.append(f"'event_action' is invalid (must be one of: {', '.join(EVENT_ACTIONS)}; got {action!r})")
    if action in ("acknowledge", "resolve") and "dedup_key" not in event:
        errors.append(f"'dedup_key' is required for {action} events")
    else:
        _check_string(event, "dedup_key", "dedup_key", errors, required="dedup_key" in event, max_len=MAX_DEDUP_KEY)
    if action == "trigger":
        _check_payload(event, errors)
    _check_links(event, errors)
    _check_images(event, errors)
    _check_string(event, "client", "client", errors)
    _check_string(event, "client_url", "client_url", errors)
    return errors
