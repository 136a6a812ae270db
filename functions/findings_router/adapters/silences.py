"""Silences in the state table, and the index of episodes owing a page a silence held back.

One item per silence, `fr1-silence-<env>-<id>`: the silence as one JSON attribute (`silence`), its `version` (every
change is conditional on it) and its TTL (`expires_at`: its end plus `silences.retention_days`, so an ended silence
stays listed that long, then DynamoDB deletes it). Each is in the table's time index (adapters/state_table.py
TIME_INDEX) under SILENCES by its end, with the JSON projected: the router reads the silences not yet ended with one
Query, no scan and no second read.

`CachedSilences` is what the router holds per container: it reads at the first trigger about to be sent (most
invocations send nothing and never read), then again once `CACHE_SECONDS` have passed. A silence added (or expired)
takes effect within CACHE_SECONDS plus the index's propagation (usually well under a second): within a minute. A
read that fails keeps what was read before (or none): a silence never blocks a page because DynamoDB failed.

`DynamoOwedIndex` lists the episodes under OWED (state_table.state_to_item puts an open episode there while a silence
holds its triggers back, by when that silence ends, with `silenced_by` projected): the sweep's work list.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from findings_router.adapters.state_table import (
    INDEX_PARTITION_KEY,
    INDEX_SORT_KEY,
    OWED,
    SILENCES,
    TIME_INDEX,
    put_versioned,
)
from findings_router.domain.keys import silence_key
from findings_router.domain.silences import CompiledSilences, Silence

logger = logging.getLogger(__name__)

# How long a container uses the silences it read before reading again: how late a new silence (or an expiry) may
# take effect, on top of the index's propagation.
CACHE_SECONDS = 30.0
SILENCE_ATTRIBUTE = "silence"


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SilenceStore(Protocol):
    def not_ended(self, now: dt.datetime) -> list[Silence]:
        """The silences active or still to come at `now` (what the router and the sweep need)."""
        ...

    def listed(self) -> list[Silence]:
        """Every silence still stored: active, to come, and ended within the retention."""
        ...

    def get(self, silence_id: str) -> Silence | None: ...

    def add(self, silence: Silence) -> bool:
        """Store a new silence; False when one with its id exists."""
        ...

    def replace(self, silence: Silence, expected_version: int) -> bool:
        """Store a changed silence (an expiry) if the stored one is still `expected_version`; False otherwise."""
        ...


class SilenceSource(Protocol):
    """What the router asks: the silences in effect now (compiled)."""

    def current(self, now: dt.datetime) -> CompiledSilences: ...


@dataclass(frozen=True, slots=True)
class OwedEntry:
    """One episode the time index lists as owing a page: its key, when the silence holding it ends, and which."""

    key: str
    until: str
    silenced_by: str | None


class OwedIndex(Protocol):
    def owed(self) -> list[OwedEntry]: ...


# ------------------------------------------------------------------------------------------ DynamoDB


def silence_to_item(silence: Silence, retention_days: int) -> dict[str, Any]:
    return {
        "pk": {"S": silence_key(silence.environment, silence.id)},
        INDEX_PARTITION_KEY: {"S": SILENCES},
        INDEX_SORT_KEY: {"S": silence.until},
        SILENCE_ATTRIBUTE: {"S": json.dumps(silence.to_dict(), separators=(",", ":"))},
        "version": {"N": str(silence.version)},
        "expires_at": {"N": str(int(silence.ends_at.timestamp()) + retention_days * 86400)},
    }


def item_to_silence(item: dict[str, Any]) -> Silence:
    data = json.loads(item[SILENCE_ATTRIBUTE]["S"])
    return Silence.from_dict({**data, "version": int(item.get("version", {}).get("N", "1"))})


class DynamoSilenceStore:
    """The environment's silences in the state table. `client`: a DynamoDB client, or a function making one (at the
    first read: most router invocations never read)."""

    def __init__(self, table_name: str, client: Any, environment: str, *, retention_days: int = 30) -> None:
        self.table_name = table_name
        self._client = client
        self.environment = environment
        self.retention_days = retention_days

    @property
    def client(self) -> Any:
        if callable(self._client) and not hasattr(self._client, "query"):
            self._client = self._client()
        return self._client

    def _query(self, condition: str, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": TIME_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {
                "#p": INDEX_PARTITION_KEY,
                **({"#s": INDEX_SORT_KEY} if "#s" in condition else {}),
            },
            "ExpressionAttributeValues": values,
        }
        while True:
            page = self.client.query(**kwargs)
            yield from page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _silences(self, items: Iterator[dict[str, Any]]) -> list[Silence]:
        out = []
        for item in items:
            try:
                silence = item_to_silence(item)
            except (KeyError, ValueError) as exc:  # one unreadable item must not hide the others
                logger.warning("unreadable silence item", extra={"pk": item.get("pk", {}).get("S"), "error": str(exc)})
                continue
            if silence.environment == self.environment:
                out.append(silence)
        return out

    def not_ended(self, now: dt.datetime) -> list[Silence]:
        items = self._query("#p = :p AND #s > :now", {":p": {"S": SILENCES}, ":now": {"S": _iso(now)}})
        return self._silences(items)

    def listed(self) -> list[Silence]:
        return self._silences(self._query("#p = :p", {":p": {"S": SILENCES}}))

    def get(self, silence_id: str) -> Silence | None:
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": silence_key(self.environment, silence_id)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return item_to_silence(item) if item else None

    def add(self, silence: Silence) -> bool:
        return put_versioned(self.client, self.table_name, silence_to_item(silence, self.retention_days), None)

    def replace(self, silence: Silence, expected_version: int) -> bool:
        item = silence_to_item(silence, self.retention_days)
        return put_versioned(self.client, self.table_name, item, expected_version)


class DynamoOwedIndex:
    """The episodes owing a page a silence held back, from the time index (eventually consistent: the sweep reads
    each one again, consistently, before deciding)."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def owed(self) -> list[OwedEntry]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": TIME_INDEX,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": INDEX_PARTITION_KEY},
            "ExpressionAttributeValues": {":p": {"S": OWED}},
        }
        out: list[OwedEntry] = []
        while True:
            page = self.client.query(**kwargs)
            for item in page.get("Items", []):
                by = item.get("silenced_by", {}).get("S")
                out.append(OwedEntry(item["pk"]["S"], item[INDEX_SORT_KEY]["S"], by))
            if not page.get("LastEvaluatedKey"):
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# ------------------------------------------------------------------------------------------ what the router holds


