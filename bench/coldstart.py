"""Bench 2: cold start: the router's Lambda init in a fresh interpreter, against boto3 and one client.

The headline (issue 19): what Lambda's init phase runs for the router, `import findings_router.entrypoints.route_findings`
with the function's environment (infra/contract.function_environment, plus what Lambda sets: AWS_LAMBDA_FUNCTION_NAME,
AWS_REGION), which builds the runtime during init (`bootstrap.build_during_init`: boto3, the DynamoDB client, the
policy validated, the notifiers), against `import boto3; boto3.client("dynamodb")`, the least any function that reads
DynamoDB pays. Target: at most 1.3x.

Every sample is a new `python -c "..."` process (this venv's interpreter); its CPU time (user + system, from
`os.wait4`) and its wall time, minus the medians of `python -c pass` measured in the same rounds. The headline
is CPU time, which other processes' load on a shared machine does not inflate; wall time is reported beside it. The
commands run interleaved, in a rotating order, for several rounds, and the medians are compared (and the median of
the per-round ratios, each round's pair measured side by side). `PYTHONDONTWRITEBYTECODE=1` is set machine-wide and
the repository's `functions/` has no byte code, so the handler's own modules are imported from a byte-compiled copy in a
temporary directory (as the deployed package ships them, see infra/packaging.py); the venv's packages are compiled.

Also measured (no target): the handler's import alone outside Lambda against `import boto3` (the earlier headline),
and the import from the uncompiled source tree. `python -X importtime` of the init then says what costs what.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import CONFIG_DIR, FUNCTIONS_DIR, BenchResult, median

TARGET = 1.3

HANDLER = "import findings_router.entrypoints.route_findings"
INIT = HANDLER + " as h; assert h.runtime_slot.current is not None"  # built during init, as in Lambda

PRIMARY: dict[str, str] = {
    "pass": "pass",
    "boto3_client": "import boto3; boto3.client('dynamodb')",
    "lambda_init": INIT,
}
# informational, sampled every third round
SECONDARY: dict[str, str] = {
    "boto3": "import boto3",
    "handler": HANDLER,
    "handler_source": HANDLER,
}
# The commands that run as in Lambda, with the function's environment.
IN_LAMBDA = ("lambda_init",)


def compiled_copy(directory: Path) -> Path:
    """functions/ copied and byte-compiled (unchecked-hash .pyc, like the deployed package)."""
    target = directory / "functions"
    shutil.copytree(FUNCTIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", str(target)],
        check=True,
        capture_output=True,
    )
    return target


def _env(pythonpath: Path, policy_file: Path = CONFIG_DIR / "prod.yaml") -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(pythonpath),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "POLICY_FILE": str(policy_file),
            "STATE_TABLE_NAME": "findings-router-state-bench",
        }
    )
    return env


def packaged_policy(directory: Path) -> Path:
    """prod's policy as the function package ships it (JSON, see infra/packaging.py)."""
    from findings_router.settings.load import load_policy, policy_json

    path = directory / "prod.json"
    path.write_text(policy_json(load_policy(CONFIG_DIR / "prod.yaml")), encoding="utf-8")
    return path


def lambda_environment(pythonpath: Path, policy_file: Path) -> dict[str, str]:
    """The router function's environment as the stack sets it (infra/contract.function_environment) and as Lambda
    adds to it, with the packaged policy at `policy_file`."""
    from findings_router.settings.load import load_policy
    from infra.contract import function_environment

    policy = load_policy(policy_file)
    env = _env(pythonpath, policy_file)
    queue = "https://sqs.eu-central-1.amazonaws.com/111122223333/findings-router-prod-findings-dlq"
    env.update(function_environment(policy, "findings-router-state-prod", dead_letter_queue_url=queue))
    env.update(
        {
            "POLICY_FILE": str(policy_file),
            "AWS_LAMBDA_FUNCTION_NAME": "findings-router-prod-router",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_REGION": "eu-central-1",
        }
    )
    return env


def _run(code: str, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )


