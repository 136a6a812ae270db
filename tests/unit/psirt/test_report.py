"""Merge across sources, summary, --since, and the digest's grouping and texts."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

from findings_router.psirt.inspector import affected_from_inspector
from findings_router.psirt.model import AffectedResource
from findings_router.psirt.report import (
    DIGEST_COLUMNS,
    SUMMARY_MAX_CHARS,
    CveGroup,
    apply_since,
    digest_csv,
    digest_text,
    group_by_cve,
    merge,
    sort_rows,
    summarize,
    with_environments,
)
from findings_router.psirt.securityhub import affected_from_asff, affected_from_ocsf
from findings_router_local.fakes.inspector.dataset import LOG4SHELL, LOG4SHELL_2, asff_of, log4shell_estate, ocsf_of

CVES = {LOG4SHELL, LOG4SHELL_2}
ENVIRONMENTS = {"111122223333": "prod", "111122224444": "prod", "222233334444": "stg", "444455556666": "dev"}


def _active() -> list[dict]:
    return [f for f in log4shell_estate() if f["status"] == "ACTIVE"]


def _rows(source: str = "inspector") -> list[AffectedResource]:
    parse = {
        "inspector": lambda f: affected_from_inspector(f, CVES),
        "securityhub-v2": lambda f: affected_from_ocsf(ocsf_of(f), CVES),
        "securityhub": lambda f: affected_from_asff(asff_of(f), CVES),
    }[source]
    return [r for f in _active() for r in parse(f)]


def test_the_same_resource_package_and_cve_from_every_source_is_one_row_with_inspectors_data():
    inspector, v2, v1 = _rows("inspector"), _rows("securityhub-v2"), _rows("securityhub")
    assert len(inspector) == len(v2) == len(v1) == 19
    merged = merge([*v1, *v2, *inspector])  # Inspector last: its data still wins
    assert len(merged) == 19
    assert all(r.sources == frozenset({"inspector", "securityhub-v2", "securityhub"}) for r in merged)
    windows = next(r for r in merged if r.vulnerability_id == "KB5008212")
    assert windows.resource_id == "i-0f9e8d7c6b5a40312"  # Inspector's id, not the ASFF instance ARN
    assert windows.installed_version == "10.0.17763.2300"
    image = next(r for r in merged if r.resource_label.startswith("iot-gateway-api:2026.11.03"))
    assert image.inspector_score == 10.0 and image.in_use_count == 6  # in_use_count: Inspector (and OCSF) only


def test_what_the_best_source_lacks_is_taken_from_the_others():
    inspector = dataclasses.replace(_rows()[0], epss=None)
    other = dataclasses.replace(_rows("securityhub-v2")[0], epss=0.5, finding_ids=("other-id",))
    (row,) = merge([other, inspector])
    assert row.epss == 0.5
    assert row.finding_ids == (inspector.finding_ids[0], "other-id")


def test_a_security_hub_only_row_stays_and_is_counted():
    extra = dataclasses.replace(_rows("securityhub-v2")[0], resource_id="arn:aws:ecr:x:repository/other/sha256:1")
    summary = summarize(merge([*_rows(), extra]))
    assert (summary.rows, summary.securityhub_only, summary.confirmed) == (20, 1, 0)


def test_the_summary_counts_resources_per_account_environment_type_and_fixes():
    rows = sort_rows(with_environments(merge(_rows()), ENVIRONMENTS))
    summary = summarize(rows)
    assert (summary.rows, summary.resources, summary.accounts) == (19, 14, 5)
    assert summary.per_account == {
        "111122223333": 6, "111122224444": 3, "222233334444": 2, "444455556666": 2, "999988887777": 1
    }  # fmt: skip
    assert summary.per_environment == {"prod": 9, "dev": 2, "stg": 2, "-": 1}
    assert summary.per_resource_type == {"AWS_ECR_CONTAINER_IMAGE": 7, "AWS_EC2_INSTANCE": 4, "AWS_LAMBDA_FUNCTION": 3}
    assert summary.per_cve == {LOG4SHELL: 13, LOG4SHELL_2: 6}
    assert (summary.with_fix, summary.without_fix, summary.exploit_known) == (17, 2, 19)
    assert (summary.max_cvss, summary.max_epss) == (10.0, 0.94358)
    # sorted by account, then CVSS (highest first)
    assert [r.account for r in rows] == sorted(r.account for r in rows)
    first = [r.cvss for r in rows if r.account == "111122223333"]
    assert first == sorted(first, reverse=True)


def test_since_marks_new_and_changed_rows_and_adds_the_fixed_ones():
    since = "2026-11-26T00:00:00Z"
    closed = [r for f in log4shell_estate() if f["status"] == "CLOSED" for r in affected_from_inspector(f, CVES)]
    rows = apply_since(merge(_rows()), since, closed)
    changes = {(r.change, r.resource_label, r.cve) for r in rows if r.change}
    assert changes == {
        ("new", "telemetry-ingest:1.8.2,prod,latest", LOG4SHELL),
        ("new", "telemetry-ingest:1.8.2,prod,latest", LOG4SHELL_2),
        ("new", "i-0c4d5e6f7a8b90123 (dev-jumpbox)", LOG4SHELL_2),
        ("changed", "device-shadow-sync (layer shared-java-libs:7)", LOG4SHELL),
        ("fixed", "iot-gateway-api:2026.11.24", LOG4SHELL),  # not mqtt-broker-2: closed before `since`
    }
    summary = summarize(rows)
    assert summary.changes == {"new": 3, "changed": 1, "fixed": 1}
    assert summary.rows == 19  # fixed rows are not affected ones
    # a closed finding whose resource × package × CVE is still active elsewhere is no fix
    still = dataclasses.replace(
        closed[0], resource_id=_rows()[0].resource_id, package=_rows()[0].package, cve=_rows()[0].cve
    )
    assert all(r.change != "fixed" for r in apply_since(merge(_rows()), since, [still]))


def test_group_by_cve_gives_one_line_per_cve_most_severe_first():
    rows = with_environments(merge(_rows()), ENVIRONMENTS)
    groups = group_by_cve(rows)
    assert [g.cve for g in groups] == [LOG4SHELL, LOG4SHELL_2]
    log4shell = groups[0]
    assert (log4shell.max_cvss, log4shell.max_epss, log4shell.exploit_known) == (10.0, 0.94358, True)
    assert (log4shell.resources, log4shell.rows, log4shell.fix_available) == (13, 13, 12)
    assert log4shell.accounts == ("111122223333", "111122224444", "222233334444", "444455556666", "999988887777")
    assert log4shell.environments == ("dev", "prod", "stg")
    assert log4shell.resource_types == ("AWS_EC2_INSTANCE", "AWS_ECR_CONTAINER_IMAGE", "AWS_LAMBDA_FUNCTION")
    assert log4shell.first_observed == "2026-09-28T03:00:00Z" and log4shell.severity == "CRITICAL"  # legacy-reporting
    assert group_by_cve([dataclasses.replace(r, change="fixed") for r in rows]) == []


def test_digest_csv_has_a_header_and_a_line_per_cve():
    text = digest_csv(group_by_cve(merge(_rows())))
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == list(DIGEST_COLUMNS)
    assert [line[0] for line in lines[1:]] == [LOG4SHELL, LOG4SHELL_2]
    assert lines[1][DIGEST_COLUMNS.index("exploit_known")] == "true"
    assert digest_csv([]) == ",".join(DIGEST_COLUMNS) + "\n"


def _group(i: int) -> CveGroup:
    return CveGroup(
        cve=f"CVE-2026-{10000 + i}",
        max_cvss=9.8 - i / 100,
        max_epss=0.5,
        exploit_known=i % 2 == 0,
        fix_available=1,
        resources=i + 1,
        accounts=("111122223333",),
        resource_types=("AWS_ECR_CONTAINER_IMAGE",),
        first_observed="2026-11-26T10:00:00Z",
        rows=i + 1,
    )


def test_digest_text_summary_fits_in_1000_characters_and_says_how_many_more():
    start, end = dt.datetime(2026, 11, 26, 3, tzinfo=dt.UTC), dt.datetime(2026, 11, 27, 3, tzinfo=dt.UTC)
    summary, body = digest_text([_group(i) for i in range(2)], "prod", start, end)
    assert summary == (
        "[prod] PSIRT digest 2026-11-26 03:00Z → 2026-11-27 03:00Z: 2 CVEs on 3 resources: "
        "CVE-2026-10000 (CVSS 9.8, exploit known, 1 resource); CVE-2026-10001 (CVSS 9.8, 2 resources)"
    )
    assert body.splitlines()[2].startswith(
        "CVE-2026-10000  -  CVSS 9.8  EPSS 0.500  exploit known  1 resource (ECR image)"
    )
    many = [_group(i) for i in range(60)]
    summary, body = digest_text(many, "prod", start, end, max_lines=25)
    assert len(summary) <= SUMMARY_MAX_CHARS
    shown = summary.count("CVE-2026-")
    assert 5 < shown < 60 and summary.endswith(f"; and {60 - shown} more")
    lines = body.splitlines()
    assert len(lines) == 2 + 25 + 1 and lines[-1] == "and 35 more"
    quiet, text = digest_text([], "dev", start, end)
    assert quiet == text == "[dev] PSIRT digest 2026-11-26 03:00Z → 2026-11-27 03:00Z: no new CVE"
