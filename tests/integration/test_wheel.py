"""The package as a user installs it: build the wheel, install it into a fresh virtual environment (versions pinned by
the project's lock), and run `findings-router` from a directory that is not the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.builders import CONFIG_DIR, FIXTURES

REPO = Path(__file__).resolve().parents[2]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(UV is None, reason="uv is installed by `make install`"),
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `findings-router` script of a fresh venv with only the wheel (and its locked dependencies) in it."""
    assert UV is not None
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [UV, "build", "--wheel", "--out-dir", str(work / "dist"), str(REPO)], check=True, capture_output=True
    )
    [wheel] = (work / "dist").glob("findings_router-*.whl")
    venv = work / "venv"
    subprocess.run([UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    install = [
        UV,
        "pip",
        "install",
        "-q",
        "--python",
        str(python),
        str(wheel),
        "-c",
        str(REPO / "requirements-dev.lock"),
    ]
    subprocess.run(install, check=True, capture_output=True)
    return venv / "bin" / "findings-router"


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POLICY_FILE", "STATE_TABLE"))}
    return subprocess.run(
        [str(script), *args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


def test_replay_and_demo_run_from_any_directory(installed: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    replay = _run(
        installed,
        "replay",
        "--env",
        "prod",
        "--config-dir",
        str(CONFIG_DIR),
        "--format",
        "json",
        str(FIXTURES / "asff_inspector_log4j.json"),
        cwd=elsewhere,
    )
    assert replay.returncode == 0, replay.stderr
    [record] = [json.loads(line) for line in replay.stdout.splitlines() if line.startswith("{")]
    assert record["decision"] == "page"

    demo = _run(installed, "demo", "--config-dir", str(CONFIG_DIR), cwd=elsewhere)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "all environments, same findings" in demo.stdout
    # The corpus is JSON lines: the package data must name *.jsonl (it named *.json, and demo broke outside the repo).
    wheel_files = zipfile.ZipFile(next((installed.parents[2] / "dist").glob("*.whl"))).namelist()
    assert "findings_router_local/corpus/iot-platform-day.jsonl" in wheel_files


def test_every_package_directory_is_listed_in_pyproject() -> None:
    """A package missing from pyproject's list is missing from the wheel (the CLI then fails to import it)."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    roots = {
        "findings_router": REPO / "functions" / "findings_router",
        "findings_router_local": REPO / "findings_router_local",
        "infra": REPO / "infra",
    }
    found = {
        ".".join((name, *init.parent.relative_to(root).parts))
        for name, root in roots.items()
        for init in root.rglob("__init__.py")
    }
    assert found == listed
