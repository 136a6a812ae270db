"""The real router handler against moto's server and the local PagerDuty receiver, both on 127.0.0.1.

`local_router()` starts both servers, creates the state table and the routing-key secret, points the handler at
them (environment variables, a copy of the prod policy aimed at the receiver) and stops everything on exit.
`AwsCallLog` counts and records every AWS call: botocore event hooks on the handler's DynamoDB client (as the
handler's own metrics would see them) and a wrapper around every client's API call (Secrets Manager included).
"""

from __future__ import annotations

import contextlib
import copy
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.common import CountingSink

ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"
SECRET_NAME = "findings-router/bench/routing-key"
TABLE = "findings-router-state-bench"


def write_policy(directory: Path, events_url: str, env: str = "prod", *, shipped_storms: bool = False) -> Path:
    """The bench policy for `env`, aimed at the local receiver and secret, with millisecond retry delays."""
    from bench.workload import bench_policy_data

    data = bench_policy_data(env, shipped_storms=shipped_storms)
    data["notifier"]["events_url"] = events_url
    data["notifier"]["routing_key_secret"] = SECRET_NAME
    data["notifier"]["retry"] = {"max_attempts": 4, "base_delay_seconds": 0.001, "max_delay_seconds": 0.01}
    path = directory / f"{env}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@dataclass
class AwsCallLog:
    """Every AWS API call made while attached, by service and operation, with the DynamoDB parameters."""

    api_calls: Counter[str] = field(default_factory=Counter)  # "service.Operation" → calls (all clients)
    dynamodb_calls: Counter[str] = field(default_factory=Counter)  # via the store client's before-call hook
    dynamodb_http_attempts: int = 0  # via before-send: includes retries
    dynamodb_params: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    recording: bool = True

    def reset(self) -> None:
        self.api_calls.clear()
        self.dynamodb_calls.clear()
        self.dynamodb_http_attempts = 0
        self.dynamodb_params.clear()

    # botocore event handlers (registered on the handler's DynamoDB client)
    def _before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.recording:
            self.dynamodb_params.append((model.name, copy.deepcopy(params)))

    def _before_call(self, model: Any, **_: Any) -> None:
        self.dynamodb_calls[model.name] += 1

    def _before_send(self, **_: Any) -> None:
        self.dynamodb_http_attempts += 1

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._before_parameter_build, unique_id="bench-params")
        events.register("before-call.dynamodb", self._before_call, unique_id="bench-call")
        events.register("before-send.dynamodb", self._before_send, unique_id="bench-send")

    def detach(self, client: Any) -> None:
        events = client.meta.events
        events.unregister("before-parameter-build.dynamodb", unique_id="bench-params")
        events.unregister("before-call.dynamodb", unique_id="bench-call")
        events.unregister("before-send.dynamodb", unique_id="bench-send")

    @contextlib.contextmanager
    def all_clients(self) -> Iterator[None]:
        """Count the API calls of every botocore client (the Powertools secrets provider has its own)."""
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        log = self

        def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            log.api_calls[f"{client.meta.service_model.service_name}.{operation_name}"] += 1
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            yield
        finally:
            BaseClient._make_api_call = original  # type: ignore[method-assign]


