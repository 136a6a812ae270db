"""Fault injection by composition: adapters that wrap a real one and fail where a test says, built into a runtime
through bootstrap (nothing is patched after construction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from findings_router.domain.episodes import DedupState


class ContainerKilledError(Exception):
    """The Lambda container died at this point."""


class InterruptibleStore:
    """A `DedupStore` that raises at the next `put` matching the armed predicate (once), else delegates."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._when: Callable[[DedupState], bool] | None = None
        self._error: Exception = ContainerKilledError("killed")
        self.interrupted: list[str] = []

    def arm(self, when: Callable[[DedupState], bool], error: Exception | None = None) -> None:
        self._when = when
        self._error = error or ContainerKilledError("killed")

    def disarm(self) -> None:
        self._when = None

    def get_many(self, keys: Any) -> dict[str, DedupState]:
        return self.inner.get_many(keys)

    def put(self, state: DedupState, expected_version: int | None) -> bool:
        if self._when is not None and self._when(state):
            self._when = None
            self.interrupted.append(state.key)
            raise self._error
        return self.inner.put(state, expected_version)

    def __getattr__(self, name: str) -> Any:  # e.g. `client`, read by benches and tests that count requests
        return getattr(self.inner, name)
