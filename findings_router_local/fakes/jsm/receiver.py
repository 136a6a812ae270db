"""`JsmReceiver`: JSM Ops' integration-events API served from 127.0.0.1 (standard library only).

It checks every request against the documented contract (`contract`: route, `GenieKey`, body), keeps what JSM would
make of them (`alerts.AlertBook`: alerts by alias, request statuses), can rate-limit per API key with an injectable
clock, can inject faults (429 with `Retry-After`, 5xx, hangs, dropped connections), and produces the outgoing-webhook
"alert action data" of a person acknowledging or closing an alert (`operator_action`).
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from findings_router_local.fakes.jsm.alerts import Alert, AlertBook, RequestStatus
from findings_router_local.fakes.jsm.contract import (
    ACCEPTED_RESULT,
    ALERTS_PATH,
    MAX_BODY_BYTES,
    THROTTLED_MESSAGE,
    UNAUTHORIZED_MESSAGE,
    UNPROCESSABLE_MESSAGE,
    Route,
    action_errors,
    api_key_problem,
    create_errors,
    parse_route,
)
from findings_router_local.loopback_http import Answer, LoopbackServer, LoopbackService

RATE_WINDOW_SECONDS = 60.0


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
    request_id: str | None = None


def _answer(status: int, message: str | None = None, headers: dict[str, str] | None = None, **extra: Any) -> Answer:
    request_id = str(uuid.uuid4())
    body: dict[str, Any] = {"message": message} if message is not None else {}
    body.update(extra)
    body |= {"took": 0.002, "requestId": request_id}
    return Answer(status, json.dumps(body).encode(), headers=dict(headers or {}))


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


class JsmReceiver(LoopbackService):
    """A JSM Ops integration-events look-alike on 127.0.0.1 (a free port). `api_keys`: the keys accepted (None: any
    well-formed `GenieKey`)."""

    def __init__(
        self,
        api_keys: set[str] | None = None,
        rate_limit_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be at least 1")
        self.api_keys = set(api_keys) if api_keys is not None else None
        self.rate_limit_per_minute = rate_limit_per_minute
        self.clock = clock
        self.wall_clock = wall_clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._http = LoopbackServer(self, name="jsm-receiver", too_large="Request body too large")
        self._stopping = False
        self._hang_generation = 0
        self._faults: deque[Fault] = deque()
        self._requests: list[ReceivedRequest] = []
        self._accepted: list[tuple[Route, dict[str, Any]]] = []
        self._rejected: list[tuple[Any, dict[str, str]]] = []
        self._book = AlertBook()
        self._windows: dict[str, deque[float]] = {}

    # ---- lifecycle

    def start(self) -> Self:
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
        """What `JsmNotifier` takes as its base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The create URL, e.g. ``http://127.0.0.1:54321/jsm/ops/integration/v2/alerts``."""
        return self.base_url + ALERTS_PATH

    # ---- faults

    def fail_next(self, *faults: Fault) -> None:
        """Queue faults, answered one per request before normal processing resumes."""
        with self._lock:
            self._faults.extend(faults)

    def fail_for(self, n: int, fault: Fault) -> None:
        self.fail_next(*([fault] * n))

    def release_hangs(self) -> None:
        """Let every request currently held by a `hang` fault answer."""
        with self._cond:
            self._hang_generation += 1
            self._cond.notify_all()

    # ---- observed state (snapshots taken under the lock)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def accepted(self) -> list[tuple[Route, dict[str, Any]]]:
        """Requests answered 202: their route and body."""
        with self._lock:
            return list(self._accepted)

    @property
    def rejected(self) -> list[tuple[Any, dict[str, str]]]:
        """Requests refused for their key or body (401, 413, 415, 422), with the errors found by field."""
        with self._lock:
            return list(self._rejected)

    @property
    def alerts(self) -> dict[str, Alert]:
        """The current (latest) alert of each alias."""
        with self._lock:
            return dict(self._book.by_alias)

    @property
    def all_alerts(self) -> list[Alert]:
        with self._lock:
            return list(self._book.all)

    @property
    def notifications(self) -> int:
        """How many times a responder would have been notified (new alerts)."""
        with self._lock:
            return self._book.notifications

    def request_status(self, request_id: str) -> RequestStatus | None:
        """What JSM's request-status lookup reports for an accepted request (None: unknown id)."""
        with self._lock:
            return self._book.statuses.get(request_id)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    def reset(self) -> None:
        """Forget requests, alerts, queued faults and rate-limit windows."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._accepted.clear()
            self._rejected.clear()
            self._book.clear()
            self._windows.clear()

    def operator_action(self, alert: Alert, action: str, user: str, note: str | None = None) -> dict[str, Any]:
        """A person acts on `alert` in JSM ("Acknowledge", "UnAcknowledge", "Close", "AddNote"): the alert changes,
        and the outgoing webhook's "alert action data" is returned for the caller to deliver."""
        with self._lock:
            return self._book.operator_action(alert, action, user, self.wall_clock(), note)

    # ---- request handling (called from handler threads)

    def handle_request(
        self, method: str, path: str, headers: dict[str, str], body: bytes, problem: str | None
    ) -> Answer | None:
        with self._cond:
            record = ReceivedRequest(method, path, headers, body, None)
            self._requests.append(record)
            self._cond.notify_all()
            fault = self._faults.popleft() if self._faults else None
            if fault is not None:
                record.fault = fault
                return self._answer_fault(record, fault)
            answer = self._process(record, problem)
            record.status = answer.status
            return answer

    def _answer_fault(self, record: ReceivedRequest, fault: Fault) -> Answer | None:
        """The faulted answer; the lock is held (and released while hanging)."""
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
            return _answer(429, THROTTLED_MESSAGE, headers)
        if fault.status == 422:
            return _answer(422, UNPROCESSABLE_MESSAGE, headers, errors={"body": "injected fault"})
        if fault.status < 500:
            return _answer(fault.status, "injected fault", headers)
        text = f"<html><body><h1>{fault.status}</h1>injected fault</body></html>\n".encode()
        return Answer(fault.status, text, content_type="text/html", headers=headers)

    def _process(self, record: ReceivedRequest, problem: str | None) -> Answer:
        """Route, key, contract checks, rate limit and the alert model; the lock is held."""
        route = parse_route(record.method, record.path)
        if isinstance(route, str):
            return _answer(404 if route.startswith("No route") else 422, route)
        key_problem = api_key_problem(record.headers, self.api_keys)
        if key_problem is not None:
            self._rejected.append((None, {"Authorization": key_problem}))
            return _answer(401 if key_problem == UNAUTHORIZED_MESSAGE else 422, key_problem)
        if _header(record.headers, "Content-Length") is None:
            return _answer(411, "Content-Length is required")
        if problem is None and len(record.body) > MAX_BODY_BYTES:
            problem = f"Request body exceeds {MAX_BODY_BYTES} bytes"
        if problem is not None:
            self._rejected.append((None, {"body": problem}))
            return _answer(413, problem)
        media_type = (_header(record.headers, "Content-Type") or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            errors = {"Content-Type": f"must be application/json (got {media_type or 'none'!r})"}
            self._rejected.append((None, errors))
            return _answer(415, "Unsupported Media Type", errors=errors)
        try:
            body = json.loads(record.body) if record.body else {}
        except ValueError:
            self._rejected.append((None, {"body": "JSON parse error"}))
            return _answer(422, UNPROCESSABLE_MESSAGE, errors={"body": "JSON parse error"})
        record.json = body
        errors = create_errors(body) if route.action == "create" else action_errors(route.action, body)
        if errors:
            self._rejected.append((body, errors))
            return _answer(422, UNPROCESSABLE_MESSAGE, errors=errors)
        throttled = self._throttle(_header(record.headers, "Authorization") or "")
        if throttled is not None:
            return throttled
        request_id = str(uuid.uuid4())
        record.request_id = request_id
        if route.action == "create":
            self._book.create(body, self.wall_clock(), request_id)
        else:
            self._book.act(route, body, self.wall_clock(), request_id)
        self._accepted.append((route, body))
        answer = {"result": ACCEPTED_RESULT, "took": 0.011, "requestId": request_id}
        return Answer(202, json.dumps(answer).encode())

    def _throttle(self, api_key: str) -> Answer | None:
        """Sliding 60 s window per API key; None when the request may pass."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return None
        now = self.clock()
        window = self._windows.setdefault(api_key, deque())
        while window and window[0] <= now - RATE_WINDOW_SECONDS:
            window.popleft()
        if len(window) >= limit:
            wait = max(1, math.ceil(window[0] + RATE_WINDOW_SECONDS - now))
            return _answer(429, THROTTLED_MESSAGE, {"Retry-After": str(wait)})
        window.append(now)
        return None