@dataclass
class LocalRouter:
    endpoint: str
    receiver: Any
    ddb: Any
    table: str
    calls: AwsCallLog
    log_sink: CountingSink
    policy_file: Path

    @property
    def handler(self) -> Any:
        from findings_router.entrypoints import route_findings as handler

        return handler

    hub: Any = None  # the Security Hub write-back twin, once the runtime exists

    def runtime(self) -> Any:
        """The handler's runtime (built on first use), with our hooks on its DynamoDB client.

        moto has no BatchUpdateFindings: like the integration tests, the Security Hub write-back goes to the
        recording twin, whose updates are counted as the API calls the real adapter would make."""
        runtime = self.handler.get_runtime()
        self.calls.attach(runtime.store.client)
        if self.hub is None and runtime.writeback is not None:
            from findings_router.adapters.memory import RecordingSecurityHub

            self.hub = RecordingSecurityHub()
        if self.hub is not None and runtime.writeback is not self.hub:
            runtime.writeback = self.hub
        return runtime

    def securityhub_calls(self) -> dict[str, int]:
        """The Security Hub calls the real adapter would have made (one per ≤100 findings and format)."""
        out: Counter[str] = Counter()
        for update in self.hub.updates if self.hub is not None else []:
            formats = {r.format for r in update.refs}
            for fmt in formats:
                out["securityhub.BatchUpdateFindingsV2" if fmt == "ocsf" else "securityhub.BatchUpdateFindings"] += 1
        return dict(out)

    def reset_counts(self) -> None:
        self.calls.reset()
        if self.hub is not None:
            self.hub.updates.clear()

    def use_table(self, name: str) -> None:
        """Point the handler (from its next invocation on) at another state table."""
        runtime = self.runtime()
        runtime.store.table_name = name
        self.table = name

    @staticmethod
    def sqs_batch(events: list[dict[str, Any]] | list[str]) -> dict[str, Any]:
        """The Lambda event for one SQS batch: one record per EventBridge event."""
        from tests.builders import sqs_event

        return sqs_event(*events)

    def call(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One invocation of the real handler with a prepared SQS batch; raises on any failed record."""
        from tests.builders import FakeLambdaContext

        with contextlib.redirect_stdout(self.log_sink):  # type: ignore[type-var]
            response = self.handler.lambda_handler(batch, FakeLambdaContext())
        if response.get("batchItemFailures"):
            raise RuntimeError(f"handler reported failures: {response['batchItemFailures']}")
        return dict(response)

    def invoke(self, events: list[dict[str, Any]] | list[str]) -> dict[str, Any]:
        """One invocation with one SQS record per event, as Lambda's event source mapping delivers it."""
        self.runtime()
        return self.call(self.sqs_batch(events))

    def pagerduty_requests(self) -> int:
        return len(self.receiver.requests)


@contextlib.contextmanager
def local_router(*, shipped_storms: bool = False) -> Iterator[LocalRouter]:
    """moto + local PagerDuty on 127.0.0.1, the table and secret created, the handler pointed at them."""
    import boto3

    from findings_router_local.aws_local import local_aws_environment, moto_server
    from findings_router_local.pagerduty_receiver import PagerDutyReceiver
    from infra.contract import state_table_definition

    with (
        moto_server() as endpoint,
        PagerDutyReceiver() as receiver,
        tempfile.TemporaryDirectory(prefix="findings-router-bench-") as tmp,
    ):
        policy_file = write_policy(Path(tmp), receiver.url, shipped_storms=shipped_storms)
        extra = {
            "POLICY_FILE": str(policy_file),
            "STATE_TABLE_NAME": TABLE,
            "POWERTOOLS_METRICS_NAMESPACE": "FindingsRouterBench",
            "POWERTOOLS_SERVICE_NAME": "findings-router",
        }
        with local_aws_environment(endpoint, extra):
            from aws_lambda_powertools.utilities import parameters

            from findings_router.entrypoints import route_findings as handler

            ddb = boto3.client("dynamodb")
            ddb.create_table(**state_table_definition(TABLE))  # as the stack defines it
            boto3.client("secretsmanager").create_secret(
                Name=SECRET_NAME, SecretString=json.dumps({"routing_key": ROUTING_KEY})
            )
            handler.reset_runtime()
            parameters.clear_caches()
            sink = CountingSink()
            log_handler = handler.logger.registered_handler
            previous_stream = log_handler.setStream(sink)  # type: ignore[attr-defined]
            calls = AwsCallLog()
            local = LocalRouter(endpoint, receiver, ddb, TABLE, calls, sink, policy_file)
            try:
                with calls.all_clients():
                    yield local
            finally:
                if handler._runtime is not None:
                    calls.detach(handler._runtime.store.client)
                log_handler.setStream(previous_stream)  # type: ignore[attr-defined]
                handler.reset_runtime()
                parameters.clear_caches()
