"""Scripted HTTP for notifier tests: responses (or exceptions) in order, every call recorded; and a fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeResponse:
    status_code: int
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return self.body

    @property
    def text(self) -> str:
        return json.dumps(self.body)


class ScriptedSession:
    """Answers each post with the next scripted response (or raises it)."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, Any, float | None]] = []

    def post(self, url: str, json: Any = None, timeout: float | None = None, **_: Any) -> Any:
        self.calls.append((url, json, timeout))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class FakeTime:
    """One clock for monotonic and wall time; `sleep` advances it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
