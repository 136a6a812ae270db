"""Stubbed boto3 clients (botocore's Stubber validates every call against the service model; no network)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import boto3
import pytest
from botocore.stub import Stubber

from tests.unit.baseline.helpers import REGION


@pytest.fixture
def stubbed() -> Iterator[Callable[[str], Stubber]]:
    """`stubbed("guardduty")`: a Stubber of a new client of that service; every stub must be used by the test."""
    stubbers: list[Stubber] = []

    def make(service: str) -> Stubber:
        client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
        stubber = Stubber(client)
        stubber.activate()
        stubbers.append(stubber)
        return stubber

    yield make
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
        stubber.deactivate()
