"""`findings-router replay`: the dry run over exported findings, and `validate-config`."""

from __future__ import annotations

import json
from pathlib import Path

from findings_router_local.cli import main
from findings_router_local.replay import COLUMNS
from tests.builders import CONFIG_DIR, FIXTURES, asff, event


def replay(capsys, *args):
    code = main(["replay", "--config-dir", str(CONFIG_DIR), *args])
    out, err = capsys.readouterr()
    return code, out, err


def records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_json_records_have_every_column(capsys):
    code, out, err = replay(capsys, "--env", "prod", "--format", "json", str(FIXTURES / "asff_inspector_log4j.json"))
    assert code == 0, err
    [rec] = records(out)
    assert tuple(rec) == COLUMNS
    assert rec["decision"] == "page"
    assert rec["cve_ids"] == ["CVE-2021-44228"]
    assert rec["max_cvss"] == 10.0
    assert rec["format"] == "asff"


def test_state_is_shared_across_files(capsys):
    files = [
        FIXTURES / "asff_guardduty_ssh_bruteforce.json",
        FIXTURES / "ocsf_guardduty_same_as_asff.json",  # the same finding through the new Security Hub
        FIXTURES / "asff_guardduty_archived.json",
    ]
    code, out, _ = replay(capsys, "--env", "prod", "--format", "json", *map(str, files))
    assert code == 0
    assert [r["decision"] for r in records(out)] == ["page", "duplicate", "resolve"]


def test_every_input_shape(tmp_path: Path, capsys):
    lines = tmp_path / "events.jsonl"
    lines.write_text("\n".join(json.dumps(event(asff(severity=s))) for s in ("CRITICAL", "LOW")) + "\n")
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(asff(severity="HIGH")))
    array = tmp_path / "array.json"
    array.write_text(json.dumps([asff(severity="HIGH"), asff(severity="MEDIUM", product="inspector")]))
    code, out, err = replay(
        capsys,
        "--env",
        "prod",
        "--format",
        "json",
        str(lines),
        str(bare),
        str(array),
        str(FIXTURES / "get_findings_output.json"),
    )
    assert code == 0, err
    assert [r["decision"] for r in records(out)] == ["page", "drop", "page", "page", "drop", "page", "page", "page"]


def test_unparseable_input_names_file_and_position_and_the_rest_still_runs(tmp_path: Path, capsys):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(event(asff(severity="CRITICAL"))) + "\n{oops\n" + json.dumps({"hello": 1}) + "\n")
    code, out, err = replay(
        capsys,
        "--env",
        "prod",
        "--format",
        "json",
        str(broken),
        str(tmp_path / "missing.json"),
        str(FIXTURES / "asff_missing_required_field.json"),
        str(FIXTURES / "asff_inspector_log4j.json"),
    )
    assert code == 2
    assert [r["decision"] for r in records(out)] == ["page", "page"]
    assert f"{broken}:2: column 2: not JSON" in err
    assert f"{broken}:3: not a Security Hub event" in err
    assert "missing.json" in err
    assert "field AwsAccountId" in err


def test_table_output_and_summary(capsys):
    code, out, _ = replay(
        capsys,
        "--env",
        "prod",
        str(FIXTURES / "asff_control_legacy_two_standards.json"),
        str(FIXTURES / "asff_control_s3_failed.json"),
    )
    assert code == 0
    header = out.splitlines()[0].split()
    assert header == list(COLUMNS)
    assert "3 findings: 2 page, 0 notify, 0 resolve, 1 duplicate, 0 drop" in out


def test_findings_of_other_environments_accounts_are_dropped_with_the_scope_as_reason(capsys):
    # The fixtures are production's account (111122223333): development's router must leave them alone.
    code, out, _ = replay(capsys, "--env", "dev", "--format", "json", str(FIXTURES / "asff_control_s3_failed.json"))
    assert code == 0
    [record] = records(out)
    assert record["decision"] == "drop"
    assert record["reason"].startswith("account 111122223333 is outside dev's account scope (accounts: 444455556666)")


def test_unknown_environment(capsys):
    code, _, err = replay(capsys, "--env", "qa", str(FIXTURES / "asff_inspector_log4j.json"))
    assert code == 2
    assert "qa.yaml" in err


def test_validate_config(tmp_path: Path, capsys):
    assert main(["validate-config", "--config-dir", str(CONFIG_DIR)]) == 0
    assert "config/prod.yaml: ok" in capsys.readouterr().out.replace(str(CONFIG_DIR.parent) + "/", "")
    (tmp_path / "qa.yaml").write_text("environment: qa\nnotifier: {routing_key_secret: s}\nrules: []\n")
    assert main(["validate-config", "--config-dir", str(tmp_path)]) == 1  # a check failed (2 is for bad usage)
    assert "qa.yaml:3: rules: List should have at least 1 item" in capsys.readouterr().err


def test_long_replays_show_a_progress_bar(tmp_path: Path, capsys):
    doc = {"Findings": [asff(severity="LOW") for _ in range(1200)]}
    path = tmp_path / "get-findings.json"
    path.write_text(json.dumps(doc))
    code, out, err = replay(capsys, "--env", "prod", "--progress", "--format", "json", str(path))
    assert code == 0
    assert len(records(out)) == 1200
    assert "\r[" + "#" * 30 + "] 1,200/1,200 findings\n" in err
    assert "] 200/1,200 findings" in err


def test_the_environments_canary_replays_as_paging_its_own_service_not_through_the_policy(tmp_path: Path, capsys):
    import datetime as dt

    from findings_router.domain.canary import synthetic_finding

    at = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    findings = [
        synthetic_finding(env, account="999988887777", region="eu-central-1", partition="aws", now=at)
        for env in ("prod", "stg")
    ]
    path = tmp_path / "findings.json"
    path.write_text(json.dumps({"Findings": findings}))
    code, out, err = replay(capsys, "--env", "prod", "--format", "json", str(path))
    assert code == 0, err
    own, other = records(out)
    assert own["reason"] == "canary run 2026-11-27T12:00:00.000Z: paged the canary's on-call service"
    assert other["decision"] == "drop" and other["reason"].startswith("the canary of environment stg")
