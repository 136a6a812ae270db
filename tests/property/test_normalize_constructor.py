"""normalize builds `Finding` and `Resource` through `normalize/_build.constructor` (setting each slot directly, for
speed): the objects must be exactly those the dataclass itself makes, defaults and default factories included, and as
frozen."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from findings_router.domain.model import Finding, FindingFormat, Resource, Severity
from findings_router.domain.normalize import normalize_event
from findings_router.domain.normalize._build import constructor
from tests.builders import FIXTURES, load_fixture

TEXT = st.one_of(st.none(), st.text(max_size=8))
RESOURCES = st.lists(
    st.builds(Resource, st.text(max_size=5), st.text(max_size=5), TEXT, st.just((("env", "prod"),))), max_size=2
)
REQUIRED: dict[str, st.SearchStrategy[Any]] = {
    "format": st.sampled_from(list(FindingFormat)),
    "id": st.text(min_size=1, max_size=8),
    "product_arn": st.text(max_size=8),
    "product_name": st.text(max_size=8),
    "company_name": st.text(max_size=8),
    "generator_id": st.text(max_size=8),
    "control_id": TEXT,
    "account": st.just("111122223333"),
    "region": st.text(max_size=8),
    "title": st.text(max_size=8),
    "description": st.text(max_size=8),
    "severity": st.sampled_from(list(Severity)),
    "severity_score": st.floats(0, 100),
    "types": st.lists(st.text(max_size=5), max_size=2).map(tuple),
    "resources": RESOURCES.map(tuple),
    "cve_ids": st.lists(st.text(max_size=5), max_size=2).map(tuple),
    "max_cvss": st.one_of(st.none(), st.floats(0, 10)),
}
OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "note": TEXT,
    "custom_action": TEXT,
    "sample": st.booleans(),
    "exploit_available": st.one_of(st.none(), st.booleans()),
    "max_epss": st.one_of(st.none(), st.floats(0, 1)),
    "raw": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
}


def _fields_not_given() -> dict[str, st.SearchStrategy[Any]]:
    """Fields of Finding neither strategy names (e.g. ones added later) get None, which each allows today."""
    named = set(REQUIRED) | set(OPTIONAL)
    return {
        f.name: st.none()
        for f in dataclasses.fields(Finding)
        if f.name not in named and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }


@settings(max_examples=200, deadline=None)
@given(
    required=st.fixed_dictionaries({**REQUIRED, **_fields_not_given()}),
    optional=st.fixed_dictionaries({}, optional=OPTIONAL),
)
def test_the_fast_constructor_makes_what_the_dataclass_makes(required, optional):
    make = constructor(Finding)
    fast, slow = make(**required, **optional), Finding(**required, **optional)
    assert fast == slow and hash(fast) == hash(slow)
    for field in dataclasses.fields(Finding):
        assert getattr(fast, field.name) == getattr(slow, field.name), field.name
    assert fast.raw is not make(**required).raw  # a fresh default per object, as default_factory gives
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.title = "changed"  # type: ignore[misc]


def test_positional_arguments_and_the_resource():
    make = constructor(Resource)
    assert make("AwsS3Bucket", "arn:aws:s3:::b") == Resource("AwsS3Bucket", "arn:aws:s3:::b")
    assert make("t", "i", "eu-central-1", (("k", "v"),)) == Resource("t", "i", "eu-central-1", (("k", "v"),))
    with pytest.raises(TypeError):
        make("only-a-type")
    with pytest.raises(TypeError):
        constructor(dict)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", sorted(p.name for p in FIXTURES.glob("*.json") if p.name.startswith(("asff_", "ocsf_")))
)
def test_normalized_fixtures_equal_their_dataclass_copies(name):
    event = load_fixture(name)
    for finding in normalize_event(event).findings if "detail-type" in event else ():
        copy = Finding(**{f.name: getattr(finding, f.name) for f in dataclasses.fields(Finding)})
        assert finding == copy and finding.raw == copy.raw
