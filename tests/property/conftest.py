"""Fixtures for the property tests: the integration stack (moto server, local PagerDuty, real handler env) and a
capture of every byte of log output, for the "no secret in any log line" checks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

# Re-declared here (only a rootdir conftest may use `pytest_plugins`) so that the moto-backed properties run against
# exactly the stack the integration tests use.
from tests.integration.conftest import json_log_lines, json_logs, local, moto_endpoint

__all__ = ["Captured", "json_logs", "local", "logs", "moto_endpoint"]


@dataclass
class Captured:
    text: str  # everything written since the last read: stdout, stderr and stdlib log records
    lines: list[dict[str, Any]]  # the router's and the ack receiver's JSON log lines

    def errors(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("level") == "ERROR"]


@pytest.fixture
def logs(
    json_logs: Callable[[], list[dict[str, Any]]],  # for its side effect: Powertools writes to the captured stdout
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> Callable[[], Captured]:
    caplog.set_level(logging.DEBUG, logger="findings_router")

    def read() -> Captured:
        out, err = capsys.readouterr()
        text = out + err + caplog.text
        caplog.clear()
        return Captured(text, json_log_lines(out))

    return read
