"""Builds the router's Lambda package on this machine, without Docker.

The package is: the third-party dependencies of `requirements-lambda.lock` (already resolved for CPython 3.12 on
aarch64, installed from manylinux wheels), the code under `functions/`, and the environment's policy, validated from
`config/<env>.yaml` and written as `config/<env>.json` (the function's POLICY_FILE).

boto3/botocore stay in the package although the Lambda runtime ships them (with s3transfer, 28 MB of the 52 MB
package): the runtime's SDK is whatever version AWS last put there and changes under a deployed function, while
ours is the one pinned in the lock file and exercised by the test suite; AWS recommends packaging the SDK for that
reason. The package (26 MB zipped) stays far below Lambda's 250 MB unzipped limit.

Installed dependencies are cached in `.cache/lambda-dependencies/<key>/`, keyed by the lock file's content and the
build settings, so repeated synths (and tests) do not reinstall. When a Python 3.12 interpreter is on this machine,
everything is byte-compiled for 3.12 with hash-based, unchecked .pyc files: the Lambda file system is read-only,
so without shipped .pyc files every cold start recompiles every imported module, and timestamp-based .pyc files
would be ignored because asset zips carry fixed timestamps.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from findings_router.settings.load import load_policy, policy_json

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
CONFIG_DIR = REPO_ROOT / "config"
LOCK_FILE = REPO_ROOT / "requirements-lambda.lock"
CACHE_DIR = REPO_ROOT / ".cache" / "lambda-dependencies"

TARGET_PYTHON_VERSION = "3.12"
# The lock is resolved for manylinux_2_28 aarch64; Lambda's python3.12 runtime (Amazon Linux 2023, glibc 2.34)
# runs wheels of either tag.
TARGET_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Bump when the way the cache is built changes, so old cache entries are not reused.
CACHE_FORMAT = "1"
_COMPLETE_MARKER = ".complete"
_SKIPPED_NAMES = ("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".mypy_cache", "*.egg-info")

Runner = Callable[[list[str]], None]


class PackageBuildError(RuntimeError):
    """The function package could not be built; the message says what to do."""


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 (our own argv)
    if result.returncode != 0:
        raise PackageBuildError(
            f"command failed ({result.returncode}): {' '.join(command)}\n{result.stdout}\n{result.stderr}".rstrip()
        )


def find_target_python() -> str | None:
    """A local CPython 3.12 to byte-compile with, or None (the package then ships sources only)."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [
        os.environ.get("FINDINGS_ROUTER_PY312"),
        shutil.which("python3.12"),
        # pyenv's shim refuses versions that are installed but not selected; use the installation directly.
        *sorted(
            str(p) for p in pyenv_root.glob(f"versions/{TARGET_PYTHON_VERSION}.*/bin/python{TARGET_PYTHON_VERSION}")
        ),
    ]
    for path in candidates:
        if not path:
            continue
        # pyenv shims exist even when that version is not installed; ask the interpreter itself.
        probe = subprocess.run(  # noqa: S603 (an interpreter path found on PATH)
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == TARGET_PYTHON_VERSION:
            return path
    return None


def pip_install_command(lock_file: Path, target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        # The lock file is the complete, resolved set: install exactly it.
        "--no-deps",
        # pip would compile for *this* interpreter; the right .pyc files are made by compile_command below.
        "--no-compile",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        TARGET_PYTHON_VERSION,
        *(arg for platform in TARGET_PLATFORMS for arg in ("--platform", platform)),
        "--target",
        str(target),
        "-r",
        str(lock_file),
    ]


def compile_command(python: str, directory: Path) -> list[str]:
    return [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(directory)]


def dependencies_cache_key(lock_file: Path, *, compiled: bool) -> str:
    digest = hashlib.sha256()
    digest.update(lock_file.read_bytes())
    settings = (CACHE_FORMAT, TARGET_PYTHON_VERSION, *TARGET_PLATFORMS, "compiled" if compiled else "sources")
    digest.update("\0".join(settings).encode())
    return digest.hexdigest()[:24]


def ensure_dependencies(
    lock_file: Path = LOCK_FILE,
    cache_dir: Path = CACHE_DIR,
    *,
    target_python: str | None = None,
    run: Runner = _run,
) -> Path:
    """The directory holding the installed dependencies, installing them on first use.

    Safe against concurrent builds: each installs into its own temporary directory and renames it into place;
    a build that loses the race discards its copy.
    """
    key = dependencies_cache_key(lock_file, compiled=target_python is not None)
    final = cache_dir / key
    if (final / _COMPLETE_MARKER).is_file():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
    try:
        run(pip_install_command(lock_file, staging))
        # Console scripts (bin/) are of no use inside a Lambda function.
        shutil.rmtree(staging / "bin", ignore_errors=True)
        if target_python is not None:
            run(compile_command(target_python, staging))
        (staging / _COMPLETE_MARKER).write_text(f"{lock_file.name}\n", encoding="utf-8")
        if final.exists():
            # An incomplete leftover of an interrupted build (a complete one returned above).
            shutil.rmtree(final)
        try:
            staging.rename(final)
        except OSError:
            if not (final / _COMPLETE_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _link_or_copy(source: str, destination: str) -> None:
    # Hard links make the per-environment copies of ~50 MB of dependencies free; fall back to copying across
    # file systems. Nothing writes to the staged asset afterwards, so sharing inodes with the cache is safe.
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@dataclass(frozen=True)
class FunctionPackage:
    """What goes into one environment's function package."""

    policy_file: Path
    packaged_policy_path: str
    include_dependencies: bool = True
    functions_dir: Path = FUNCTIONS_DIR
    lock_file: Path = LOCK_FILE
    cache_dir: Path = CACHE_DIR

    def build(self, output_dir: Path, *, run: Runner = _run, target_python: str | None = None) -> None:
        """Write the package into `output_dir` (created if missing; it should be empty)."""
        output_dir.mkdir(parents=True, exist_ok=True)
        if self.include_dependencies:
            dependencies = ensure_dependencies(self.lock_file, self.cache_dir, target_python=target_python, run=run)
            shutil.copytree(
                dependencies,
                output_dir,
                dirs_exist_ok=True,
                copy_function=_link_or_copy,
                ignore=shutil.ignore_patterns(_COMPLETE_MARKER),
            )
        shutil.copytree(
            self.functions_dir,
            output_dir,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns(*_SKIPPED_NAMES),
        )
        policy_target = output_dir / self.packaged_policy_path
        policy_target.parent.mkdir(parents=True, exist_ok=True)
        # Validated here (file:line errors) and shipped as JSON, which the function reads without a YAML parser.
        policy_target.write_text(policy_json(load_policy(self.policy_file)), encoding="utf-8")
        if target_python is not None:
            for package in sorted(p for p in self.functions_dir.iterdir() if p.is_dir()):
                if package.name not in ("__pycache__",):
                    run(compile_command(target_python, output_dir / package.name))


def package_size(directory: Path) -> int:
    """Total bytes of the files under `directory` (the unzipped size Lambda limits to 250 MB)."""
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
