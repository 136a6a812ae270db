"""`JsmReceiver`: JSM Ops' integration-events API served from 127.0.0.1 (standard library only).

It checks every request against the documented contract (`contract`: route, `GenieKey`, body), keeps what JSM would
make of them (`alerts.AlertBook`: alerts by alias, request statuses), can rate-limit per API key with an injectable
clock, can inject faults (429 with `Retry-After`, 5xx, hangs, dropped connections: `fakes.service`), and produces
the outgoing-webhook "alert action data" of a person acknowledging or closing an alert (`operator_action`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

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
from findings_router_local.fakes.service import BookedStandIn, ReceivedRequest, header, media_type
from findings_router_local.loopback_http import Answer


def _answer(status: int, message: str | None = None, headers: dict[str, str] | None = None, **extra: Any) -> Answer:
    request_id = str(uuid.uuid4())
    body: dict[str, Any] = {"message": message} if message is not None else {}
    body.update(extra)
    body |= {"took": 0.002, "requestId": request_id}
    return Answer(status, json.dumps(body).encode(), headers=dict(headers or {}))


class JsmReceiver(BookedStandIn[tuple[Route, dict[str, Any]], tuple[Any, dict[str, str]], Alert]):
    """A JSM Ops integration-events look-alike on 127.0.0.1 (a free port). `api_keys`: the keys accepted (None: any
    well-formed `GenieKey`). `accepted`: the requests answered 202 (their route and body); `rejected`: the requests
    refused for their key or body (401, 413, 415, 422), with the errors found by field."""

    _book: AlertBook

    def __init__(
        self,
        api_keys: set[str] | None = None,
        rate_limit_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name="jsm-receiver", rate_limit_per_minute=rate_limit_per_minute, clock=clock)
        self.api_keys = set(api_keys) if api_keys is not None else None
        self.wall_clock = wall_clock
        self._book = AlertBook()

    @property
    def url(self) -> str:
        """The create URL, e.g. ``http://127.0.0.1:54321/jsm/ops/integration/v2/alerts`` (`base_url` is what
        `JsmNotifier` takes)."""
        return self.base_url + ALERTS_PATH

    # ---- what JSM made of the requests (snapshots taken under the lock)

    @property
    def alerts(self) -> dict[str, Alert]:
        """The current (latest) alert of each alias."""
        with self._lock:
            return dict(self._book.by_alias)

    @property
    def all_alerts(self) -> list[Alert]:
        """Every alert ever created, in order."""
        return self._opened()

    def request_status(self, request_id: str) -> RequestStatus | None:
        """What JSM's request-status lookup reports for an accepted request (None: unknown id)."""
        with self._lock:
            return self._book.statuses.get(request_id)

    def operator_action(self, alert: Alert, action: str, user: str, note: str | None = None) -> dict[str, Any]:
        """A person acts on `alert` in JSM ("Acknowledge", "UnAcknowledge", "Close", "AddNote"): the alert changes,
        and the outgoing webhook's "alert action data" is returned for the caller to deliver."""
        with self._lock:
            return self._book.operator_action(alert, action, user, self.wall_clock(), note)

    # ---- request handling (the lock is held)

    def _fault_answer(self, status: int, headers: dict[str, str]) -> Answer | None:
        if status == 429:
            return _answer(429, THROTTLED_MESSAGE, headers)
        if status == 422:
            return _answer(422, UNPROCESSABLE_MESSAGE, headers, errors={"body": "injected fault"})
        return _answer(status, "injected fault", headers) if status < 500 else None

    def _process(self, record: ReceivedRequest, problem: str | None) -> Answer:
        """Route, key, contract checks, rate limit and the alert model."""
        route = parse_route(record.method, record.path)
        if isinstance(route, str):
            return _answer(404 if route.startswith("No route") else 422, route)
        key_problem = api_key_problem(record.headers, self.api_keys)
        if key_problem is not None:
            self._rejected.append((None, {"Authorization": key_problem}))
            return _answer(401 if key_problem == UNAUTHORIZED_MESSAGE else 422, key_problem)
        if header(record.headers, "Content-Length") is None:
            return _answer(411, "Content-Length is required")
        if problem is None and len(record.body) > MAX_BODY_BYTES:
            problem = f"Request body exceeds {MAX_BODY_BYTES} bytes"
        if problem is not None:
            self._rejected.append((None, {"body": problem}))
            return _answer(413, problem)
        content_type = media_type(record.headers)
        if content_type != "application/json":
            errors = {"Content-Type": f"must be application/json (got {content_type or 'none'!r})"}
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
        wait = self._rate_limit_wait(header(record.headers, "Authorization") or "")
        if wait is not None:
            return _answer(429, THROTTLED_MESSAGE, {"Retry-After": str(wait)})
        return self._accept(record, route, body)

    def _accept(self, record: ReceivedRequest, route: Route, body: Any) -> Answer:
        """Apply an accepted request to the alert model and answer 202 with its request id."""
        request_id = str(uuid.uuid4())
        record.request_id = request_id
        if route.action == "create":
            self._book.create(body, self.wall_clock(), request_id)
        else:
            self._book.act(route, body, self.wall_clock(), request_id)
        self._accepted.append((route, body))
        answer = {"result": ACCEPTED_RESULT, "took": 0.011, "requestId": request_id}
        return Answer(202, json.dumps(answer).encode())
