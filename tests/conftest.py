"""Root hooks: every test is marked by the top-level directory it lives in, so `-m` selects by kind.

    pytest -m "not integration and not infra"   # the fast suite: unit, property, contract and bench tests
    pytest -m unit                              # one kind only

A test file outside the directories below fails collection until it is given a marker here (and in pyproject.toml's
`markers`); otherwise `-m "not integration"` would silently select it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent

# First path component under tests/ -> marker.
DIRECTORY_MARKERS = {
    "unit": "unit",
    "property": "property",
    "integration": "integration",
    "infra": "infra",
    "contract": "contract",
    "test_bench.py": "bench",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked: set[str] = set()
    for item in items:
        try:
            top = item.path.resolve().relative_to(TESTS_DIR).parts[0]
        except ValueError:  # a test outside tests/, e.g. named on the command line
            continue
        marker = DIRECTORY_MARKERS.get(top)
        if marker is None:
            unmarked.add(f"tests/{top}")
        elif item.get_closest_marker(marker) is None:
            item.add_marker(marker)
    if unmarked:
        raise pytest.UsageError(
            f"{', '.join(sorted(unmarked))}: no marker for this test directory; add it to DIRECTORY_MARKERS in "
            "tests/conftest.py and to `markers` in pyproject.toml"
        )
