"""Dedup keys, the DynamoDB item codec and every on-call payload are exactly what tests/golden/ recorded."""

from __future__ import annotations

import json

import pytest

from tests.contract.golden import GOLDEN_DIR, golden_outputs, render


@pytest.fixture(scope="module")
def outputs() -> dict:
    return golden_outputs()


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN_DIR.glob("*.json")))
def test_output_matches_the_golden_file(outputs: dict, name: str) -> None:
    expected = json.loads((GOLDEN_DIR / name).read_text())
    actual = json.loads(render(outputs[name]))
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (a, e) in enumerate(zip(actual, expected, strict=False)):
            assert a == e, f"{name}: entry {index} differs"
    assert actual == expected, f"{name} differs"


def test_every_golden_file_is_produced(outputs: dict) -> None:
    assert sorted(outputs) == sorted(p.name for p in GOLDEN_DIR.glob("*.json"))