class CachedSilences:
    """The silences not yet ended, read from `store` at most every `ttl_seconds` (see the module docstring)."""

    def __init__(
        self, store: SilenceStore, *, ttl_seconds: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.reads = 0
        self._compiled = CompiledSilences()
        self._read_at: float | None = None
        self._ids: frozenset[str] = frozenset()

    def current(self, now: dt.datetime) -> CompiledSilences:
        tick = self.clock()
        if self._read_at is None or tick - self._read_at >= self.ttl_seconds:
            self._read_at = tick
            self.reads += 1
            try:
                silences = self.store.not_ended(now)
            except Exception as exc:  # fail open: what was read before, else none (a page rather than silence)
                logger.warning("could not read the silences; using what was read before", extra={"error": str(exc)})
            else:
                self._compiled = CompiledSilences(tuple(silences))
                self._announce(silences)
        return self._compiled

    def _announce(self, silences: list[Silence]) -> None:
        """Audit: the silences this container applies, logged whenever the set changes."""
        ids = frozenset(s.id for s in silences)
        if ids != self._ids:
            self._ids = ids
            logger.info(
                "silences in effect",
                extra={
                    "silences": [
                        {"id": s.id, "matchers": s.matchers, "starts_at": _iso(s.starts_at), "until": s.until}
                        for s in silences
                    ]
                },
            )

    def invalidate(self) -> None:
        """Read again at the next use (a test, the demo)."""
        self._read_at = None


class StaticSilences:
    """A fixed set of silences (replay and explain `--silences FILE`, tests)."""

    def __init__(self, silences: tuple[Silence, ...] | list[Silence] = ()) -> None:
        self._compiled = CompiledSilences(tuple(silences))

    def current(self, now: dt.datetime) -> CompiledSilences:
        del now
        return self._compiled
