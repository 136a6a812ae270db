"""In-memory twins of the AWS adapters: replay's dry run, the demo and the tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from findings_router.adapters.securityhub import FindingRef, WritebackResult, _chunks, _note
from findings_router.adapters.silences import OwedEntry
from findings_router.adapters.state_table import BATCH_GET_LIMIT
from findings_router.adapters.storm_counter import _CountsOneByAdding
from findings_router.domain.episodes import DedupState
from findings_router.domain.keys import SHADOW_PREFIX
from findings_router.domain.model import Workflow
from findings_router.domain.silences import Silence


class InMemoryStormCounter(_CountsOneByAdding):
    def __init__(self) -> None:
        self.members: dict[str, set[str]] = {}
        self.extra: dict[str, int] = {}
        self.samples: dict[str, list[str]] = {}
        self.opened: set[str] = set()
        self.writes = 0

    def mark_opened(self, key: str) -> None:
        self.opened.add(key)

    def add(
        self,
        key: str,
        entries: Sequence[tuple[str, str]],
        threshold: int,
        sample_size: int,
        expires_at: int,
        *,
        past_threshold: bool = False,
    ) -> tuple[int, tuple[str, ...], bool]:
        self.writes += 1
        members = self.members.setdefault(key, set())
        if not past_threshold and (len(members) <= threshold or (len(entries) == 1 and entries[0][0] in members)):
            members.update(m for m, _ in entries)
        else:
            self.extra[key] = self.extra.get(key, 0) + len(entries)
        count = len(members) + self.extra.get(key, 0)
        samples = self.samples.setdefault(key, [])
        for _, sample in entries:
            if len(samples) < sample_size and sample not in samples:
                samples.append(sample)
        return count, tuple(samples), key in self.opened


class InMemoryDedupStore:
    """Same semantics as `DynamoDedupStore`, in a dict. Counts calls like the real one would make them."""

    def __init__(self) -> None:
        self.items: dict[str, DedupState] = {}
        self.read_calls = 0
        self.write_calls = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, DedupState]:
        unique = list(dict.fromkeys(keys))
        self.read_calls += (len(unique) + BATCH_GET_LIMIT - 1) // BATCH_GET_LIMIT
        return {k: self.items[k] for k in unique if k in self.items}

    def put(self, state: DedupState, expected_version: int | None) -> bool:
        self.write_calls += 1
        current = self.items.get(state.key)
        if (current.version if current else None) != expected_version:
            return False
        self.items[state.key] = state
        return True


@dataclass
class RecordedUpdate:
    refs: tuple[FindingRef, ...]
    note: str
    workflow: str | None


class RecordingSecurityHub:
    """In-memory twin: records every update (the demo prints them; tests assert on them)."""

    def __init__(self) -> None:
        self.updates: list[RecordedUpdate] = []

    def update(self, refs: Sequence[FindingRef], note: str, workflow: Workflow | None = None) -> WritebackResult:
        unique = tuple(dict.fromkeys(refs))
        for chunk in _chunks(list(unique)):
            self.updates.append(RecordedUpdate(tuple(chunk), _note(note), workflow))
        return WritebackResult(updated=len(unique))

    def notes_for(self, finding_id: str) -> list[str]:
        return [u.note for u in self.updates for r in u.refs if r.id == finding_id]


class InMemorySilenceStore:
    """Same semantics as `DynamoSilenceStore`, in a dict (conditional on the version, as the real one)."""

    def __init__(self, silences: Sequence[Silence] = ()) -> None:
        self.silences: dict[str, Silence] = {s.id: s for s in silences}
        self.reads = 0

    def not_ended(self, now: dt.datetime) -> list[Silence]:
        self.reads += 1
        return [s for s in self.silences.values() if s.ends_at > now]

    def listed(self) -> list[Silence]:
        return list(self.silences.values())

    def get(self, silence_id: str) -> Silence | None:
        return self.silences.get(silence_id)

    def add(self, silence: Silence) -> bool:
        if silence.id in self.silences:
            return False
        self.silences[silence.id] = silence
        return True

    def replace(self, silence: Silence, expected_version: int) -> bool:
        current = self.silences.get(silence.id)
        if current is None or current.version != expected_version:
            return False
        self.silences[silence.id] = silence
        return True


class InMemoryOwedIndex:
    """The time index's OWED entries of an in-memory state table: what state_table.state_to_item puts there."""

    def __init__(self, store: InMemoryDedupStore) -> None:
        self.store = store

    def owed(self) -> list[OwedEntry]:
        return [
            OwedEntry(s.key, s.silenced_until or "", s.silenced_by)
            for s in self.store.items.values()
            if s.owes and s.silenced_until and not s.key.startswith(SHADOW_PREFIX)
        ]
