"""infra/definitions.py: plain data shared by the stack and local mode."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from findings_router.config import Policy

from infra.definitions import (
    LAMBDA_TASK_ROOT,
    QUEUE_RETENTION_DAYS,
    SECONDS_PER_DAY,
    function_environment,
    packaged_policy_path,
    queue_settings,
    resource_names,
    stack_name,
    state_table_definition,
    state_table_ttl_specification,
)
from tests.infra.conftest import REPO_ROOT

pytestmark = pytest.mark.infra


def _policy(environment: str = "dev", **sections: dict) -> Policy:
    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["environment"] = environment
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Policy.model_validate(data)


def test_definitions_import_no_cdk():
    code = "import sys, infra.definitions; print(sorted(m for m in sys.modules if m.startswith(('aws_cdk', 'jsii'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"


def test_names_fit_aws_limits_for_the_longest_environment_name():
    names = resource_names(_policy("a" * 16))
    assert len(names.function) <= 64
    assert len(names.rule) <= 64
    assert len(names.queue) <= 80 and len(names.dead_letter_queue) <= 80
    assert len(names.state_table) <= 255
    assert len(names.alarm_topic) <= 256
    assert len(f"{names.alarm_prefix}-oldest-message-age") <= 255
    assert len(stack_name("a" * 16)) <= 128


def test_function_environment_is_non_secret_and_points_into_the_package():
    policy = _policy()
    env = function_environment(policy, "findings-router-dev-state")
    assert env == {
        "POLICY_FILE": f"{LAMBDA_TASK_ROOT}/config/dev.yaml",
        "STATE_TABLE_NAME": "findings-router-dev-state",
        "POWERTOOLS_SERVICE_NAME": "findings-router",
        "POWERTOOLS_METRICS_NAMESPACE": "FindingsRouter",
    }
    assert env["POLICY_FILE"] == f"{LAMBDA_TASK_ROOT}/{packaged_policy_path(policy)}"


@pytest.mark.parametrize(
    ("timeout", "batch_size", "reserved", "visibility", "window", "max_concurrency"),
    [
        (120, 10, 2, 720, 0, 2),
        (900, 10, 1, 5400, 0, None),
        (60, 11, 5, 361, 1, 5),
    ],
)
def test_queue_settings(timeout, batch_size, reserved, visibility, window, max_concurrency):
    settings = queue_settings(
        _policy(
            function={"timeout_seconds": timeout, "reserved_concurrency": reserved},
            ingestion={"batch_size": batch_size, "max_receive_count": 4},
        )
    )
    assert settings.visibility_timeout_seconds == visibility
    assert settings.visibility_timeout_seconds <= 12 * 3600  # SQS maximum
    assert settings.batching_window_seconds == window
    assert settings.max_concurrency == max_concurrency
    assert settings.retention_seconds == QUEUE_RETENTION_DAYS * SECONDS_PER_DAY
    assert settings.dead_letter_retention_seconds > settings.retention_seconds
    attributes = settings.queue_attributes("arn:aws:sqs:eu-central-1:111122223333:dlq")
    assert attributes["VisibilityTimeout"] == str(visibility)
    assert '"maxReceiveCount": 4' in attributes["RedrivePolicy"]
    assert settings.dead_letter_queue_attributes()["MessageRetentionPeriod"] == str(14 * SECONDS_PER_DAY)


def test_state_table_definition_matches_the_store():
    from findings_router.dedup import DedupState
    from findings_router.model import Severity
    from findings_router.store import state_to_item

    state = DedupState(
        key="k",
        status="open",
        episode=1,
        action="page",
        severity=Severity.HIGH,
        incident_keys=("k#1",),
        members=(),
        finding_id="f",
        product_arn="p",
        title="t",
        first_seen="2026-11-21T00:00:00Z",
        last_seen="2026-11-21T00:00:00Z",
        last_notified_at="2026-11-21T00:00:00Z",
        seen_count=1,
        notify_count=1,
        version=1,
        expires_at=1_800_000_000,
    )
    item = state_to_item(state)
    definition = state_table_definition("t")
    key = definition["KeySchema"][0]["AttributeName"]
    assert item[key] == {"S": "k"}
    assert definition["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
    ttl = state_table_ttl_specification()["AttributeName"]
    assert item[ttl] == {"N": "1800000000"}  # TTL needs epoch seconds as a number
