"""`PagerDutyReceiver`: the Events API v2 (``POST /v2/enqueue``) served from 127.0.0.1 (standard library only).

It checks every event against the documented contract (`contract.validate_event`), keeps what PagerDuty would make
of the events (`incidents.IncidentBook`), can rate-limit per routing key with an injectable clock, and can inject
faults (429/5xx, hangs, dropped connections) so clients can be tested against a live socket (`fakes.service`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from findings_router_local.fakes.pagerduty.contract import (
    ENQUEUE_PATH,
    INVALID_MESSAGE,
    INVALID_STATUS,
    MAX_BODY_BYTES,
    THROTTLE_BODY,
    UNRECOGNIZED_MESSAGE,
    UNRECOGNIZED_STATUS,
    validate_event,
)
from findings_router_local.fakes.pagerduty.incidents import Incident, IncidentBook
from findings_router_local.fakes.service import BookedStandIn, ReceivedRequest, header, media_type
from findings_router_local.loopback_http import Answer

_FAULT_BODIES: dict[int, dict[str, Any]] = {
    429: THROTTLE_BODY,
    400: {"status": INVALID_STATUS, "message": INVALID_MESSAGE, "errors": ["injected fault"]},
    500: {"status": "Internal Server Error", "message": "injected fault", "errors": ["injected fault"]},
}


def _json_answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps(body).encode(), headers=dict(headers or {}))


def _invalid(errors: list[str]) -> Answer:
    return _json_answer(400, {"status": INVALID_STATUS, "message": INVALID_MESSAGE, "errors": errors})


def _unrecognized(errors: list[str]) -> Answer:
    return _json_answer(400, {"status": UNRECOGNIZED_STATUS, "message": UNRECOGNIZED_MESSAGE, "errors": errors})


class PagerDutyReceiver(BookedStandIn[dict[str, Any], tuple[dict[str, Any] | None, list[str]], Incident]):
    """A PagerDuty Events API v2 look-alike served from 127.0.0.1 on a free port. `accepted`: the event bodies
    answered 202; `rejected`: the bodies answered 400 (None when unparsed), with the contract errors found."""

    _book: IncidentBook

    def __init__(
        self,
        routing_keys: set[str] | None = None,
        rate_limit_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            name="pagerduty-receiver",
            too_large=f"Request body exceeds {MAX_BODY_BYTES} bytes (512 KB)",
            rate_limit_per_minute=rate_limit_per_minute,
            clock=clock,
        )
        self.routing_keys = set(routing_keys) if routing_keys is not None else None
        self._book = IncidentBook()

    @property
    def url(self) -> str:
        """The enqueue URL, for example ``http://127.0.0.1:54321/v2/enqueue``."""
        return self.base_url + ENQUEUE_PATH

    # ---- what PagerDuty made of the events (snapshots taken under the lock)

    @property
    def incidents(self) -> dict[str, Incident]:
        """The current incident for each dedup_key."""
        with self._lock:
            return dict(self._book.by_dedup_key)

    @property
    def all_incidents(self) -> list[Incident]:
        """Every incident ever opened, in order."""
        return self._opened()

    def operator_action(self, incident: Incident, action: str, agent: str) -> dict[str, Any]:
        """An operator acknowledges or resolves in the PagerDuty app: the incident changes, and PagerDuty emits a
        Webhooks v3 delivery, returned here for the caller to sign and send."""
        with self._lock:
            return self._book.operator_action(incident, action, agent)

    # ---- request handling (the lock is held)

    def _fault_answer(self, status: int, headers: dict[str, str]) -> Answer | None:
        body = _FAULT_BODIES.get(status)
        return _json_answer(status, body, headers) if body is not None else None

    def _process(self, record: ReceivedRequest, problem: str | None) -> Answer:
        """Contract checks, rate limit and the incident model."""
        method, path, headers, body = record.method, record.path, record.headers, record.body
        if method != "POST" or urlsplit(path).path != ENQUEUE_PATH:
            return _json_answer(404, {"status": "Not Found", "message": f"No route for {method} {path}"})
        if header(headers, "Content-Length") is None:
            return _json_answer(411, {"status": "Length Required", "message": "Content-Length is required"})
        if problem is None and len(body) > MAX_BODY_BYTES:
            problem = f"Request body exceeds {MAX_BODY_BYTES} bytes (512 KB)"
        if problem is not None:
            self._rejected.append((None, [problem]))
            return _unrecognized([problem])
        if media_type(headers) != "application/json":
            errors = [f"Content-Type must be application/json (got {header(headers, 'Content-Type')!r})"]
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
        wait = self._rate_limit_wait(event["routing_key"])
        if wait is not None:
            return _json_answer(429, THROTTLE_BODY, {"Retry-After": str(wait)})
        dedup_key = self._book.apply(event, self.clock())
        self._accepted.append(event)
        return _json_answer(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})
