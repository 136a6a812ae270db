"""Integration fixtures: one environment's stack on this machine (`LocalEnvironment`: moto's server on 127.0.0.1, the
local PagerDuty receiver, the shipped policy rewritten for them) with the real handlers installed."""

from __future__ import annotations

import json
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.endpoint
import pytest

from findings_router.entrypoints import receive_acks as ack_handler
from findings_router.entrypoints import route_findings as router_handler
from findings_router_local.aws_local import moto_server
from findings_router_local.environment import LocalEnvironment
from tests.builders import CONFIG_DIR

ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"
ROUTING_KEY_SECRET = "findings-router/test/routing-key"
WEBHOOK_SECRET_NAME = "findings-router/test/webhook-secret"
WEBHOOK_SECRET = "whsec-local-test-secret"
TABLE = "findings-router-state-test"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def age_pending(local: LocalEnvironment, minutes: float = 15) -> None:
    """Make recorded triggers look as old as a message's return after the visibility timeout."""
    import datetime as dt

    then = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat(timespec="seconds")
    for item in local.state_items():
        local.dynamodb.update_item(
            TableName=local.table,
            Key={"pk": item["pk"]},
            UpdateExpression="SET pending_since = :t",
            ExpressionAttributeValues={":t": {"S": then.replace("+00:00", "Z")}},
        )


def json_log_lines(out: str) -> list[dict[str, Any]]:
    """The router's and the ack receiver's JSON log lines in captured stdout."""
    # Split on "\n" only (as CloudWatch does): Powertools writes U+2028 and \x85 unescaped, which str.splitlines()
    # splits on.
    return [json.loads(line) for line in out.split("\n") if line.startswith('{"level"')]


class _CurrentStdout:
    """Writes to whatever sys.stdout is now (pytest swaps it per test; Powertools keeps the one of import time)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """The router's structured log lines (Powertools writes one JSON object per line to stdout)."""
    for module in (router_handler, ack_handler):
        module.logger.registered_handler.setStream(_CurrentStdout())  # type: ignore[attr-defined]

    def read() -> list[dict[str, Any]]:
        return json_log_lines(capsys.readouterr().out)

    return read


@pytest.fixture
def local(moto_endpoint: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalEnvironment]:
    """The shipped policy of `env` (prod unless parametrized) on the session's moto server, reset first, and a
    receiver of its own; router and ack runtimes installed. Unpaced (pacing has its own tests), millisecond retries,
    every account (the fixtures span the platform's; scope has its own tests: tests/unit/test_order.py, the demo)."""
    env = getattr(request, "param", "prod")
    with LocalEnvironment(
        CONFIG_DIR / f"{env}.yaml",
        endpoint=moto_endpoint,
        reset=True,
        workdir=tmp_path,
        routing_key=ROUTING_KEY,
        routing_key_secret=ROUTING_KEY_SECRET,
        fast_retries=True,
        accounts=["*"],
        acknowledgements={"mode": "function_url", "signing_secret": WEBHOOK_SECRET_NAME},
        signing_secret=WEBHOOK_SECRET,
        table=TABLE,
        queue="findings",
        dead_letter_queue="findings-dlq",
        max_receive_count=3,
        environ={"POWERTOOLS_METRICS_NAMESPACE": "FindingsRouterTest"},
        router_adapters={"pacer": None},
    ) as stack:
        stack.new_router_runtime()
        stack.new_ack_runtime()
        yield stack


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays botocore's retry handler asks for, recorded instead of slept (botocore.endpoint sleeps them)."""
    delays: list[float] = []
    names = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    fake_time = types.SimpleNamespace(**{**names, "sleep": delays.append})
    monkeypatch.setattr(botocore.endpoint, "time", fake_time)
    return delays
