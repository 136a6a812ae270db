"""Dedup state storage: DynamoDB in production, an in-memory twin for tests and replay.

Reads are batched (BatchGetItem, 100 keys per call, strongly consistent); writes are conditional on the
version that was read, so two invocations racing on one key cannot both record a page.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from findings_router.domain.episodes import DedupState
from findings_router.domain.keys import SHADOW_PREFIX
from findings_router.domain.model import Severity

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_LIMIT = 100


# The table's one global secondary index, sparse: only items with both attributes are in it. It lists by time what
# must be found without a scan: the silences (`index_pk` SILENCES, by their end) and the episodes owing a page a
# silence held back (OWED, by when that silence ends), for the router's silence reads and the sweep
# (adapters/silences.py, service/sweep.py). `silenced_by` is projected too: the sweep skips what is still held.
TIME_INDEX = "time-index"
INDEX_PARTITION_KEY = "index_pk"
INDEX_SORT_KEY = "index_sk"
INDEX_PROJECTED = ("silenced_by",)
OWED = "owed"
SILENCES = "silence"


class DedupStore(Protocol):
    def get_many(self, keys: Iterable[str]) -> dict[str, DedupState]: ...

    def put(self, state: DedupState, expected_version: int | None) -> bool:
        """Write `state` if the stored version is still `expected_version` (None: no item). False on conflict."""
        ...


_S = (
    "key",
    "status",
    "action",
    "finding_id",
    "product_arn",
    "title",
    "first_seen",
    "last_seen",
    "last_notified_at",
    "account",
    "finding_format",
)


_OPT_S = (
    "resolved_at",
    "resolved_by",
    "acknowledged_by",
    "acknowledged_at",
    "incident_id",
    "observed_at",
    "opened_at",
    "pending_since",
    "silenced_by",
    "silenced_until",
    "silenced_finding",
    "rule",
)


_N = ("episode", "seen_count", "notify_count", "version", "expires_at")


_L = ("incident_keys", "members", "pending", "incident_ids", "past_incident_ids", "outbox")


_FOLDED_L = ("member_resolutions", "affected")


def state_to_item(state: DedupState) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": state.key}, "severity": {"S": state.severity.value}}
    for name in _S[1:]:
        item[name] = {"S": getattr(state, name)}
    for name in _OPT_S:
        value = getattr(state, name)
        if value is not None:
            item[name] = {"S": value}
    for name in _N:
        item[name] = {"N": str(getattr(state, name))}
    for name in _L:
        item[name] = {"L": [{"S": v} for v in getattr(state, name)]}
    if state.targets:  # only where a rule routes elsewhere than the primary notifier
        item["targets"] = {"L": [{"S": v} for v in state.targets]}
    if state.securityhub_agrees:
        item["securityhub_agrees"] = {"BOOL": True}
    if state.silenced:  # only while a silence holds triggers back: every other item stays as it was
        item["silenced"] = {"L": [{"S": v} for v in state.silenced]}
    if state.owes and state.silenced_until and not state.key.startswith(SHADOW_PREFIX):
        # In the time index while it owes a page: the sweep finds it there (sparse: gone once delivered).
        item[INDEX_PARTITION_KEY] = {"S": OWED}
        item[INDEX_SORT_KEY] = {"S": state.silenced_until}
    item.update(_folded_attributes(state))
    return item


def _folded_attributes(state: DedupState) -> dict[str, Any]:
    """Folded vulnerability keys only (dedup.fold_vulnerabilities): every other item stays as it was."""
    item: dict[str, Any] = {}
    for name in _FOLDED_L:
        values = getattr(state, name)
        if values:
            item[name] = {"L": [{"S": v} for v in values]}
    if state.affected_count:
        item["affected_count"] = {"N": str(state.affected_count)}
    return item


def item_to_state(item: dict[str, Any]) -> DedupState:
    kwargs: dict[str, Any] = {"key": item["pk"]["S"], "severity": Severity(item["severity"]["S"])}
    for name in _S[1:]:
        if name in item:  # items written before a field existed keep its default
            kwargs[name] = item[name]["S"]
    for name in _OPT_S:
        if name in item:
            kwargs[name] = item[name]["S"]
    for name in _N:
        kwargs[name] = int(item[name]["N"])
    for name in _L:
        kwargs[name] = tuple(v["S"] for v in item.get(name, {}).get("L", []))
    kwargs["targets"] = tuple(v["S"] for v in item.get("targets", {}).get("L", []))
    kwargs["silenced"] = tuple(v["S"] for v in item.get("silenced", {}).get("L", []))
    kwargs["securityhub_agrees"] = bool(item.get("securityhub_agrees", {}).get("BOOL", False))
    for name in _FOLDED_L:
        kwargs[name] = tuple(v["S"] for v in item.get(name, {}).get("L", []))
    kwargs["affected_count"] = int(item.get("affected_count", {}).get("N", "0"))
    return DedupState(**kwargs)


class DynamoDedupStore:
    """The state table: partition key `pk` (S), TTL attribute `expires_at`."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_unprocessed_rounds: int = 8,
    ) -> None:
        self.table_name = table_name
        self.client = client
        self._sleep = sleep
        self._max_rounds = max_unprocessed_rounds

    def get_many(self, keys: Iterable[str]) -> dict[str, DedupState]:
        unique = list(dict.fromkeys(keys))
        found: dict[str, DedupState] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            chunk = unique[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {
                self.table_name: {"Keys": [{"pk": {"S": k}} for k in chunk], "ConsistentRead": True}
            }
            for attempt in range(self._max_rounds):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    state = item_to_state(item)
                    found[state.key] = state
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                # DynamoDB returns UnprocessedKeys under throttling; back off before asking again.
                self._sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            else:
                raise RuntimeError(f"DynamoDB left {len(request[self.table_name]['Keys'])} keys unprocessed")
        return found

    def put(self, state: DedupState, expected_version: int | None) -> bool:
        return put_versioned(self.client, self.table_name, state_to_item(state), expected_version)


def put_versioned(client: Any, table_name: str, item: dict[str, Any], expected_version: int | None) -> bool:
    """PutItem of `item` if the stored item's `version` is still `expected_version` (None: no item yet); False when
    another writer got there first."""
    kwargs: dict[str, Any] = {"TableName": table_name, "Item": item}
    if expected_version is None:
        kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        kwargs["ConditionExpression"] = "version = :v"
        kwargs["ExpressionAttributeValues"] = {":v": {"N": str(expected_version)}}
    try:
        client.put_item(**kwargs)
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True
