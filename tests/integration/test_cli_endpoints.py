"""The CLI's AWS commands against an endpoint nothing listens on: one line, exit status 2 (a real socket)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from findings_router_local.cli import main
from tests.builders import CONFIG_DIR


@pytest.fixture
def config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    return target


def test_an_unreachable_endpoint_is_one_line_for_redrive_and_status(config: Path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    for command in ("redrive", "status"):
        code = main([command, "--env", "prod", "--config-dir", str(config), "--region", "eu-central-1",
                     "--endpoint-url", "http://127.0.0.1:9"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2
        assert err.startswith(f"findings-router: {command}: reading ") and "Could not connect" in err
        assert err.count("\n") == 1
