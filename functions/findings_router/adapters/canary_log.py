"""Where the canary's runs are recorded: one item per environment in the state table (`fr1-canary-<env>`), the
latest run's hop times. The router writes `received` and `delivered`, the ack receiver `acknowledged`; each write is
conditional on the version read, so two copies of one run (or a late older run) never overwrite a newer record."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from findings_router.adapters.state_table import put_versioned
from findings_router.domain.canary import CanaryRun
from findings_router.domain.keys import canary_record_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A run record outlives any alarm window; an environment whose canary stopped keeps no stale item for ever.
CANARY_RECORD_TTL_SECONDS = 30 * 24 * 3600
_HOP_FIELDS = ("received_at", "delivered_at", "acknowledged_at")


class CanaryLog(Protocol):
    def latest(self, environment: str) -> CanaryRun | None:
        """The latest run recorded for `environment`."""
        ...

    def put(self, run: CanaryRun, expected_version: int | None) -> bool:
        """Record `run` if the stored version is still `expected_version` (None: no record). False on conflict."""
        ...


class InMemoryCanaryLog:
    def __init__(self) -> None:
        self.runs: dict[str, CanaryRun] = {}

    def latest(self, environment: str) -> CanaryRun | None:
        return self.runs.get(environment)

    def put(self, run: CanaryRun, expected_version: int | None) -> bool:
        current = self.runs.get(run.environment)
        if (current.version if current is not None else None) != expected_version:
            return False
        self.runs[run.environment] = run
        return True


class DynamoCanaryLog:
    def __init__(
        self, table_name: str, client: DynamoDBClient | Callable[[], DynamoDBClient], *, clock: Any = None
    ) -> None:
        """`client`: a boto3 `dynamodb` client, or a callable that makes one when first needed (most containers
        never see a canary)."""
        import time

        self.table_name = table_name
        self._client = client
        self._clock = clock or time.time

    @property
    def client(self) -> DynamoDBClient:
        if callable(self._client) and not hasattr(self._client, "get_item"):
            self._client = self._client()
        return self._client  # type: ignore[return-value]

    def latest(self, environment: str) -> CanaryRun | None:
        response = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": canary_record_key(environment)}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None:
            return None
        return CanaryRun(
            environment=environment,
            run_id=item["run_id"]["S"],
            version=int(item["version"]["N"]),
            **{name: item[name]["S"] for name in _HOP_FIELDS if name in item},
        )

    def put(self, run: CanaryRun, expected_version: int | None) -> bool:
        item: dict[str, Any] = {
            "pk": {"S": canary_record_key(run.environment)},
            "run_id": {"S": run.run_id},
            "version": {"N": str(run.version)},
            "expires_at": {"N": str(int(self._clock()) + CANARY_RECORD_TTL_SECONDS)},
        }
        item.update({name: {"S": getattr(run, name)} for name in _HOP_FIELDS if getattr(run, name)})
        return put_versioned(self.client, self.table_name, item, expected_version)
