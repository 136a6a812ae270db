"""The Lambda package builder: dependency cache keyed by the lock file, package layout, no Docker, no network.

pip and compileall are replaced by a recorder that writes what they would, so these tests stay offline; the real
install is exercised by `make synth`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from findings_router.settings.load import load_policy
from infra.packaging import (
    TARGET_PLATFORMS,
    FunctionPackage,
    PackageBuildError,
    compile_command,
    dependencies_cache_key,
    ensure_dependencies,
    package_size,
    pip_install_command,
)
from tests.builders import CONFIG_DIR

pytestmark = pytest.mark.infra


class FakeTools:
    """Stands in for `pip install --target DIR` and `python -m compileall DIR`."""

    def __init__(self, fail: bool = False) -> None:
        self.commands: list[list[str]] = []
        self.fail = fail

    def __call__(self, command: list[str]) -> None:
        self.commands.append(command)
        if self.fail:
            raise PackageBuildError("pip: no matching distribution")
        if "pip" in command:
            target = Path(command[command.index("--target") + 1])
            (target / "pydantic").mkdir(parents=True)
            (target / "pydantic" / "__init__.py").write_text("VERSION = '2'\n")
            (target / "bin").mkdir()
            (target / "bin" / "some-script").write_text("#!/bin/sh\n")
        elif "compileall" in command:
            for source in Path(command[-1]).rglob("*.py"):
                cache = source.parent / "__pycache__"
                cache.mkdir(exist_ok=True)
                (cache / f"{source.stem}.cpython-312.pyc").write_bytes(b"pyc")

    @property
    def pip_runs(self) -> int:
        return sum("pip" in c for c in self.commands)


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "requirements-lambda.lock"
    path.write_text("pydantic==2.14.3\n")
    return path


@pytest.fixture
def functions_dir(tmp_path: Path) -> Path:
    package = tmp_path / "functions" / "findings_router"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"stale")
    return tmp_path / "functions"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "dev.yaml"
    path.write_text((CONFIG_DIR / "dev.yaml").read_text())
    return path


def test_pip_command_targets_lambda_python_312_on_arm64(lock: Path, tmp_path: Path):
    command = pip_install_command(lock, tmp_path / "out")
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert "--only-binary=:all:" in command
    assert "--no-deps" in command
    assert command[command.index("--implementation") + 1] == "cp"
    assert command[command.index("--python-version") + 1] == "3.12"
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == list(TARGET_PLATFORMS)
    assert "manylinux2014_aarch64" in platforms
    assert command[command.index("--target") + 1] == str(tmp_path / "out")
    assert command[-2:] == ["-r", str(lock)]


def test_compile_command_makes_pyc_files_valid_without_timestamps(tmp_path: Path):
    command = compile_command("/usr/bin/python3.12", tmp_path)
    assert command[command.index("--invalidation-mode") + 1] == "unchecked-hash"


def test_dependencies_are_installed_once_per_lock_content(lock: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    tools = FakeTools()
    first = ensure_dependencies(lock, cache, run=tools)
    again = ensure_dependencies(lock, cache, run=tools)
    assert first == again
    assert tools.pip_runs == 1
    assert (first / "pydantic" / "__init__.py").is_file()
    assert not (first / "bin").exists()

    lock.write_text("pydantic==2.14.4\n")
    changed = ensure_dependencies(lock, cache, run=tools)
    assert changed != first
    assert tools.pip_runs == 2
    # Nothing half-built is left next to the finished entries.
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.name, changed.name])


def test_cache_key_depends_on_lock_and_compilation(lock: Path):
    key = dependencies_cache_key(lock, compiled=True)
    assert key != dependencies_cache_key(lock, compiled=False)
    lock.write_text(lock.read_text() + "\n# comment\n")
    assert key != dependencies_cache_key(lock, compiled=True)


def test_failed_install_leaves_no_cache_entry(lock: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    with pytest.raises(PackageBuildError, match="no matching distribution"):
        ensure_dependencies(lock, cache, run=FakeTools(fail=True))
    assert list(cache.iterdir()) == []


def test_interrupted_build_is_rebuilt(lock: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    leftover = cache / dependencies_cache_key(lock, compiled=False)
    leftover.mkdir(parents=True)  # no completion marker
    (leftover / "half").write_text("")
    tools = FakeTools()
    result = ensure_dependencies(lock, cache, run=tools)
    assert tools.pip_runs == 1
    assert not (result / "half").exists()


def test_package_with_dependencies(lock: Path, functions_dir: Path, policy_file: Path, tmp_path: Path):
    tools = FakeTools()
    package = FunctionPackage(
        policy_file=policy_file,
        packaged_policy_path="config/dev.json",
        functions_dir=functions_dir,
        lock_file=lock,
        cache_dir=tmp_path / "cache",
    )
    out = tmp_path / "asset"
    package.build(out, run=tools, target_python="/usr/bin/python3.12")
    assert (out / "pydantic" / "__init__.py").is_file()
    assert (out / "findings_router" / "handler.py").is_file()
    # validated from the YAML and shipped as JSON, which loads (no YAML parser) into the very same policy
    assert load_policy(out / "config" / "dev.json") == load_policy(policy_file)
    assert not (out / ".complete").exists()
    assert not (out / "findings_router" / "__pycache__" / "handler.cpython-311.pyc").exists()
    assert (out / "findings_router" / "__pycache__" / "handler.cpython-312.pyc").is_file()
    assert (out / "pydantic" / "__pycache__" / "__init__.cpython-312.pyc").is_file()
    assert package_size(out) > 0

    # A second environment reuses the cache: no second pip run.
    package.build(tmp_path / "asset2", run=tools, target_python="/usr/bin/python3.12")
    assert tools.pip_runs == 1


def test_package_without_dependencies_runs_no_tool(functions_dir: Path, policy_file: Path, tmp_path: Path):
    tools = FakeTools(fail=True)
    package = FunctionPackage(
        policy_file=policy_file,
        packaged_policy_path="config/dev.json",
        include_dependencies=False,
        functions_dir=functions_dir,
    )
    out = tmp_path / "asset"
    package.build(out, run=tools)
    assert tools.commands == []
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "config/dev.json",
        "findings_router/__init__.py",
        "findings_router/handler.py",
    ]
