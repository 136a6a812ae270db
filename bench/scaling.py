"""Bench 6: per-finding cost for batches of 1, 10, 100 and 1,000 findings: does the cost grow linearly?

One stream of findings (steady state: 95% re-sends, 5% new, from the fixture mix) is processed whole at every
batch size, so the work is the same and only the batching differs: the per-finding cost at batch size n is the
stream's time divided by its findings. Two paths, sizes interleaved, repeated, median:

* pure: per batch a new `FindingsRouter` over an `InMemoryDedupStore`, prefetch, route (as bench 1);
* handler: the real `lambda_handler` with n SQS records per invocation; the DynamoDB store, storm counter and
  Security Hub write-back are the in-memory twins and the PagerDuty notifier posts to a fake HTTP session (no
  I/O; Powertools batch processing, logging and metrics included). A cProfile of this path shows what the handler adds on top of the pure path.

Linear: total time per batch ∝ n, i.e. the log-log slope of batch time against n is ~1 (per-finding cost flat).
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import math
import pstats
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from bench.common import CPU_CLOCK, BenchResult, CountingSink, median, no_gc
from bench.cpu import PurePath
from bench.workload import bench_policy_data, generate, steady_state

SIZES = (1, 10, 100, 1000)
_dumps = json.dumps  # FakeSession.post's `json` argument shadows the module, as in requests
SLOPE_TARGET = 1.1

_UNUSED_ENDPOINT = "http://127.0.0.1:9"  # never called: every boundary is an in-memory twin
_ENV = {
    "STATE_TABLE_NAME": "findings-router-state-bench-unused",
    "POWERTOOLS_METRICS_NAMESPACE": "FindingsRouterBench",
}


class _Accepted:
    """What PagerDuty answers to a valid event."""

    status_code = 202
    headers: dict[str, str] = {}
    text = '{"status":"success","message":"Event processed"}'

    def __init__(self, dedup_key: str | None) -> None:
        self._key = dedup_key

    def json(self) -> dict[str, Any]:
        return {"status": "success", "message": "Event processed", "dedup_key": self._key}


class FakeSession:
    """Stands in for the notifier's `requests.Session`: serializes the body as requests would, answers 202."""

    def __init__(self) -> None:
        self.posts = 0

    def post(self, url: str, json: Any = None, timeout: float | None = None) -> _Accepted:
        self.posts += 1
        _dumps(json).encode()
        return _Accepted(json.get("dedup_key") if isinstance(json, dict) else None)


@contextlib.contextmanager
def in_memory_handler() -> Iterator[Callable[[], None]]:
    """The real handler module with in-memory twins at every I/O boundary; yields a `reset()` function that
    installs a new runtime (built through bootstrap) over empty twins.

    The real PagerDutyNotifier runs (it builds and serializes every event) over a fake HTTP session; the state
    store, the storm counter and the Security Hub write-back are the in-memory twins; the routing key is fixed."""
    from findings_router.adapters.memory import InMemoryDedupStore, InMemoryStormCounter, RecordingSecurityHub
    from findings_router.bootstrap import RuntimeEnv, build_router
    from findings_router.entrypoints import route_findings as handler
    from findings_router.settings.load import load_policy
    from findings_router_local.aws_local import local_aws_environment

    with tempfile.TemporaryDirectory(prefix="findings-router-scaling-") as tmp:
        policy_file = Path(tmp) / "prod.yaml"
        policy_file.write_text(yaml.safe_dump(bench_policy_data("prod")), encoding="utf-8")
        with local_aws_environment(_UNUSED_ENDPOINT, {**_ENV, "POLICY_FILE": str(policy_file)}):
            sink = CountingSink()
            log_handler = handler.logger.registered_handler
            previous = log_handler.setStream(sink)  # type: ignore[attr-defined]
            env = RuntimeEnv.from_environ()
            policy = load_policy(env.policy_file)
            session = FakeSession()

            def reset() -> None:
                runtime = build_router(
                    env,
                    policy=policy,
                    store=InMemoryDedupStore(),
                    # The real PagerDutyNotifier over the fake session, its routing key fixed (instead of Secrets
                    # Manager), with a fresh pacer: every measurement starts with the same allowance.
                    session=session,
                    routing_key=lambda: "R" * 32,
                    securityhub=RecordingSecurityHub() if policy.securityhub.writeback else None,
                    storms=InMemoryStormCounter(),
                    dead_letters=None,
                )
                handler.install(runtime)

            try:
                reset()
                with contextlib.redirect_stdout(sink):  # type: ignore[type-var]
                    yield reset
            finally:
                handler.reset_runtime()
                log_handler.setStream(previous)  # type: ignore[attr-defined]


