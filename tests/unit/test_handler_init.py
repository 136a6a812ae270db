"""The router handler in Lambda builds its runtime during the init phase (burst CPU), not in the first invocation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.builders import CONFIG_DIR

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
PROBE = "import findings_router.handler as h; print('built' if h._runtime is not None else 'lazy')"


def _import_handler(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POLICY_FILE", "STATE_TABLE"))}
    base.update(
        PYTHONPATH=str(FUNCTIONS),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-central-1",
        AWS_EC2_METADATA_DISABLED="true",
        POLICY_FILE=str(CONFIG_DIR / "prod.yaml"),
        STATE_TABLE_NAME="findings-router-state-prod",
        **env,
    )
    done = subprocess.run([sys.executable, "-c", PROBE], env=base, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_in_lambda_the_runtime_is_built_at_import():
    assert _import_handler(AWS_LAMBDA_FUNCTION_NAME="findings-router-prod") == "built"


def test_outside_lambda_it_is_built_on_first_use():
    assert _import_handler() == "lazy"
