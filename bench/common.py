"""Shared pieces of the benches: paths, timing helpers and the result record."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
FIXTURES_DIR = ROOT / "tests" / "fixtures"
CONFIG_DIR = ROOT / "config"
RESULTS_FILE = Path(__file__).resolve().parent / "results.json"
# CPU time of the calling thread: what a pure-code bench measures, unaffected by other processes' load.
CPU_CLOCK = time.thread_time


@dataclass
class BenchResult:
    """One bench's outcome. `ratio` is the headline figure (ours / baseline); `passed` compares it to the target."""

    name: str
    title: str
    figure: str  # the headline as a short human-readable string
    target: str  # e.g. "<= 3x"
    passed: bool | None  # None: no target (informational)
    ratio: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of a list of samples (rounded for the report)."""
    return {"median": median(values), "min": min(values), "max": max(values), "n": len(values)}


@contextmanager
def no_gc() -> Iterator[None]:
    """Collect first, then keep the collector out of a timed section (both sides get the same treatment)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def timed(fn: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(
    sides: dict[str, Callable[[], float]],
    repetitions: int,
    *,
    before_each: Callable[[int], None] | None = None,
) -> dict[str, list[float]]:
    """Run each side once per repetition, alternating the order (ABBA...), and collect the samples.

    Each side returns its own measurement (seconds), so it can exclude its setup from the timing.
    """
    samples: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for rep in range(repetitions):
        if before_each is not None:
            before_each(rep)
        order = names if rep % 2 == 0 else list(reversed(names))
        for name in order:
            samples[name].append(sides[name]())
    return samples


def paired_ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerator, denominator, strict=True) if b > 0]


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


class CountingSink:
    """A write-only text stream that counts what it is given: stands in for stdout (CloudWatch Logs)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8", "replace"))
        self.lines += text.count("\n")
        return len(text)

    def flush(self) -> None:
        pass

    def reset(self) -> None:
        self.bytes = 0
        self.lines = 0
