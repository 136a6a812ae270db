"""An out-of-band heartbeat: a URL requested after each completed canary (Healthchecks, Dead Man's Snitch, a JSM
heartbeat), so that a dead AWS side (no canary, no router, no meta-alert) is noticed by a service outside it.

The URL comes from Secrets Manager when needed: such URLs carry their check's token. Errors name only the exception
type or the status, never the URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from findings_router.notify.http import new_session


class HeartbeatError(RuntimeError):
    pass


class HttpHeartbeat:
    def __init__(self, url: Callable[[], str], *, timeout: float = 3.0, session: Any = None) -> None:
        self._url = url
        self._timeout = timeout
        self._session = session

    def __call__(self) -> None:
        import requests

        if self._session is None:
            self._session = new_session()
        try:
            # POST: Healthchecks and Dead Man's Snitch accept GET, HEAD and POST; JSM heartbeats want a POST.
            response = self._session.post(self._url().strip(), timeout=self._timeout)
        except requests.RequestException as exc:
            raise HeartbeatError(type(exc).__name__) from None
        if response.status_code >= 300:
            raise HeartbeatError(f"HTTP {response.status_code}")
