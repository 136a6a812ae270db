"""The synthesized templates are what deploys: code moving between modules must not change them.

Each environment's template (and the variant's, which uses the settings the shipped files leave at their defaults)
is compared with tests/golden/templates/, asset hashes aside (they change whenever any function code changes).
Regenerate with `UPDATE_GOLDEN=1 pytest tests/infra/test_golden_templates.py` only for a change meant to alter them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.infra.conftest import Synthesis, SynthesizedStack

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "templates"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalized(template: dict) -> str:
    return ASSET_HASH.sub("<asset-hash>", json.dumps(template, indent=1, sort_keys=True)) + "\n"


def _check(name: str, stack: SynthesizedStack) -> None:
    path = GOLDEN / f"{name}.json"
    text = normalized(stack.template)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden template {path}: run with UPDATE_GOLDEN=1 once"
    assert text == path.read_text(), f"{name}'s template differs from {path} (beyond asset hashes)"


@pytest.mark.parametrize("environment", ["dev", "stg", "prod"])
def test_each_environments_template_is_unchanged(synthesis: Synthesis, environment: str) -> None:
    _check(environment, synthesis.stacks[environment])


def test_the_variant_template_is_unchanged(variant: SynthesizedStack) -> None:
    _check("variant", variant)
