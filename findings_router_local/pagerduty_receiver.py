"""A local stand-in for PagerDuty's Events API v2 (``POST /v2/enqueue``).

It runs a real HTTP server on 127.0.0.1 (standard library only), checks every
event against the documented contract, models what PagerDuty would make of the
events (dedup by routing key + dedup_key, acknowledge, resolve), can rate-limit
per routing key with an injectable clock, and can inject faults (429/5xx, hangs,
dropped connections) so clients can be tested against a live socket.

Sources for the contract: PagerDuty/api-schema ``reference/events-v2/openapiv3.json``
and PagerDuty/developer-docs ``docs/events-API-v2`` (Overview, Trigger Events,
Rate Limits). Where PagerDuty documents no body (429, unknown fields), the
answers here are this receiver's own choice and are stricter than PagerDuty.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self
from urllib.parse import urlsplit

from findings_router_local.loopback_http import Answer, LoopbackServer, LoopbackService
from findings_router_local.tables import clip, render_table

__all__ = [
    "ENQUEUE_PATH",
    "EVENT_ACTIONS",
    "MAX_BODY_BYTES",
    "SEVERITIES",
    "Fault",
    "Incident",
    "PagerDutyReceiver",
    "ReceivedRequest",
    "render_incidents",
    "validate_event",
]

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
_INVALID_STATUS = "invalid event"
_INVALID_MESSAGE = "Event object is invalid"
_UNRECOGNIZED_STATUS = "Unrecognized object"
_UNRECOGNIZED_MESSAGE = "Event object format is unrecognized"
# PagerDuty documents no 429 body for Events v2 ("429 - Request Limit Exceeded");
# this is the body its Events API v1 throttle answered with.
THROTTLE_BODY: dict[str, Any] = {
    "status": "throttle exceeded",
    "message": "Requests for this service are arriving too quickly. Please retry later.",
}


@dataclass(frozen=True)
class Fault:
    """One injected answer, used instead of normal processing for one request."""

    status: int
    retry_after: str | None = None
    hang: bool = False
    close: bool = False


@dataclass
class Incident:
    """What PagerDuty would make of the events (one alert == one incident here)."""

    number: int
    dedup_key: str
    routing_key: str
    status: str
    severity: str
    summary: str
    source: str
    custom_details: dict[str, Any]
    links: list[Any]
    trigger_count: int
    created_at: float
    log: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """True while triggered or acknowledged."""
        return self.status != "resolved"


@dataclass
class ReceivedRequest:
    """One HTTP request as received, and the status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any | None
    status: int | None = None  # None: no answer (dropped connection or still hanging)
    fault: Fault | None = None


def _json_answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(body).encode(), headers=dict(headers or {}))


def _invalid(errors: list[str]) -> Answer:
    return _json_answer(400, {"status": _INVALID_STATUS, "message": _INVALID_MESSAGE, "errors": errors})


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _unrecognized(errors: list[str]) -> Answer:
    return _json_answer(400, {"status": _UNRECOGNIZED_STATUS, "message": _UNRECOGNIZED_MESSAGE, "errors": errors})


# --------------------------------------------------------------------------- contract checks


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


# --------------------------------------------------------------------------- server


