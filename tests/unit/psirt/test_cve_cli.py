"""`findings-router cve`: output formats, exit status, ids from stdin, --since, and one-line errors, through
`cli.main` against the stand-in (served in-process: unit tests open no socket)."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

import pytest

from findings_router.psirt.model import COLUMNS
from findings_router.psirt.sweep import client_factory
from findings_router_local import cve
from findings_router_local.cli import main
from findings_router_local.fakes.inspector import InspectorStandIn
from findings_router_local.fakes.inspector.dataset import LOG4SHELL, LOG4SHELL_2
from tests.builders import CONFIG_DIR

PROD = ["--env", "prod", "--config-dir", str(CONFIG_DIR), "--regions", "eu-central-1,us-east-1", "--no-progress"]


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> InspectorStandIn:
    """Every client the command makes is served by this stand-in, in-process; AWS settings are the test's own."""
    served = InspectorStandIn()

    def make_clients(session: Any, endpoint_url: str | None) -> Any:
        return client_factory(session, endpoint_url=endpoint_url, on_client=served.attach)

    monkeypatch.setattr(cve, "make_clients", make_clients)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPSIRT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("COLUMNS", "250")
    return served


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["cve", *argv, "--endpoint-url", "http://127.0.0.1:9"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_table_lists_every_affected_resource_then_the_summary_and_exits_1(standin, capsys):
    status, out, err = _run(capsys, LOG4SHELL, *PROD)
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == f"{LOG4SHELL} in prod's accounts (111122223333, 111122224444), eu-central-1, us-east-1:"
    assert lines[1].startswith("every row: insp(ector score) = CVSS · env prod · CVSS by v3.1 NVD · EPSS 0.944")
    assert lines[2].split() == ["account", "region", "resource", "package", "fixed", "in", "CVSS", "first", "seen"]
    rows = [line for line in lines if line.startswith("1111222")]
    assert len(rows) == 9
    assert [r.split()[0] for r in rows] == ["111122223333"] * 6 + ["111122224444"] * 3  # by account, then CVSS
    assert "via KB5008212: Windows Server 2019 10.0.17763.2300" in out  # the Windows host, found through the KB
    assert "no fix" in out  # the Debian package
    assert "9 affected (resource × package × CVE) on 9 resources, 2 accounts: fix available 8, no fix 1" in out
    assert "per account  111122223333 (prod) 6 · 111122224444 (prod) 3" in out
    assert "API calls 6 (ListFindings 4, GetFindingsV2 2)" in out
    assert err == ""
    assert standin.calls == {"inspector2:ListFindings": 4, "securityhub:GetFindingsV2": 2}


def test_json_is_one_document_with_rows_summary_and_calls(standin, capsys):
    status, out, _ = _run(capsys, LOG4SHELL, LOG4SHELL_2, *PROD, "--output", "json")
    document = json.loads(out)
    assert status == 1
    assert document["cves"] == [LOG4SHELL, LOG4SHELL_2] and document["environment"] == "prod"
    assert document["accounts"] == ["111122223333", "111122224444"]
    assert len(document["rows"]) == document["summary"]["rows"] == 14
    row = document["rows"][0]
    assert set(row) == set(COLUMNS)
    assert row["sources"] == ["inspector", "securityhub-v2"] and row["environment"] == "prod"
    assert document["summary"]["per_cve"] == {LOG4SHELL: 9, LOG4SHELL_2: 5}
    assert document["api_calls"]["inspector2:ListFindings"] == {"calls": 4, "retries": 0}


def test_csv_has_the_model_columns_and_ids_may_come_from_stdin(standin, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{LOG4SHELL.lower()}  # log4shell\n{LOG4SHELL_2}, {LOG4SHELL}\n"))
    status, out, _ = _run(capsys, "-", *PROD, "--output", "csv")
    lines = list(csv.reader(io.StringIO(out)))
    assert status == 1
    assert tuple(lines[0]) == COLUMNS
    assert len(lines) == 1 + 14
    assert {line[0] for line in lines[1:]} == {LOG4SHELL, LOG4SHELL_2}
    assert {line[COLUMNS.index("sources")] for line in lines[1:]} == {"inspector securityhub-v2"}


def test_since_shows_what_is_new_changed_and_fixed(standin, capsys):
    status, out, _ = _run(capsys, LOG4SHELL, *PROD, "--since", "2026-11-26")
    assert status == 1
    changed = [line.split()[0] for line in out.splitlines() if line.split()[:1] in (["new"], ["changed"], ["fixed"])]
    assert sorted(changed) == ["changed", "fixed", "new"]
    assert "since 2026-11-26T00:00:00Z: 1 new, 1 changed, 1 fixed (7 unchanged not shown)" in out
    assert standin.calls["inspector2:ListFindings"] == 8  # active and closed, per Region, per query


def test_nothing_affected_exits_0_and_says_where_it_looked(standin, capsys):
    status, out, _ = _run(capsys, "CVE-2014-0160", *PROD)
    assert status == 0
    assert out.startswith("no affected resource: CVE-2014-0160 in prod's accounts (111122223333, 111122224444)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["CVE-21-1", *PROD], "cve: 'CVE-21-1' is not a vulnerability id Inspector reports"),
        ([LOG4SHELL, *PROD, "--since", "last tuesday"], "cve: --since 'last tuesday': expected a date"),
        ([LOG4SHELL, *PROD, "--since", "2099-01-01"], "cve: --since 2099-01-01: in the future"),
        ([LOG4SHELL, "--env", "dev", "--config-dir", str(CONFIG_DIR)], "cve: no AWS region: pass --regions"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(standin, capsys, argv, message):
    status, out, err = _run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith(f"findings-router: {message}")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert standin.calls == {}


def test_a_missing_permission_is_one_line_naming_it_and_exit_2(standin, capsys):
    standin.deny("inspector2")
    status, out, err = _run(capsys, LOG4SHELL, *PROD)
    assert (status, out) == (2, "")
    assert err.startswith("findings-router: cve: inspector2:ListFindings denied in eu-central-1 (User: ")
    assert "Amazon Inspector delegated administrator account" in err
    assert err.count("\n") == 1


def test_security_hub_v1_fallback_is_noted_on_stderr(standin, capsys):
    standin.v2_enabled = False
    status, out, err = _run(capsys, LOG4SHELL, *PROD)
    assert status == 1 and "confirmed by Security Hub 8" in out  # v1 misses the Windows KB finding (its title)
    assert err.count("note: Security Hub v2 (GetFindingsV2) is not available") == 2  # one per Region
    assert standin.calls["securityhub:GetFindings"] == 2


def test_without_env_every_account_is_asked_and_named_by_its_environment(standin, capsys):
    status, out, _ = _run(
        capsys, LOG4SHELL, "--config-dir", str(CONFIG_DIR), "--regions", "eu-central-1", "--output", "json"
    )
    document = json.loads(out)
    assert status == 1 and document["accounts"] == [] and document["environment"] is None
    envs = {r["account"]: r["environment"] for r in document["rows"]}
    assert envs == {
        "111122223333": "prod", "111122224444": "prod", "222233334444": "stg", "444455556666": "dev", "999988887777": None
    }  # fmt: skip


def test_a_member_account_view_is_flagged(standin, capsys):
    standin.findings = [f for f in standin.findings if f["awsAccountId"] == "111122223333"]  # what a member sees
    standin.ocsf = []
    _, _, err = _run(capsys, LOG4SHELL, *PROD)
    assert "note: only 111122223333 of prod's 2 accounts has affected resources" in err


def test_progress_goes_to_stderr_with_the_total_from_aggregations(standin, capsys):
    status, _, err = _run(capsys, LOG4SHELL, *PROD[:-1], "--progress")
    assert status == 1
    assert err.endswith("\r[##############################] 18/18 findings\n")  # 9 from Inspector, 9 Security Hub
    assert standin.calls["inspector2:ListFindingAggregations"] == 2  # one per Region, for the total
