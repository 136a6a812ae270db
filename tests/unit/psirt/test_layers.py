"""findings_router.psirt runs in the digest Lambda: it imports nothing of findings_router_local, and all of it but the
sweep is pure (no AWS SDK, no clock, no environment), as the domain is."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_layers import PACKAGE, _problems

PSIRT = sorted((PACKAGE / "psirt").glob("*.py"))
LOCAL = ("findings_router_local", "infra", "tests", "bench", "moto", "yaml")
SDK = ("boto3", "botocore", "aws_lambda_powertools", "requests", "urllib3")


def test_there_is_a_psirt_package():
    assert {p.name for p in PSIRT} >= {"model.py", "inspector.py", "securityhub.py", "report.py", "sweep.py"}


@pytest.mark.parametrize("path", PSIRT, ids=lambda p: p.name)
def test_psirt_imports_nothing_local_and_only_the_sweep_touches_the_sdk(path: Path):
    forbidden = LOCAL if path.name == "sweep.py" else LOCAL + SDK
    assert _problems(path, forbidden) == []
