"""Bench: `findings-router replay` over a large get-findings export (issue 12, "replay streams").

A 50,000-finding `aws securityhub get-findings` output (realistic ASFF: the findings of
tests/fixtures/get_findings_output.json and of the ASFF fixture events, each copy with its own finding and resource
ids, pretty-printed like the AWS CLI prints it) is written to a temporary directory. Then, each in a fresh interpreter
(`python -m bench.replay_stream --child MODE FILE RESULT`):

* `replay_json` / `replay_table`: `run_replay` with progress on, output to a counting sink. Measured: peak RSS
  (VmHWM), seconds from the call to the first progress output and to the first record, and in all.
* `json_loads`: reading the file and `json.loads` of it, what replay did before it streamed (before routing a single
  finding). Measured: peak RSS and seconds.
* `imports`: the interpreter with replay's modules imported, nothing read: the floor under both.

Figures only, no target (timings are never asserted). `python -m bench.replay_stream [--quick]` runs it alone.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._memory_child import _vmhwm_kb  # the memory bench's reading of peak RSS, shared
from bench.common import CONFIG_DIR, FIXTURES_DIR, ROOT, BenchResult, CountingSink

FINDINGS = 50_000
QUICK_FINDINGS = 2_000  # still more than replay reads before routing (SMALL_INPUT), so it streams
MODES = ("imports", "json_loads", "replay_json", "replay_table")
_ID = "@@ID@@"


def _base_findings() -> list[dict[str, Any]]:
    """The fixtures' ASFF findings: get-findings output's and those of the ASFF events (the broken one left out)."""
    findings = list(json.loads((FIXTURES_DIR / "get_findings_output.json").read_text(encoding="utf-8"))["Findings"])
    for path in sorted(FIXTURES_DIR.glob("asff_*.json")):
        if path.name == "asff_missing_required_field.json":
            continue
        findings.extend(json.loads(path.read_text(encoding="utf-8"))["detail"]["findings"])
    return findings


def _template(finding: dict[str, Any]) -> str:
    """The finding as the AWS CLI indents it inside `Findings`, with a mark where each copy's id suffix goes."""
    marked = copy.deepcopy(finding)
    marked["Id"] = f"{marked['Id']}{_ID}"
    for resource_ in marked.get("Resources") or []:
        resource_["Id"] = f"{resource_['Id']}{_ID}"  # control findings fold on the resource: new resource, new key
    return "        " + json.dumps(marked, indent=4).replace("\n", "\n        ")


def write_export(path: Path, findings: int) -> int:
    """Writes a get-findings output of `findings` distinct findings to `path`; returns its size in bytes."""
    templates = [_template(f) for f in _base_findings()]
    with path.open("w", encoding="utf-8") as out:
        out.write('{\n    "Findings": [\n')
        for i in range(findings):
            out.write(templates[i % len(templates)].replace(_ID, f"-copy-{i:06d}"))
            out.write(",\n" if i < findings - 1 else "\n")
        out.write('    ],\n    "NextToken": "eyJiZW5jaCI6IHRydWV9"\n}\n')
    return path.stat().st_size


# ------------------------------------------------------------------------------------------ the child


class _FirstWrite(CountingSink):
    """A sink that notes when it was first written to."""

    def __init__(self, clock_start: float) -> None:
        super().__init__()
        self.clock_start = clock_start
        self.first: float | None = None
        self.writes = 0

    def write(self, text: str) -> int:
        if self.first is None and text:
            self.first = time.perf_counter() - self.clock_start
        self.writes += 1
        return super().write(text)


