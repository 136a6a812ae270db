"""`findings-router cve` over HTTP: the Inspector / Security Hub stand-in on 127.0.0.1, real boto3 clients sending
signed requests to it (the unit tests in tests/unit/psirt serve the same clients in-process, without a socket)."""

from __future__ import annotations

import json
import os
import types

import botocore.endpoint
import pytest

from findings_router_local.cli import main
from findings_router_local.fakes.inspector import LOG4SHELL, InspectorStandIn
from tests.builders import CONFIG_DIR


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry waits, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=recorded.append))
    return recorded


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPSIRT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


def test_the_command_over_http_is_complete_through_throttling(aws_env, sleeps, capsys):
    with InspectorStandIn() as standin:
        standin.throttle(3)
        prod = ["--env", "prod", "--config-dir", str(CONFIG_DIR), "--regions", "eu-central-1,us-east-1"]
        status = main(
            ["cve", LOG4SHELL, *prod, "--endpoint-url", standin.base_url, "--output", "json", "--no-progress"]
        )
        calls = standin.calls
        paths = {r.path for r in standin.requests}
    document = json.loads(capsys.readouterr().out)
    assert status == 1
    assert len(document["rows"]) == 9
    assert {r["region"] for r in document["rows"]} == {"eu-central-1", "us-east-1"}  # each answered for its own
    assert calls == {"inspector2:ListFindings": 4 + 3, "securityhub:GetFindingsV2": 2}
    assert document["api_calls"]["inspector2:ListFindings"] == {"calls": 7, "retries": 3}
    assert len(sleeps) == 3
    assert paths == {"/findings/list", "/findingsv2"}


def test_an_unreachable_endpoint_is_one_line(aws_env, sleeps, capsys):
    with InspectorStandIn() as standin:
        url = standin.base_url
    status = main(["cve", LOG4SHELL, "--regions", "eu-central-1", "--endpoint-url", url, "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("findings-router: cve: inspector2:ListFindings in eu-central-1: Could not connect")
    assert err.count("\n") == 1
    assert len(sleeps) == 10  # retried (standard mode: 10 retries), without waiting here
