"""docs/configuration.md's reference is generated from the schema; it must not drift."""

from __future__ import annotations

from pathlib import Path

from findings_router.settings.schema import Policy
from findings_router_local.config_docs import BEGIN, END, render_reference

DOC = Path(__file__).parent.parent.parent / "docs" / "configuration.md"


def test_reference_matches_the_schema():
    text = DOC.read_text()
    committed = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert committed == render_reference(), "docs/configuration.md is out of date: run `make docs`"


def test_every_top_level_setting_is_documented():
    reference = render_reference()
    for name in Policy.model_fields:
        assert f"| `{name}` |" in reference
