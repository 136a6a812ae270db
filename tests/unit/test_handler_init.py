"""In Lambda, the router and the acknowledgement receiver build their runtime during the init phase (burst CPU), not
in their first invocation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import CONFIG_DIR

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
PROBE = "import findings_router.{} as h; print('built' if h.runtime_slot.current is not None else 'lazy')"
HANDLERS = ["entrypoints.route_findings", "entrypoints.receive_acks"]


def _run(code: str, **env: str) -> str:
    """stdout of `code` in a fresh interpreter with the function's code and the prod policy (like Lambda's)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POLICY_FILE", "STATE_TABLE"))}
    base.update(
        PYTHONPATH=str(FUNCTIONS),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="eu-central-1",
        AWS_EC2_METADATA_DISABLED="true",
        POLICY_FILE=str(CONFIG_DIR / "prod.yaml"),
        STATE_TABLE_NAME="findings-router-state-prod",
    )
    base.update(env)
    done = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _import_handler(module: str, **env: str) -> str:
    return _run(PROBE.format(module), **env)


@pytest.mark.parametrize("module", HANDLERS)
def test_in_lambda_the_runtime_is_built_at_import(module):
    assert _import_handler(module, AWS_LAMBDA_FUNCTION_NAME="findings-router-prod") == "built"


@pytest.mark.parametrize("module", HANDLERS)
def test_outside_lambda_it_is_built_on_first_use(module):
    assert _import_handler(module) == "lazy"


def test_the_packaged_json_policy_is_read_without_a_yaml_parser(tmp_path):
    from findings_router.settings.load import load_policy, policy_json

    packaged = tmp_path / "prod.json"
    packaged.write_text(policy_json(load_policy(CONFIG_DIR / "prod.yaml")))
    probe = "import sys, findings_router.entrypoints.route_findings as h; print(h.runtime_slot.current.policy.environment, 'yaml' in sys.modules)"
    out = _run(probe, AWS_LAMBDA_FUNCTION_NAME="findings-router-prod", POLICY_FILE=str(packaged))
    assert out.split() == ["prod", "False"]


def test_the_meta_alert_function_starts_with_only_its_own_environment():
    """It has POLICY_FILE but no state table: it must not pull in (and so initialise) the router handler."""
    probe = (
        "import os, sys; del os.environ['STATE_TABLE_NAME']; "
        "import findings_router.entrypoints.page_alarms as a; a.get_runtime(); "
        "print('findings_router.entrypoints.route_findings' in sys.modules)"
    )
    assert _run(probe, AWS_LAMBDA_FUNCTION_NAME="findings-router-prod-meta-alerts") == "False"
