"""The real router handler against moto's server and the local PagerDuty receiver, both on 127.0.0.1.

`local_router()` is a `LocalEnvironment` (findings_router_local.environment) for the bench policy: both servers, the
state table and the routing-key secret (no queues: the benches hand prepared SQS batches to the handler), the
handler's environment, and a router runtime built through bootstrap; everything stops on exit.
`AwsCallLog` counts and records every AWS call: botocore event hooks on the handler's DynamoDB client (as the
handler's own metrics would see them) and a wrapper around every client's API call (Secrets Manager included).
"""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from bench.common import CountingSink
from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.bootstrap import RouterRuntime
from findings_router_local.environment import LocalEnvironment

SECRET_NAME = "findings-router/bench/routing-key"
TABLE = "findings-router-state-bench"


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


def _dynamodb_client(runtime: RouterRuntime) -> Any:
    """The boto3 client of the runtime's state store (bootstrap's DynamoDedupStore)."""
    return cast(Any, runtime.store).client


class LocalRouter:
    """The bench's handle on a `LocalEnvironment`: the installed router runtime (rebuilt on request, as a new
    container would build it) with `AwsCallLog`'s hooks on its DynamoDB client, and the handler's log sink."""

    def __init__(self, env: LocalEnvironment, calls: AwsCallLog, log_sink: CountingSink) -> None:
        self.env = env
        self.calls = calls
        self.log_sink = log_sink
        self._runtime: RouterRuntime | None = None

    @property
    def receiver(self) -> Any:
        return self.env.receiver

    @property
    def ddb(self) -> Any:
        return self.env.dynamodb

    @property
    def table(self) -> str:
        return self.env.table

    @property
    def hub(self) -> RecordingSecurityHub:
        """The Security Hub write-back twin: moto has no BatchUpdateFindings (as in the integration tests); its
        updates are counted as the API calls the real adapter would make."""
        return self.env.securityhub

    @property
    def handler(self) -> Any:
        from findings_router.entrypoints import route_findings as handler

        return handler

    def runtime(self) -> RouterRuntime:
        """The installed runtime, built on first use."""
        return self._runtime or self.new_runtime()

    def new_runtime(self) -> RouterRuntime:
        """A new runtime (a new container: nothing held in memory, e.g. no storm counts), installed, with our hooks
        on its DynamoDB client instead of the previous one's."""
        self.detach()
        self._runtime = self.env.new_router_runtime()
        self.calls.attach(_dynamodb_client(self._runtime))
        return self._runtime

    def detach(self) -> None:
        if self._runtime is not None:
            self.calls.detach(_dynamodb_client(self._runtime))

    def securityhub_calls(self) -> dict[str, int]:
        """The Security Hub calls the real adapter would have made (one per ≤100 findings and format)."""
        out: Counter[str] = Counter()
        for update in self.hub.updates:
            formats = {r.format for r in update.refs}
            for fmt in formats:
                out["securityhub.BatchUpdateFindingsV2" if fmt == "ocsf" else "securityhub.BatchUpdateFindings"] += 1
        return dict(out)

    def reset_counts(self) -> None:
        self.calls.reset()
        self.hub.updates.clear()

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
    from bench.workload import bench_policy_data

    with LocalEnvironment(
        bench_policy_data("prod", shipped_storms=shipped_storms),
        routing_key_secret=SECRET_NAME,
        fast_retries=True,
        table=TABLE,
        queues=False,
        environ={"POWERTOOLS_METRICS_NAMESPACE": "FindingsRouterBench"},
    ) as env:
        # Imported once the variables are set: Powertools reads its namespace and service name at import.
        from findings_router.entrypoints import route_findings as handler

        sink = CountingSink()
        log_handler = handler.logger.registered_handler
        previous_stream = log_handler.setStream(sink)  # type: ignore[attr-defined]
        local = LocalRouter(env, AwsCallLog(), sink)
        try:
            with local.calls.all_clients():
                yield local
        finally:
            local.detach()
            log_handler.setStream(previous_stream)  # type: ignore[attr-defined]
