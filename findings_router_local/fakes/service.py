"""`StandIn`: what the local receivers (`PagerDutyReceiver`, `JsmReceiver`, `WebhookReceiver`) share, served from
127.0.0.1 by a `LoopbackServer` (standard library only).

Each request is recorded (`ReceivedRequest`) and wakes `wait_for_requests`; then either the next queued `Fault`
answers it (a status with `Retry-After`/`Location`, a hang until `release_hangs` or `stop`, a dropped connection) or
the receiver's own `_process` does: its contract checks and what the real service would make of the request. An
optional sliding 60-second rate limit per key (`_rate_limit_wait`) runs on an injectable clock.

Subclasses implement `_process` (and may shape faulted answers in `_fault_answer` and forget their own state in
`_forget`); everything they touch is guarded by `self._lock`, which is held while `_process` runs.
"""

from __future__ import annotations

import math
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

from findings_router_local.loopback_http import Answer, LoopbackServer, LoopbackService

RATE_WINDOW_SECONDS = 60.0

AcceptedT = TypeVar("AcceptedT")
RejectedT = TypeVar("RejectedT")
ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class Fault:
    """One injected answer, used instead of normal processing for one request: `status` (with `retry_after` as
    `Retry-After` and `location`, a redirect's target, as `Location`), or `hang` until `release_hangs` (then answer
    `status`, or drop the connection if `close`), or `close`: drop the connection without an answer."""

    status: int
    retry_after: str | None = None
    hang: bool = False
    close: bool = False
    location: str | None = None


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
    request_id: str | None = None  # JSM: the accepted request's requestId
    problems: list[str] = field(default_factory=list)  # webhook: why the delivery was refused


def header(headers: dict[str, str], name: str) -> str | None:
    """A header's value, its name matched case-insensitively (None: absent)."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def media_type(headers: dict[str, str]) -> str:
    """The `Content-Type` without parameters, lower-cased ("" when absent)."""
    return (header(headers, "Content-Type") or "").split(";", 1)[0].strip().lower()


def html_fault(status: int, headers: dict[str, str]) -> Answer:
    """What a proxy in front of the service answers for an injected fault: a small HTML page."""
    text = f"<html><body><h1>{status}</h1>injected fault</body></html>\n".encode()
    return Answer(status, text, content_type="text/html", headers=headers)


class StandIn(LoopbackService, Generic[AcceptedT, RejectedT]):
    """A stand-in served from 127.0.0.1 on a free port: lifecycle, recorded requests, injected faults, an optional
    rate limit per key, and the `accepted`/`rejected` lists its `_process` fills."""

    def __init__(
        self,
        *,
        name: str,
        too_large: str = "Request body too large",
        rate_limit_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be at least 1")
        self.rate_limit_per_minute = rate_limit_per_minute
        self.clock = clock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._http = LoopbackServer(self, name=name, too_large=too_large)
        self._stopping = False
        self._hang_generation = 0
        self._faults: deque[Fault] = deque()
        self._requests: list[ReceivedRequest] = []
        self._accepted: list[AcceptedT] = []
        self._rejected: list[RejectedT] = []
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
    def accepted(self) -> list[AcceptedT]:
        """What the service accepted, in order (see the receiver's class docstring)."""
        with self._lock:
            return list(self._accepted)

    @property
    def rejected(self) -> list[RejectedT]:
        """What the service refused for breaking its contract, with the errors found."""
        with self._lock:
            return list(self._rejected)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests were received; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    def reset(self) -> None:
        """Forget requests, queued faults, rate-limit windows and what the service made of the requests."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._accepted.clear()
            self._rejected.clear()
            self._windows.clear()
            self._forget()

    def _forget(self) -> None:
        """Forget the receiver's own state (`reset`); the lock is held."""

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
        """The faulted answer (None: drop the connection); the lock is held (and released while hanging)."""
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
        if fault.location is not None:
            headers["Location"] = fault.location
        answer = self._fault_answer(fault.status, headers)
        return answer if answer is not None else html_fault(fault.status, headers)

    def _fault_answer(self, status: int, headers: dict[str, str]) -> Answer | None:
        """The service's own body for an injected `status` (None: the HTML page of a proxy in front of it)."""
        return None

    @abstractmethod
    def _process(self, record: ReceivedRequest, problem: str | None) -> Answer:
        """The service's answer to a request no fault answered: contract checks, then what the service makes of it
        (recording `_accepted`/`_rejected`); the lock is held. `problem`: why the body was not read."""

    def _rate_limit_wait(self, key: str) -> int | None:
        """Sliding 60 s window per key: None when the request may pass (and counts), else the seconds to wait."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return None
        now = self.clock()
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - RATE_WINDOW_SECONDS:
            window.popleft()
        if len(window) >= limit:
            return max(1, math.ceil(window[0] + RATE_WINDOW_SECONDS - now))
        window.append(now)
        return None


class Book(Protocol[ItemT]):
    """What a service makes of accepted requests: incidents or alerts, and the people it would have notified."""

    all: list[ItemT]  # every item ever opened, in order
    notifications: int

    def clear(self) -> None: ...


class BookedStandIn(StandIn[AcceptedT, RejectedT], Generic[AcceptedT, RejectedT, ItemT]):
    """A stand-in that opens incidents or alerts (`_book`), notifying a person for each new one."""

    _book: Book[ItemT]

    @property
    def notifications(self) -> int:
        """How many times a person would have been notified (new incidents or alerts)."""
        with self._lock:
            return self._book.notifications

    def _opened(self) -> list[ItemT]:
        """Every incident or alert ever opened, in order (a snapshot)."""
        with self._lock:
            return list(self._book.all)

    def _forget(self) -> None:
        self._book.clear()
