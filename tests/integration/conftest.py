"""Integration fixtures: moto's server on 127.0.0.1, the local PagerDuty receiver, and the real handler."""

from __future__ import annotations

import json
import os
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.endpoint
import pytest
import yaml

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.adapters.state_table import DynamoDedupStore
from findings_router.bootstrap import AckRuntime, RouterRuntime, RuntimeEnv, build_ack_receiver, build_router
from findings_router.entrypoints import receive_acks as ack_handler
from findings_router.entrypoints import route_findings as router_handler
from findings_router_local.aws_local import local_aws_environment, moto_server, reset_moto
from findings_router_local.pagerduty_receiver import PagerDutyReceiver
from infra.contract import state_table_definition
from tests.builders import CONFIG_DIR

ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"
WEBHOOK_SECRET_NAME = "findings-router/test/webhook-secret"
WEBHOOK_SECRET = "whsec-local-test-secret"
TABLE = "findings-router-state-test"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@dataclass
class LocalStack:
    endpoint: str
    dynamodb: Any
    sqs: Any
    secrets: Any
    receiver: PagerDutyReceiver
    queue_url: str
    dlq_url: str
    securityhub: RecordingSecurityHub
    policy_file: Path

    def new_router_runtime(self, **adapters: Any) -> RouterRuntime:
        """A new router runtime, as a fresh execution environment builds it (rereading the policy file), writing back
        to the recording Security Hub, unpaced (pacing has its own tests), with any other `adapters` given
        (bootstrap.build_router's arguments); installed in the router's entry point."""
        adapters = {"securityhub": self.securityhub, "pacer": None, **adapters}
        runtime = build_router(RuntimeEnv.from_environ(), **adapters)
        router_handler.install(runtime)
        return runtime

    def new_ack_runtime(self, **adapters: Any) -> AckRuntime:
        """The same for the ack receiver (bootstrap.build_ack_receiver's arguments)."""
        runtime = build_ack_receiver(RuntimeEnv.from_environ(), **{"securityhub": self.securityhub, **adapters})
        ack_handler.install(runtime)
        return runtime

    def real_store(self) -> DynamoDedupStore:
        """The state table as the router's default adapter reaches it (for wrapping in a fault injector)."""
        return DynamoDedupStore(TABLE, self.dynamodb)

    def state_items(self) -> list[dict[str, Any]]:
        """Dedup items only (storm counters and idempotency records share the table)."""
        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        return [i for i in items if "#" not in i["pk"]["S"]]

    def dlq_messages(self) -> list[dict[str, Any]]:
        out = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        return out.get("Messages", [])


def write_policy(tmp_path: Path, env: str, events_url: str, secret: str) -> Path:
    """The shipped policy for `env`, pointed at the local receiver and secret, with millisecond retry delays."""
    data = yaml.safe_load((CONFIG_DIR / f"{env}.yaml").read_text())
    # The fixtures span the platform's accounts; scope has its own tests (tests/unit/test_order.py, the demo).
    data["accounts"] = ["*"]
    data["notifier"]["events_url"] = events_url
    data["notifier"]["routing_key_secret"] = secret
    data["notifier"]["retry"] = {"max_attempts": 4, "base_delay_seconds": 0.001, "max_delay_seconds": 0.01}
    data["acknowledgements"] = {"mode": "function_url", "signing_secret": WEBHOOK_SECRET_NAME}
    data["pacing"] = {"events_per_minute": 10_000}  # the local receiver has no rate limit; pacing has its own tests
    path = tmp_path / f"{env}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def age_pending(local, minutes: float = 15) -> None:
    """Make recorded triggers look as old as a message's return after the visibility timeout."""
    import datetime as dt

    then = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat(timespec="seconds")
    for item in local.state_items():
        local.dynamodb.update_item(
            TableName=TABLE,
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
def local(moto_endpoint: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    reset_moto(moto_endpoint)
    env = getattr(request, "param", "prod")
    with PagerDutyReceiver() as receiver:
        policy_file = write_policy(tmp_path, env, receiver.url, "findings-router/test/routing-key")
        extra = {
            "POLICY_FILE": str(policy_file),
            "STATE_TABLE_NAME": TABLE,
            "POWERTOOLS_METRICS_NAMESPACE": "FindingsRouterTest",
            "POWERTOOLS_SERVICE_NAME": "findings-router",
            "DEAD_LETTER_QUEUE_URL": "",  # set below, once the queue exists
        }
        with local_aws_environment(moto_endpoint, extra):
            ddb = boto3.client("dynamodb")
            ddb.create_table(**state_table_definition(TABLE))  # as the stack defines it
            secrets = boto3.client("secretsmanager")
            secrets.create_secret(
                Name="findings-router/test/routing-key", SecretString=json.dumps({"routing_key": ROUTING_KEY})
            )
            secrets.create_secret(Name=WEBHOOK_SECRET_NAME, SecretString=WEBHOOK_SECRET)
            sqs = boto3.client("sqs")
            dlq_url = sqs.create_queue(QueueName="findings-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            queue_url = sqs.create_queue(
                QueueName="findings",
                Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
            )["QueueUrl"]
            os.environ["DEAD_LETTER_QUEUE_URL"] = dlq_url  # as the stack sets it: permanent errors parked at once
            from aws_lambda_powertools.utilities import parameters

            parameters.clear_caches()
            # moto has no BatchUpdateFindings: the Security Hub boundary is the recording twin here.
            hub = RecordingSecurityHub()
            stack = LocalStack(moto_endpoint, ddb, sqs, secrets, receiver, queue_url, dlq_url, hub, policy_file)
            stack.new_router_runtime()
            stack.new_ack_runtime()
            try:
                yield stack
            finally:
                router_handler.reset_runtime()
                ack_handler.reset_runtime()
                parameters.clear_caches()


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays botocore's retry handler asks for, recorded instead of slept (botocore.endpoint sleeps them)."""
    delays: list[float] = []
    names = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    fake_time = types.SimpleNamespace(**{**names, "sleep": delays.append})
    monkeypatch.setattr(botocore.endpoint, "time", fake_time)
    return delays