def _sample(code: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds = user + system) of one fresh interpreter running `code`."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"python -c {code!r} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def parse_importtime(stderr: str) -> list[tuple[int, str, int, int]]:
    """`-X importtime` lines → (depth, module, self µs, cumulative µs), in the order printed (post-order)."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((depth, name.strip(), int(self_us), int(cum_us)))
    return rows


def importtime_report(code: str, env: dict[str, str], runs: int) -> dict[str, Any]:
    """Median over `runs` of: total, direct imports of the handler, and self time per top-level package."""
    totals: list[float] = []
    direct: dict[str, list[int]] = {}
    packages: dict[str, list[int]] = {}
    for _ in range(runs):
        rows = parse_importtime(_run(code, env, "-X", "importtime").stderr)
        handler_row = next(
            (i for i, r in enumerate(rows) if r[1] == "findings_router.entrypoints.route_findings"), None
        )
        totals.append(sum(r[2] for r in rows))
        if handler_row is not None:
            depth = rows[handler_row][0]
            # children of the handler: the lines just before it, one level deeper, back to its previous sibling
            i = handler_row - 1
            while i >= 0 and rows[i][0] > depth:
                if rows[i][0] == depth + 1:
                    direct.setdefault(rows[i][1], []).append(rows[i][3])
                i -= 1
        per_package: dict[str, int] = {}
        for _, name, self_us, _ in rows:
            top = name.split(".")[0]
            per_package[top] = per_package.get(top, 0) + self_us
        for top, us in per_package.items():
            packages.setdefault(top, []).append(us)
    ms = {k: median([float(x) for x in v]) / 1000 for k, v in direct.items()}
    pk = {k: median([float(x) for x in v]) / 1000 for k, v in packages.items()}
    return {
        "total_ms": round(median(totals) / 1000, 1),
        "handler_direct_imports_ms": {k: round(v, 1) for k, v in sorted(ms.items(), key=lambda kv: -kv[1])[:12]},
        "self_time_by_package_ms": {k: round(v, 1) for k, v in sorted(pk.items(), key=lambda kv: -kv[1])[:15]},
    }


def run(rounds: int = 13, importtime_runs: int = 3, *, secondary: bool = True) -> BenchResult:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="findings-router-coldstart-") as tmp:
        compiled = compiled_copy(Path(tmp))
        policy_file = packaged_policy(Path(tmp))
        env = _env(compiled, policy_file)
        lambda_env = lambda_environment(compiled, policy_file)
        envs = {name: lambda_env if name in IN_LAMBDA else env for name in (*PRIMARY, *SECONDARY)}
        envs["handler_source"] = _env(FUNCTIONS_DIR, policy_file)
        commands = {**PRIMARY, **(SECONDARY if secondary else {})}
        # the handler must come from the compiled copy, not from the editable install's source tree
        where = _run(f"{HANDLER} as h; print(h.__file__)", env).stdout.strip()
        if not where.startswith(str(compiled)):
            raise RuntimeError(f"{HANDLER.rsplit(maxsplit=1)[-1]} imported from {where}, not from the compiled copy")
        wall: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for name, code in commands.items():  # warm the file system cache once
            _sample(code, envs[name])
        for r in range(rounds):
            names = [n for n in commands if n in PRIMARY or r % 3 == 0]
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                w, c = _sample(commands[name], envs[name])
                wall[name].append(w)
                cpu[name].append(c)
        report = importtime_report(INIT, lambda_env, importtime_runs)
        client_report = importtime_report(PRIMARY["boto3_client"], env, importtime_runs)

    def above_pass(samples: dict[str, list[float]]) -> dict[str, float]:
        base = median(samples["pass"])
        return {name: (median(v) - base) * 1000 for name, v in samples.items() if name != "pass"}

    ms = above_pass(cpu)
    wall_ms = above_pass(wall)
    ratio = ms["lambda_init"] / ms["boto3_client"]
    # Each round's pair, measured side by side (the pass baseline of the same round subtracted).
    paired = [
        (i - p) / (c - p) for i, c, p in zip(cpu["lambda_init"], cpu["boto3_client"], cpu["pass"], strict=True) if c > p
    ]
    wall_ratio = wall_ms["lambda_init"] / wall_ms["boto3_client"]
    min_ratio = (min(cpu["lambda_init"]) - min(cpu["pass"])) / (min(cpu["boto3_client"]) - min(cpu["pass"]))
    import_ratio = ms["handler"] / ms["boto3"] if secondary else None
    return BenchResult(
        name="cold_start",
        title="Cold start: the router's Lambda init (import + runtime, function environment) vs boto3 + one client",
        figure=(
            f"{ratio:.2f}x CPU ({ms['lambda_init']:.0f} ms vs {ms['boto3_client']:.0f} ms above `python -c pass`); "
            f"paired rounds {median(paired):.2f}x; wall {wall_ratio:.2f}x"
        ),
        target=f"<= {TARGET:g}x",
        passed=ratio <= TARGET,
        ratio=ratio,
        details={
            "rounds": rounds,
            "python": sys.version.split()[0],
            "python_pass_cpu_ms": round(median(cpu["pass"]) * 1000, 1),
            "python_pass_wall_ms": round(median(wall["pass"]) * 1000, 1),
            "ms_above_pass": {k: round(v, 1) for k, v in ms.items()},
            "wall_ms_above_pass": {k: round(v, 1) for k, v in wall_ms.items()},
            "ratio_of_medians": round(ratio, 3),
            "ratio_paired_rounds_median": round(median(paired), 3),
            "ratio_paired_rounds_range": [round(min(paired), 3), round(max(paired), 3)],
            "ratio_of_minimum_cpu": round(min_ratio, 3),
            "wall_ratio": round(wall_ratio, 3),
            "import_only_ratio_handler_vs_boto3": None if import_ratio is None else round(import_ratio, 3),
            "cpu_ms_samples": {
                k: {
                    "min": round(min(v) * 1000, 1),
                    "median": round(median(v) * 1000, 1),
                    "max": round(max(v) * 1000, 1),
                }
                for k, v in cpu.items()
                if k in PRIMARY
            },
            "importtime_lambda_init": report,
            "importtime_boto3_client": client_report,
            "init_imports_pydantic": "pydantic" in report["self_time_by_package_ms"],
            "init_imports_requests": "requests" in report["self_time_by_package_ms"],
        },
        notes=[
            "ratio of CPU time (user + system of the child, os.wait4) above `python -c pass`; wall time is reported "
            "too but on a shared machine it includes waiting for a CPU",
            "lambda_init = the handler's import with the function's environment (infra/contract.function_environment "
            "and AWS_LAMBDA_FUNCTION_NAME): it builds the runtime during init, as in Lambda (burst CPU there, while "
            "a 256 MB invocation gets about 1/7 of a vCPU)",
            "handler = the import alone outside Lambda; handler_source = from the uncompiled source tree "
            "(PYTHONDONTWRITEBYTECODE makes every run recompile)",
        ],
        seconds=time.perf_counter() - started,
    )
