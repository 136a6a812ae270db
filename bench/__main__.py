"""`python -m bench [--quick] [--only a,b] [--output FILE] [--strict]`: run the benches, print the table, write JSON.

Full sizes are what docs/performance.md reports; `--quick` runs every bench at small sizes (seconds, for a smoke
check; its figures are not meaningful). Exit status: 1 if a bench crashed (or, with --strict, missed its target).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS_FILE, BenchResult
from findings_router_local import tables


def _ingestion(quick: bool) -> list[BenchResult]:
    from bench import ingestion

    return [ingestion.run(events=1_000 if quick else 10_000)]


def _cpu(quick: bool) -> list[BenchResult]:
    from bench import cpu

    return [cpu.run(findings=100, repetitions=3, component_loops=2) if quick else cpu.run()]


def _cold_start(quick: bool) -> list[BenchResult]:
    from bench import coldstart

    return [coldstart.run(rounds=2, importtime_runs=1) if quick else coldstart.run()]


def _requests(quick: bool) -> list[BenchResult]:
    from bench import aws_requests

    return [aws_requests.run(repeats=19, new=1) if quick else aws_requests.run()]


def _throughput(quick: bool) -> list[BenchResult]:
    from bench import throughput

    return [throughput.run(findings=100, repetitions=1) if quick else throughput.run()]


def _memory(quick: bool) -> list[BenchResult]:
    from bench import memory

    return memory.run(runs=1, findings=10) if quick else memory.run()


def _scaling(quick: bool) -> list[BenchResult]:
    from bench import scaling

    if quick:
        return [scaling.run(stream_findings=100, repetitions=1, sizes=(1, 10, 100))]
    return [scaling.run()]


def _replay_stream(quick: bool) -> list[BenchResult]:
    from bench import replay_stream

    return [replay_stream.run(findings=replay_stream.QUICK_FINDINGS if quick else replay_stream.FINDINGS)]


def _psirt(quick: bool) -> list[BenchResult]:
    from bench import psirt

    return [psirt.run(psirt.QUICK_FINDINGS if quick else psirt.FINDINGS)]


BENCHES: dict[str, Callable[[bool], list[BenchResult]]] = {
    "ingestion": _ingestion,
    "cpu": _cpu,
    "cold_start": _cold_start,
    "requests": _requests,
    "throughput": _throughput,
    "memory": _memory,
    "scaling": _scaling,
    "replay_stream": _replay_stream,
    "psirt": _psirt,
}


def _status(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "info"}[passed]


def render_table(results: list[BenchResult]) -> str:
    rows = [(r.name, r.figure, r.target, _status(r.passed), f"{r.seconds:.0f}s") for r in results]
    return tables.render_table(("bench", "figure", "target", "result", "time"), rows)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return info


def run(names: list[str], quick: bool, progress: Callable[[str], None] = print) -> tuple[list[BenchResult], bool]:
    results: list[BenchResult] = []
    crashed = False
    for name in names:
        progress(f"[bench] {name} ...")
        started = time.perf_counter()
        try:
            produced = BENCHES[name](quick)
        except Exception as exc:
            crashed = True
            produced = [
                BenchResult(
                    name=name,
                    title=name,
                    figure=f"crashed: {type(exc).__name__}: {exc}"[:160],
                    target="-",
                    passed=False,
                    details={"traceback": traceback.format_exc()},
                    seconds=time.perf_counter() - started,
                )
            ]
        for r in produced:
            progress(f"[bench]   {r.name}: {r.figure} [{_status(r.passed)}] ({r.seconds:.1f}s)")
        results.extend(produced)
    return results, crashed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="where to write the JSON results")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown bench(es): {', '.join(unknown)}; choose from {', '.join(BENCHES)}")

    started = time.perf_counter()
    results, crashed = run(names, args.quick)
    total = time.perf_counter() - started
    print()
    print(render_table(results))
    missed = [r.name for r in results if r.passed is False]
    print(f"\n{len(results)} figures in {total:.0f}s; targets missed: {', '.join(missed) or 'none'}")
    document: dict[str, Any] = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "total_seconds": round(total, 1),
        "machine": machine(),
        "results": [r.to_dict() for r in results],
    }
    names_run = {r.name for r in results if not r.figure.startswith("crashed")}
    if {"throughput", "requests_per_finding", "scaling"} <= names_run:
        from bench import cost

        document["cost_model"] = cost.model(document["results"])
        print("\n" + cost.render(document["cost_model"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    if crashed:
        return 1
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
