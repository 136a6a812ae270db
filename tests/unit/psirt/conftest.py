"""PSIRT fixtures: real boto3 clients (the botocore models of this venv) that never leave the process, either
stubbed (`Stubber`: request shapes checked against the model) or served by the stand-in in-process (its answers
parsed by the real client, botocore's retries included)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from findings_router.psirt.sweep import RETRIES
from findings_router_local.fakes.inspector import InspectorStandIn

REGION = "eu-central-1"


def make_client(service: str, region: str = REGION, *, max_attempts: int = 10) -> Any:
    """A real client of this venv's botocore (`max_attempts`: retries after the first attempt, as botocore's
    `retries.max_attempts` counts them); its endpoint is never connected to."""
    session = boto3.Session(aws_access_key_id="AKIDPSIRT", aws_secret_access_key="secret", region_name=region)
    config = Config(retries={**RETRIES, "max_attempts": max_attempts})  # type: ignore[arg-type]
    return session.client(service, endpoint_url="http://127.0.0.1:9", config=config)


@pytest.fixture
def inspector_client() -> Any:
    return make_client("inspector2")


@pytest.fixture
def securityhub_client() -> Any:
    return make_client("securityhub")


@pytest.fixture
def stubbed(inspector_client: Any, securityhub_client: Any) -> Iterator[dict[str, Stubber]]:
    """Stubbers of both clients, activated; every queued response must have been used."""
    stubbers = {"inspector2": Stubber(inspector_client), "securityhub": Stubber(securityhub_client)}
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


@pytest.fixture
def standin() -> InspectorStandIn:
    """The stand-in over the log4shell estate, not listening: serve clients with `standin.attach(client)`."""
    return InspectorStandIn()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry waits, recorded instead of slept (no test waits on the wall clock)."""
    recorded: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=recorded.append))
    return recorded


def served_clients(standin: InspectorStandIn, *, max_attempts: int = 10) -> Any:
    """A `ClientFactory` whose clients the stand-in serves in-process."""
    made: dict[tuple[str, str], Any] = {}

    def clients(service: str, region: str) -> Any:
        if (service, region) not in made:
            made[service, region] = standin.attach(make_client(service, region, max_attempts=max_attempts))
        return made[service, region]

    return clients
