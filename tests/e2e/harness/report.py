"""What `make e2e` reports at the end: wall time per phase, and the peak memory of everything it started.

Phases are appended to `<run dir>/phases.tsv` (tests/e2e/run.sh adds its own: install, synth) so that the shell
prints one table at the end, even when the tests failed. Memory is sampled every half second: the resident set of
this test process and all its descendants (LocalStack, DynamoDB Local, every Lambda process), summed; the peak and
what made it up are written to `<run dir>/memory.txt`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

SAMPLE_SECONDS = 0.5


class Phases:
    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, name: str, seconds: float) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(f"{name}\t{seconds:.1f}\n")

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.record(name, time.monotonic() - started)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _descendants(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _kind(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "gone"
    text = b" ".join(argv).decode(errors="replace")
    if "localstack.runtime.main" in text:
        return "LocalStack"
    if "DynamoDBLocal" in text:
        return "DynamoDB Local"
    if "rie.py" in text:
        return "Lambda processes"
    if pid == os.getpid():
        return "tests + stand-ins"
    return "other"


class MemorySampler:
    """Peak of the summed RSS of this process tree, sampled in a background thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.peak_kb = 0
        self.peak_parts: Counter[str] = Counter()
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.path.write_text(self.summary() + "\n", encoding="utf-8")

    def sample(self) -> None:
        pids = _descendants(os.getpid())
        sizes = {pid: _rss_kb(pid) for pid in pids}
        total = sum(sizes.values())
        if total > self.peak_kb:
            self.peak_kb = total
            self.peak_processes = sum(1 for size in sizes.values() if size)
            parts: Counter[str] = Counter()
            for pid, size in sizes.items():
                if size:
                    parts[_kind(pid)] += size
            self.peak_parts = parts

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def summary(self) -> str:
        parts = ", ".join(f"{name} {kb / 1024:.0f} MB" for name, kb in self.peak_parts.most_common())
        return f"peak memory (RSS, summed): {self.peak_kb / 1024:.0f} MB in {self.peak_processes} processes ({parts})"