class PagerDutyReceiver(LoopbackService):
    """A PagerDuty Events API v2 look-alike served from 127.0.0.1 on a free port."""

    def __init__(
        self,
        routing_keys: set[str] | None = None,
        rate_limit_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be at least 1")
        self.routing_keys = set(routing_keys) if routing_keys is not None else None
        self.rate_limit_per_minute = rate_limit_per_minute
        self.clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._http = LoopbackServer(
            self, name="pagerduty-receiver", too_large=f"Request body exceeds {MAX_BODY_BYTES} bytes (512 KB)"
        )
        self._stopping = False
        self._hang_generation = 0
        self._faults: deque[Fault] = deque()
        self._requests: list[ReceivedRequest] = []
        self._accepted: list[dict[str, Any]] = []
        self._rejected: list[tuple[dict[str, Any] | None, list[str]]] = []
        self._incidents: dict[str, Incident] = {}
        self._open: dict[tuple[str, str], Incident] = {}
        self._all_incidents: list[Incident] = []
        self._notifications = 0
        self._windows: dict[str, deque[float]] = {}

    # ---- lifecycle

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        with self._lock:
            self._stopping = False
        return super().start()

    def stop(self) -> None:
        """Release hanging requests, stop serving and join the server thread."""
        if not self._http.running:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        super().stop()

    @property
    def base_url(self) -> str:
        """For example ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The enqueue URL, for example ``http://127.0.0.1:54321/v2/enqueue``."""
        return self.base_url + ENQUEUE_PATH

    # ---- faults

    def fail_next(self, *faults: Fault) -> None:
        """Queue faults, answered one per request before normal processing resumes."""
        with self._lock:
            self._faults.extend(faults)

    def fail_for(self, n: int, fault: Fault) -> None:
        """Answer the next ``n`` requests with ``fault``."""
        self.fail_next(*([fault] * n))

    def release_hangs(self) -> None:
        """Let every request currently held by a ``hang`` fault answer."""
        with self._cond:
            self._hang_generation += 1
            self._cond.notify_all()

    # ---- observed state (snapshots taken under the lock)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """Event bodies answered 202."""
        with self._lock:
            return list(self._accepted)

    @property
    def rejected(self) -> list[tuple[dict[str, Any] | None, list[str]]]:
        """Bodies answered 400, with the contract errors found."""
        with self._lock:
            return list(self._rejected)

    @property
    def incidents(self) -> dict[str, Incident]:
        """The current incident for each dedup_key."""
        with self._lock:
            return dict(self._incidents)

    @property
    def all_incidents(self) -> list[Incident]:
        """Every incident ever opened, in order."""
        with self._lock:
            return list(self._all_incidents)

    @property
    def notifications(self) -> int:
        """How many times a human would have been notified (new incidents)."""
        with self._lock:
            return self._notifications

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests were received; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    def reset(self) -> None:
        """Forget requests, incidents, queued faults and rate-limit windows."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._accepted.clear()
            self._rejected.clear()
            self._incidents.clear()
            self._open.clear()
            self._all_incidents.clear()
            self._notifications = 0
            self._windows.clear()

    # ---- request handling (called from handler threads)

    def handle_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, problem: str | None
    ) -> Answer | None:
        with self._cond:
            record = ReceivedRequest(method, path, headers, body, None)
            self._requests.append(record)
            self._cond.notify_all()  # wakes wait_for_requests(); hanging handlers re-check and keep waiting
            fault = self._faults.popleft() if self._faults else None
            if fault is not None:
                record.fault = fault
                return self._answer_fault(record, fault)
            answer = self._process(record, problem)
            record.status = answer.status
            return answer

    def _answer_fault(self, record: ReceivedRequest, fault: Fault) -> Answer | None:
        """Build the faulted answer; the lock is held (and released while hanging)."""
        if fault.hang:
            generation = self._hang_generation
            while not self._stopping and self._hang_generation == generation:
                self._cond.wait()
            if self._stopping:
                return None
        if fault.close:
            return None
        record.status = fault.status
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        if fault.status == 429:
            return _json_answer(429, THROTTLE_BODY, headers)
        if fault.status == 400:
            return _json_answer(
                400,
                {"status": _INVALID_STATUS, "message": _INVALID_MESSAGE, "errors": ["injected fault"]},
                headers,
            )
        if fault.status == 500:
            body = {
                "status": "Internal Server Error",
                "message": "injected fault",
                "errors": ["injected fault"],
            }
            return _json_answer(500, body, headers)
        text = f"<html><body><h1>{fault.status}</h1>injected fault</body></html>\n".encode()
        return Answer(fault.status, text, content_type="text/html", headers=headers)

    def _process(self, record: ReceivedRequest, problem: str | None) -> Answer:
        """Contract checks, rate limit and the incident model; the lock is held."""
        method, path, headers, body = record.method, record.path, record.headers, record.body
        if method != "POST" or urlsplit(path).path != ENQUEUE_PATH:
            return _json_answer(404, {"status": "Not Found", "message": f"No route for {method} {path}"})
        if _header(headers, "Content-Length") is None:
            return _json_answer(411, {"status": "Length Required", "message": "Content-Length is required"})
        if problem is None and len(body) > MAX_BODY_BYTES:
            problem = f"Request body exceeds {MAX_BODY_BYTES} bytes (512 KB)"
        if problem is not None:
            self._rejected.append((None, [problem]))
            return _unrecognized([problem])
        content_type = _header(headers, "Content-Type")
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            errors = [f"Content-Type must be application/json (got {content_type!r})"]
            self._rejected.append((None, errors))
            return _unrecognized(errors)
        try:
            event = json.loads(body)
        except ValueError:
            self._rejected.append((None, ["JSON parse error"]))
            return _unrecognized(["JSON parse error"])
        record.json = event
        if not isinstance(event, dict):
            errors = ["Event must be a JSON object"]
            self._rejected.append((None, errors))
            return _unrecognized(errors)
        errors = validate_event(event, self.routing_keys)
        if errors:
            self._rejected.append((event, errors))
            return _invalid(errors)
        throttled = self._throttle(event["routing_key"])
        if throttled is not None:
            return throttled
        dedup_key = self._apply(event)
        self._accepted.append(event)
        return _json_answer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})

    def _throttle(self, routing_key: str) -> Answer | None:
        """Sliding 60 s window per routing key; None when the event may pass."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return None
        now = self.clock()
        window = self._windows.setdefault(routing_key, deque())
        while window and window[0] <= now - RATE_WINDOW_SECONDS:
            window.popleft()
        if len(window) >= limit:
            wait = max(1, math.ceil(window[0] + RATE_WINDOW_SECONDS - now))
            return _json_answer(429, THROTTLE_BODY, {"Retry-After": str(wait)})
        window.append(now)
        return None

    def operator_action(self, incident: Incident, action: str, agent: str) -> dict[str, Any]:
        """An operator acknowledges or resolves in the PagerDuty app: the incident changes, and PagerDuty emits a
        Webhooks v3 delivery, returned here for the caller to sign and send."""
        event_type = {"acknowledge": "incident.acknowledged", "resolve": "incident.resolved"}[action]
        with self._lock:
            incident.status = "acknowledged" if action == "acknowledge" else "resolved"
            incident.log.append(f"{action} by {agent}")
        return incident_webhook(incident, event_type, agent)

    def _apply(self, event: dict[str, Any]) -> str:
        """Apply one valid event to the incident model and return its dedup_key."""
        routing_key: str = event["routing_key"]
        action: str = event["event_action"]
        dedup_key: str = event.get("dedup_key") or uuid.uuid4().hex
        current = self._open.get((routing_key, dedup_key))
        if current is not None and not current.is_open:
            current = None
        if action == "trigger":
            if current is not None:
                current.trigger_count += 1
                current.log.append("trigger (deduplicated)")
                return dedup_key
            payload: dict[str, Any] = event["payload"]
            incident = Incident(
                number=len(self._all_incidents) + 1,
                dedup_key=dedup_key,
                routing_key=routing_key,
                status="triggered",
                severity=payload["severity"],
                summary=payload["summary"],
                source=payload["source"],
                custom_details=dict(payload.get("custom_details") or {}),
                links=list(event.get("links") or []),
                trigger_count=1,
                created_at=self.clock(),
                log=["trigger"],
            )
            self._open[(routing_key, dedup_key)] = incident
            self._incidents[dedup_key] = incident
            self._all_incidents.append(incident)
            self._notifications += 1
        elif current is not None:  # acknowledge/resolve without an open incident are dropped
            current.status = "acknowledged" if action == "acknowledge" else "resolved"
            current.log.append(action)
        return dedup_key


# --------------------------------------------------------------------------- webhooks


def incident_webhook(incident: Incident, event_type: str, agent: str | None) -> dict[str, Any]:
    """A Webhooks v3 body for `incident` (shape: PagerDuty developer docs, webhooks overview)."""
    incident_id = f"PDEMO{incident.number:04d}"
    base = "https://demo.pagerduty.invalid"
    user = (
        {"html_url": f"{base}/users/PDEMOU1", "id": "PDEMOU1", "self": None, "summary": agent, "type": "user_reference"}
        if agent
        else None
    )
    return {
        "event": {
            "id": uuid.uuid4().hex[:26].upper(),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "agent": user,
            "client": None,
            "data": {
                "id": incident_id,
                "type": "incident",
                "self": None,
                "html_url": f"{base}/incidents/{incident_id}",
                "number": incident.number,
                "status": incident.status,
                "incident_key": incident.dedup_key,
                "title": incident.summary,
                "urgency": "high" if incident.severity in ("critical", "error") else "low",
            },
        }
    }


# --------------------------------------------------------------------------- rendering


def render_incidents(incidents: list[Incident]) -> str:
    """Plain-text table: #, status, severity, triggers, dedup_key, summary."""
    rows = [
        (
            str(i.number),
            i.status,
            i.severity,
            str(i.trigger_count),
            i.dedup_key,
            clip(i.summary, 60),
        )
        for i in incidents
    ]
    return render_table(("#", "status", "severity", "triggers", "dedup_key", "summary"), rows, "(no incidents)")
