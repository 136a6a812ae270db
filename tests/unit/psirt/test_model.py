"""The row model: ids as Inspector spells them, times, resource type names, csv cells."""

from __future__ import annotations

import datetime as dt

import pytest

from findings_router.psirt.model import (
    COLUMNS,
    AffectedResource,
    csv_cell,
    function_name,
    iso_time,
    normalize_vulnerability_id,
    resource_type_name,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("CVE-2021-44228", "CVE-2021-44228"),
        (" cve-2021-44228 ", "CVE-2021-44228"),
        ("CVE-2023-1234567", "CVE-2023-1234567"),
        ("kb5008212", "KB5008212"),
        ("GHSA-JFH8-C2JP-5V3Q", "GHSA-jfh8-c2jp-5v3q"),
        ("ghsa-jfh8-c2jp-5v3q", "GHSA-jfh8-c2jp-5v3q"),
        ("CVE-21-1", None),
        ("CVE-2021-123", None),
        ("log4shell", None),
        ("GHSA-aaaa-bbbb-cccc", None),  # a, b are not in GitHub's alphabet
        ("KB12", None),
    ],
)
def test_vulnerability_ids_are_spelled_as_inspector_does(text: str, expected: str | None):
    assert normalize_vulnerability_id(text) == expected


def test_times_from_every_source_become_iso_utc_to_the_second():
    moment = dt.datetime(2026, 11, 19, 11, 2, 47, 315000, tzinfo=dt.UTC)
    assert iso_time(moment) == "2026-11-19T11:02:47Z"
    assert iso_time(moment.replace(tzinfo=None)) == "2026-11-19T11:02:47Z"
    assert iso_time(moment.astimezone(dt.timezone(dt.timedelta(hours=2)))) == "2026-11-19T11:02:47Z"
    assert iso_time("2026-11-19T11:02:47.315Z") == "2026-11-19T11:02:47Z"
    assert iso_time(1795121493006) == iso_time(1795121493.006) == "2026-11-19T20:51:33Z"  # OCSF ms, epoch s
    for junk in (None, "", "yesterday", True, [], {}):
        assert iso_time(junk) is None


def test_resource_types_of_security_hub_map_onto_inspectors():
    assert resource_type_name("AwsEcrContainerImage") == "AWS_ECR_CONTAINER_IMAGE"
    assert resource_type_name("AWS::EC2::Instance") == "AWS_EC2_INSTANCE"
    assert resource_type_name("AWS::Lambda::Function") == "AWS_LAMBDA_FUNCTION"
    assert resource_type_name("AwsS3Bucket") == "AwsS3Bucket"
    assert resource_type_name(None) == "UNKNOWN"
    assert function_name("arn:aws:lambda:eu-central-1:111122223333:function:sync:$LATEST") == "sync"
    assert function_name("sync") == "sync"


def test_the_columns_are_the_field_names_and_cells_are_plain():
    assert COLUMNS[:6] == ("cve", "account", "region", "resource_type", "resource_id", "resource_label")
    assert "environment" in COLUMNS and "change" in COLUMNS
    assert csv_cell(frozenset({"securityhub-v2", "inspector"})) == "inspector securityhub-v2"
    assert csv_cell(("a", "b")) == "a b"
    assert (csv_cell(True), csv_cell(None), csv_cell(10.0)) == ("true", "", "10.0")


def test_a_row_has_a_fix_when_a_version_or_the_source_says_so():
    row = AffectedResource(
        *("CVE-2021-44228", "1", "r", "T", "id", "label", "p", "1", None),
        *(None, None, None, None, None, None, "NO", None, None, None, None),
        frozenset({"inspector"}),
        (),
    )
    assert not row.has_fix
    assert row.to_dict()["sources"] == ["inspector"]