def _handler_batches(events: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    from tests.builders import sqs_event

    return [sqs_event(*events[i : i + size]) for i in range(0, len(events), size)]


def _run_handler(batches: list[dict[str, Any]]) -> None:
    from findings_router.entrypoints import route_findings as handler
    from tests.builders import FakeLambdaContext

    for b in batches:
        response = handler.lambda_handler(b, FakeLambdaContext())
        if response.get("batchItemFailures"):
            raise RuntimeError(f"handler reported failures: {response['batchItemFailures']}")


def _group(path: str) -> str:
    """A readable bucket for a profiled function's file."""
    if "aws_lambda_powertools" in path:
        parts = path.rsplit("aws_lambda_powertools/", maxsplit=1)[-1].split("/")
        if parts[0] == "utilities" and len(parts) > 1:
            return f"powertools.{parts[1].removesuffix('.py')}"
        return f"powertools.{parts[0].removesuffix('.py')}"
    if "findings_router/" in path:
        return "findings_router." + path.rsplit("findings_router/", maxsplit=1)[-1].removesuffix(".py")
    if "/json/" in path or (path.startswith("~") and "json" in path):
        return "json"
    if "/logging/" in path:
        return "stdlib logging"
    if path.startswith("~"):
        return "builtins"
    if "/lib/python3" in path and "site-packages" not in path:
        return "stdlib other"
    return "other: " + path.rsplit("site-packages/", maxsplit=1)[-1].split("/", maxsplit=1)[0]


def profile_handler(events: list[dict[str, Any]], size: int, reset: Any) -> dict[str, float]:
    """Share of the handler path's time by component (self time, grouped by module)."""
    batches = _handler_batches(events, size)
    reset()
    profiler = cProfile.Profile()
    profiler.enable()
    _run_handler(batches)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values()) or 1.0
    groups: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.items():
        key = _group(file if not file.startswith("~") else f"~{func}")
        if key == "builtins" and "json" in func:
            key = "json"
        groups[key] = groups.get(key, 0.0) + tottime
    return {k: round(v / total, 3) for k, v in sorted(groups.items(), key=lambda kv: -kv[1]) if v / total >= 0.005}


def _slope(samples: dict[int, list[float]], lo: int, hi: int) -> float:
    """d log(batch time) / d log(n) between two sizes (1.0 = linear), from per-repetition paired ratios.

    Batch time at size n = per-finding cost × n, and both sizes processed the same stream within a repetition,
    so the ratio of their stream times is the ratio of per-finding costs."""
    ratios = [hi_t / lo_t for lo_t, hi_t in zip(samples[lo], samples[hi], strict=True)]
    return 1 + math.log(median(ratios)) / math.log(hi / lo)


def run(stream_findings: int = 1000, repetitions: int = 5, sizes: tuple[int, ...] = SIZES) -> BenchResult:
    started = time.perf_counter()
    n_new = max(1, round(stream_findings * 0.05))
    known = generate(max(1, (stream_findings - n_new) // 5), seed="scaling-known")
    new = generate(n_new, seed="scaling-new")
    traffic = steady_state(known, new, stream_findings, seed="scaling")
    bodies = traffic.bodies
    n = traffic.findings

    # pure path
    pure = PurePath(known)
    pure_samples: dict[int, list[float]] = {s: [] for s in sizes}
    pure.reset()
    pure.route_batches([json.loads(b) for b in bodies])  # warm-up
    for rep in range(repetitions):
        order = list(sizes) if rep % 2 == 0 else list(reversed(sizes))
        for size in order:
            pure.reset()
            parsed = [json.loads(b) for b in bodies]
            with no_gc():
                start = CPU_CLOCK()
                pure.route_batches(parsed, size)
                pure_samples[size].append(CPU_CLOCK() - start)

    # handler path, in-memory twins
    handler_samples: dict[int, list[float]] = {s: [] for s in sizes}
    with in_memory_handler() as reset:
        batches_by_size = {s: _handler_batches(traffic.events, s) for s in sizes}

        def prime() -> None:
            reset()
            _run_handler(_handler_batches(known, 10))

        prime()
        _run_handler(batches_by_size[sizes[-1]])  # warm-up
        for rep in range(repetitions):
            order = list(sizes) if rep % 2 == 0 else list(reversed(sizes))
            for size in order:
                prime()
                with no_gc():
                    start = CPU_CLOCK()
                    _run_handler(batches_by_size[size])
                    handler_samples[size].append(CPU_CLOCK() - start)
        prime()
        profile = profile_handler(traffic.events, 10, lambda: None)

    pure_us = {s: median(v) / n * 1e6 for s, v in pure_samples.items()}
    handler_us = {s: median(v) / n * 1e6 for s, v in handler_samples.items()}
    lo, hi = (10, 1000) if 10 in sizes and 1000 in sizes else (sizes[min(1, len(sizes) - 1)], sizes[-1])
    slopes = {
        "pure": round(_slope(pure_samples, lo, hi), 3) if lo != hi else 1.0,
        "handler": round(_slope(handler_samples, lo, hi), 3) if lo != hi else 1.0,
    }
    worst = max(slopes.values())
    return BenchResult(
        name="scaling",
        title="Per-finding cost by batch size (1/10/100/1000), pure path and handler with in-memory twins",
        figure=(
            "µs/finding pure "
            + "/".join(f"{pure_us[s]:.0f}" for s in sizes)
            + ", handler "
            + "/".join(f"{handler_us[s]:.0f}" for s in sizes)
            + f"; slope {lo}→{hi} {worst:.2f}"
        ),
        target=f"linear: log-log slope {lo}→{hi} <= {SLOPE_TARGET:g}",
        passed=worst <= SLOPE_TARGET,
        ratio=worst,
        details={
            "stream_findings": n,
            "sizes": list(sizes),
            "pure_us_per_finding": {str(s): round(v, 1) for s, v in pure_us.items()},
            "handler_us_per_finding": {str(s): round(v, 1) for s, v in handler_us.items()},
            "handler_over_pure": {str(s): round(handler_us[s] / pure_us[s], 2) for s in sizes},
            "log_log_slope": slopes,
            "handler_profile_share_batch_10": profile,
        },
        notes=[
            "same stream at every size: per-finding cost = stream CPU time / findings; batch time = that × n",
            "handler path: Powertools batch processing, structured logging and EMF metrics included, I/O replaced "
            "by in-memory twins",
        ],
        seconds=time.perf_counter() - started,
    )