def child(mode: str, path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    out: dict[str, Any] = {"mode": mode}
    from findings_router.settings.load import load_policy, policy_path
    from findings_router_local.replay import run_replay

    out["import_seconds"] = time.perf_counter() - started
    if mode == "json_loads":
        called = time.perf_counter()
        document = json.loads(path.read_text(encoding="utf-8"))
        out["seconds"] = time.perf_counter() - called
        out["findings"] = len(document["Findings"])
    elif mode in ("replay_json", "replay_table"):
        policy = load_policy(policy_path(CONFIG_DIR, "prod"))
        called = time.perf_counter()
        stdout, stderr = _FirstWrite(called), _FirstWrite(called)
        fmt = "json" if mode == "replay_json" else "table"
        out["exit_status"] = run_replay(policy, [path], fmt, out=stdout, err=stderr, progress=True, width=160)
        out["seconds"] = time.perf_counter() - called
        out["first_progress_seconds"] = stderr.first
        out["first_output_seconds"] = stdout.first
        out["output_lines"] = stdout.lines
        out["progress_draws"] = stderr.writes
    elif mode != "imports":
        raise SystemExit(f"unknown mode {mode}")
    out = {k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}
    out["vmhwm_kb"] = _vmhwm_kb()
    out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def _run_child(mode: str, path: Path) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = Path(f.name)
    try:
        args = [sys.executable, "-m", "bench.replay_stream", "--child", mode, str(path), str(result)]
        subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ))
        return dict(json.loads(result.read_text(encoding="utf-8")))
    finally:
        result.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ the bench


def _mb(out: dict[str, Any]) -> float:
    return round((out.get("vmhwm_kb") or out["maxrss_kb"]) / 1024, 1)


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def run(findings: int = FINDINGS, modes: tuple[str, ...] = MODES) -> BenchResult:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="findings-router-replay-") as tmp:
        path = Path(tmp) / "get-findings.json"
        size = write_export(path, findings)
        generated = time.perf_counter() - started
        measured = {mode: _run_child(mode, path) for mode in modes}
    peak = {mode: _mb(out) for mode, out in measured.items()}
    replay = measured.get("replay_json", {})
    loads = measured.get("json_loads", {})
    ratio = peak["replay_json"] / peak["json_loads"] if {"replay_json", "json_loads"} <= set(peak) else None
    details: dict[str, Any] = {
        "findings": findings,
        "file_mb": round(size / 1024 / 1024, 1),
        "generate_seconds": round(generated, 2),
        "peak_rss_mb": peak,
        "measure": "VmHWM of each child (peak RSS of its own address space), a fresh interpreter per mode",
        "replay_json": {k: v for k, v in replay.items() if k not in ("mode", "vmhwm_kb", "maxrss_kb")},
        "replay_table": {
            k: v for k, v in measured.get("replay_table", {}).items() if k not in ("mode", "vmhwm_kb", "maxrss_kb")
        },
        "json_loads_seconds": loads.get("seconds"),
        "imports_seconds": measured.get("imports", {}).get("import_seconds"),
    }
    figure = (
        f"replay: peak {peak.get('replay_json', 0):.0f} MB, first progress {_s(replay.get('first_progress_seconds'))}"
        f" (all {_s(replay.get('seconds'))}) vs json.loads: peak {peak.get('json_loads', 0):.0f} MB,"
        f" {_s(loads.get('seconds'))} before anything"
    )
    return BenchResult(
        name="replay_stream",
        title=f"replay of a {findings:,}-finding get-findings export ({size / 1024 / 1024:.0f} MB): streaming",
        figure=figure,
        target="- (figures only)",
        passed=None,
        ratio=ratio,
        details=details,
        notes=[
            "ratio: replay's peak RSS over json.loads' of the same file (what replay did first before issue 12)",
            "first progress: from the run_replay call to the first write on stderr (progress on); imports excluded",
            f"the imports-only child's peak RSS ({peak.get('imports', 0):.0f} MB) is the floor under both",
        ],
        seconds=time.perf_counter() - started,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_stream", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FINDINGS:,} findings instead of {FINDINGS:,}")
    parser.add_argument("--findings", type=int, help="how many findings the export holds")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, file, result = args.child
        Path(result).write_text(json.dumps(child(mode, Path(file))), encoding="utf-8")
        return 0
    result = run(args.findings or (QUICK_FINDINGS if args.quick else FINDINGS))
    print(f"{result.title}\n  {result.figure}")
    print(json.dumps(result.details, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
