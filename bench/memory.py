"""Bench 5: peak memory of a 100-finding invocation, and the size of the deployed function package.

Memory: a fresh interpreter per sample (`bench/_memory_child.py`) runs the real handler once on 100 SQS
records of new findings from the fixture mix (the worst case: every finding is written, pages are posted) against
moto's server and the local PagerDuty receiver, and reports `ru_maxrss`. The baseline is a process that only
imports boto3. The handler's modules come from a byte-compiled copy, as deployed. Target: the invocation fits a
256 MB function comfortably (peak RSS at most half of it).

Size: the package built the way infra builds it (`infra.packaging.FunctionPackage`: the lock file's
manylinux aarch64 / CPython 3.12 wheels, our code, the policy file), zipped with deflate, broken down by what is
in it. Powertools is bundled (it is in requirements-lambda.lock), not taken from the official layer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench.coldstart import compiled_copy
from bench.common import CONFIG_DIR, ROOT, BenchResult, median
from bench.workload import generate

LAMBDA_MEMORY_MB = 256
TARGET_MB = LAMBDA_MEMORY_MB / 2
UNZIPPED_LIMIT_MB = 250  # Lambda's limit for a function's unzipped deployment package (code + layers)
CHILD = Path(__file__).resolve().parent / "_memory_child.py"

GROUPS = {
    "AWS SDK (boto3, botocore, s3transfer, jmespath, dateutil, six, urllib3)": (
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "dateutil",
        "six",
        "urllib3",
    ),
    "Powertools (aws_lambda_powertools)": ("aws_lambda_powertools",),
    "pydantic (+ pydantic_core, annotated_types, typing_*)": (
        "pydantic",
        "pydantic_core",
        "annotated_types",
        "typing_inspection",
        "typing_extensions",
    ),
    "requests (+ certifi, charset_normalizer, idna)": ("requests", "certifi", "charset_normalizer", "idna"),
    "PyYAML (yaml, _yaml)": ("yaml", "_yaml"),
    "findings_router (our code)": ("findings_router",),
    "policy file (config/)": ("config",),
}


def _child(mode: str, env: dict[str, str], event_file: Path | None = None) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = Path(f.name)
    try:
        args = [sys.executable, str(CHILD), mode, str(result)]
        if event_file is not None:
            args.append(str(event_file))
        subprocess.run(args, env=env, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir())
        return dict(json.loads(result.read_text(encoding="utf-8")))
    finally:
        result.unlink(missing_ok=True)


MODES = ("boto3", "boto3_client", "handler_import", "invoke")


def measure_memory(runs: int = 3, findings: int = 100, modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    from bench.local import local_router

    samples: dict[str, list[float]] = {m: [] for m in modes}
    info: dict[str, Any] = {}
    inherited: list[float] = []
    with tempfile.TemporaryDirectory(prefix="findings-router-memory-") as tmp, local_router() as local:
        compiled = compiled_copy(Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(compiled)}
        for r in range(runs):
            events = generate(findings, seed=f"memory-{r}", keep=lambda _n, e: len(e["detail"]["findings"]) == 1)
            event_file = Path(tmp) / f"event-{r}.json"
            event_file.write_text(json.dumps(local.sqs_batch(events)), encoding="utf-8")
            order = list(samples) if r % 2 == 0 else list(reversed(samples))
            for mode in order:
                out = _child(mode, env, event_file if mode == "invoke" else None)
                if mode == "invoke":
                    if out.get("failures"):
                        raise RuntimeError(f"invocation reported {out['failures']} failed records")
                    info = out
                samples[mode].append((out.get("vmhwm_kb") or out["maxrss_kb"]) / 1024)
                inherited.append(out["maxrss_kb"] / 1024)
    mb = {k: round(median(v), 1) for k, v in samples.items()}
    return {
        "peak_rss_mb": mb,
        "measure": "VmHWM of the child (peak RSS of its own address space)",
        "ru_maxrss_mb_as_reported": round(median(inherited), 1),
        "runs": runs,
        "records": info.get("records"),
        "invoke_seconds": info.get("seconds"),
    }


def _group_of(top: str) -> str:
    name = top.split("-", maxsplit=1)[0] if top.endswith(".dist-info") else top
    name = name.removesuffix(".py")
    if top.endswith(".dist-info"):
        return "package metadata (*.dist-info)"
    for group, members in GROUPS.items():
        if name in members or name.split(".")[0] in members:
            return group
    return "other"


def build_package(output: Path, *, include_dependencies: bool = True) -> dict[str, Any]:
    """Build the prod package like infra does; None-safe description of how it was built."""
    from infra.packaging import FunctionPackage, find_target_python

    target_python = find_target_python() if include_dependencies else None
    FunctionPackage(
        policy_file=CONFIG_DIR / "prod.yaml",
        packaged_policy_path="config/prod.json",
        include_dependencies=include_dependencies,
    ).build(output, target_python=target_python)
    return {"builder": "infra.packaging.FunctionPackage", "byte_compiled_with": target_python}


def measure_package(include_dependencies: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="findings-router-package-") as tmp:
        out = Path(tmp) / "asset"
        how = build_package(out, include_dependencies=include_dependencies)
        zip_path = Path(tmp) / "asset.zip"
        unzipped: dict[str, int] = {}
        zipped: dict[str, int] = {}
        files = 0
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            for path in sorted(out.rglob("*")):
                if not path.is_file():
                    continue
                rel = path.relative_to(out)
                z.write(path, rel.as_posix())
                group = _group_of(rel.parts[0])
                unzipped[group] = unzipped.get(group, 0) + path.stat().st_size
                files += 1
            for zi in z.infolist():
                group = _group_of(zi.filename.split("/")[0])
                zipped[group] = zipped.get(group, 0) + zi.compress_size
        total_unzipped = sum(unzipped.values())
        total_zipped = zip_path.stat().st_size
    mb = 1024 * 1024
    return {
        **how,
        "dependencies_included": include_dependencies,
        "files": files,
        "unzipped_mb": round(total_unzipped / mb, 2),
        "zipped_mb": round(total_zipped / mb, 2),
        "by_group_mb": {
            g: {"unzipped": round(unzipped[g] / mb, 2), "zipped": round(zipped.get(g, 0) / mb, 2)}
            for g in sorted(unzipped, key=lambda g: -unzipped[g])
        },
    }


def run(
    runs: int = 3, findings: int = 100, include_dependencies: bool = True, modes: tuple[str, ...] = MODES
) -> list[BenchResult]:
    """The memory figure needs the "invoke" and "boto3" modes; the others are context."""
    started = time.perf_counter()
    memory = measure_memory(runs, findings, modes)
    mem_seconds = time.perf_counter() - started
    peak = memory["peak_rss_mb"]
    ratio = peak["invoke"] / peak["boto3"]
    memory_result = BenchResult(
        name="memory",
        title=f"Peak RSS of a {findings}-finding invocation (fresh process) vs a process importing boto3",
        figure=f"{peak['invoke']:.0f} MB vs {peak['boto3']:.0f} MB ({ratio:.2f}x); {LAMBDA_MEMORY_MB} MB function",
        target=f"<= {TARGET_MB:.0f} MB (half of {LAMBDA_MEMORY_MB} MB)",
        passed=peak["invoke"] <= TARGET_MB,
        ratio=ratio,
        details=memory,
        notes=[
            "peak RSS = VmHWM from /proc/self/status in the child: ru_maxrss is inherited across fork+exec on Linux "
            "and reports this (large) parent's peak instead; Lambda's Max Memory Used also counts the runtime client",
            "the invocation is the worst case: 100 new findings (every one written, every page posted)",
        ],
        seconds=mem_seconds,
    )
    size_started = time.perf_counter()
    try:
        package = measure_package(include_dependencies)
        passed: bool | None = package["unzipped_mb"] < UNZIPPED_LIMIT_MB
        figure = f"{package['zipped_mb']:.1f} MB zipped, {package['unzipped_mb']:.1f} MB unzipped"
    except Exception as exc:  # another engineer owns infra/: report, do not fail the whole run
        package = {"error": f"{type(exc).__name__}: {exc}"}
        passed = None
        figure = "not measured (see details.error)"
    size_result = BenchResult(
        name="package_size",
        title="Deployed function package (prod), built like infra/packaging.py",
        figure=figure,
        target=f"< {UNZIPPED_LIMIT_MB} MB unzipped (Lambda limit)",
        passed=passed,
        details=package,
        notes=[
            "Powertools is bundled from requirements-lambda.lock (pinned 3.37.0, the version the tests run), not "
            "taken from the official AWSLambdaPowertoolsPythonV3-python312-arm64 layer",
            "boto3/botocore are bundled on purpose (infra/packaging.py): the runtime's SDK changes under a "
            "deployed function",
        ],
        seconds=time.perf_counter() - size_started,
    )
    return [memory_result, size_result]


__all__ = ["ROOT", "measure_memory", "measure_package", "run"]
