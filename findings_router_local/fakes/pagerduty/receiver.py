"""`PagerDutyReceiver`: the Events API v2 (``POST /v2/enqueue``) served from 127.0.0.1 (standard library only).

It checks every event against the documented contract (`contract.validate_event`), keeps what PagerDuty would make
of the events (`incidents.IncidentBook`), can rate-limit per routing key with an injectable clock, and can inject
faults (429/5xx, hangs, dropped connections) so clients can be tested against a live socket.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

from findings_router_local.fakes.pagerduty.contract import (
    ENQUEUE_PATH,
    INVALID_MESSAGE,
    INVALID_STATUS,
    MAX_BODY_BYTES,
    RATE_WINDOW_SECONDS,
    THROTTLE_BODY,
    UNRECOGNIZED_MESSAGE,
    UNRECOGNIZED_STATUS,
    validate_event,
)
from findings_router_local.fakes.pagerduty.incidents import Incident, IncidentBook
from findings_router_local.loopback_http import Answer, LoopbackServer, LoopbackService


@dataclass(frozen=True)
class Fault:
    """One injected answer, used instead of normal processing for one request."""

    status: int
    retry_after: str | None = None
    hang: bool = False
    close: bool = False


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
    return _json_answer(400, {"status": INVALID_STATUS, "message": INVALID_MESSAGE, "errors": errors})


def _unrecognized(errors: list[str]) -> Answer:
    return _json_answer(400, {"status": UNRECOGNIZED_STATUS, "message": UNRECOGNIZED_MESSAGE, "errors": errors})


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


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
        self._book = IncidentBook()
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
            return dict(self._book.by_dedup_key)

    @property
    def all_incidents(self) -> list[Incident]:
        """Every incident ever opened, in order."""
        with self._lock:
            return list(self._book.all)

    @property
    def notifications(self) -> int:
        """How many times a human would have been notified (new incidents)."""
        with self._lock:
            return self._book.notifications

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
            self._book.clear()
            self._windows.clear()

    def operator_action(self, incident: Incident, action: str, agent: str) -> dict[str, Any]:
        """An operator acknowledges or resolves in the PagerDuty app: the incident changes, and PagerDuty emits a
        Webhooks v3 delivery, returned here for the caller to sign and send."""
        with self._lock:
            return self._book.operator_action(incident, action, agent)

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
                {"status": INVALID_STATUS, "message": INVALID_MESSAGE, "errors": ["injected fault"]},
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
        dedup_key = self._book.apply(event, self.clock())
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
