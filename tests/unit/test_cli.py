"""The `findings-router` CLI: validate-config (the checks synth makes, exit codes, warnings) and explain's wiring."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from findings_router.settings.schema import Policy
from findings_router_local.cli import build_parser, main
from tests.builders import CONFIG_DIR


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of the shipped config directory, to break."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _validate(config: Path, capsys) -> tuple[int, list[str], list[str]]:
    status = main(["validate-config", "--config-dir", str(config)])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err.splitlines()


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def test_valid_config_exits_0_with_one_ok_line_per_file(config: Path, capsys):
    status, out, err = _validate(config, capsys)
    assert (status, err) == (0, [])
    assert out == [
        f"{config / 'dev.yaml'}: ok (1 rules, 0 suppressions)",
        f"{config / 'prod.yaml'}: ok (4 rules, 1 suppressions)",
        f"{config / 'stg.yaml'}: ok (2 rules, 0 suppressions)",
    ]


def test_a_deployment_check_fails_validate_config_with_file_line_and_field(config: Path, capsys):
    # Before: only synth refused a log retention CloudWatch Logs does not offer, and without a line.
    _edit(config / "dev.yaml", "log_retention_days: 14", "log_retention_days: 15")
    status, out, err = _validate(config, capsys)
    assert status == 1
    assert err == [
        f"{config / 'dev.yaml'}:34: function.log_retention_days: 15 is not a CloudWatch Logs retention period "
        "(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)"
    ]
    assert out == [
        f"{config / 'prod.yaml'}: ok (4 rules, 1 suppressions)",
        f"{config / 'stg.yaml'}: ok (2 rules, 0 suppressions)",
    ]


def test_a_partial_secret_arn_fails_validate_config(config: Path, capsys):
    _edit(
        config / "stg.yaml",
        "routing_key_secret: findings-router/stg/pagerduty-routing-key",
        "routing_key_secret: arn:aws:secretsmanager:eu-central-1:222233334444:secret:pd-key",
    )
    status, _, err = _validate(config, capsys)
    assert status == 1
    assert err == [
        f"{config / 'stg.yaml'}:12: notifier.routing_key_secret: an ARN must be the secret's complete ARN "
        "(ending in -XXXXXX); or give the secret's name"
    ]


def test_a_duplicate_key_fails_validate_config(config: Path, capsys):
    with (config / "stg.yaml").open("a") as f:
        f.write("default_action: page\n")
    status, _, err = _validate(config, capsys)
    assert status == 1
    lines = (config / "stg.yaml").read_text().splitlines()
    first, last = lines.index("default_action: drop") + 1, len(lines)
    assert err == [
        f"{config / 'stg.yaml'}:{last}: default_action: duplicate key 'default_action' (first at line {first})"
    ]


def test_an_invalid_date_fails_validate_config_without_a_traceback(config: Path, capsys):
    _edit(config / "prod.yaml", "expires: 2027-03-31", "expires: 2027-13-31")
    status, _, err = _validate(config, capsys)
    assert status == 1
    assert err == [f"{config / 'prod.yaml'}:64: suppressions[0].expires: not a valid date: 2027-13-31"]


def test_an_expired_suppression_fails_validate_config(config: Path, capsys):
    expired = _today() - dt.timedelta(days=3)
    _edit(config / "prod.yaml", "expires: 2027-03-31", f"expires: {expired}")
    status, out, err = _validate(config, capsys)
    assert status == 1
    assert err == [
        f"{config / 'prod.yaml'}:64: suppressions[0].expires: suppression 'firmware-signing-account-root-mfa' "
        f"expired on {expired} (3 days ago) and no longer applies: renew it after review, or remove it"
    ]
    assert f"{config / 'prod.yaml'}: ok (4 rules, 1 suppressions)" not in out


def test_a_suppression_expiring_soon_is_a_warning_that_does_not_fail(config: Path, capsys):
    soon = _today() + dt.timedelta(days=5)
    _edit(config / "prod.yaml", "expires: 2027-03-31", f"expires: {soon}")
    status, out, err = _validate(config, capsys)
    assert status == 0
    assert f"{config / 'prod.yaml'}: ok (4 rules, 1 suppressions)" in out
    assert err == [
        f"{config / 'prod.yaml'}:64: suppressions[0].expires: warning: suppression "
        f"'firmware-signing-account-root-mfa' expires in 5 days ({soon}): renew it after review, or let it lapse"
    ]


def test_yml_files_and_other_files(config: Path, capsys):
    (config / "stg.yaml").rename(config / "stg.yml")
    (config / "README.md").write_text("# policies\n")
    (config / ".gitkeep").write_text("")
    status, out, err = _validate(config, capsys)
    assert status == 0
    assert f"{config / 'stg.yml'}: ok (2 rules, 0 suppressions)" in out
    assert err == [f"{config / 'README.md'}: warning: not a policy file, ignored: policies are <env>.yaml or <env>.yml"]
    (config / "stg.yaml").write_text((config / "stg.yml").read_text())
    status, out, err = _validate(config, capsys)
    assert status == 1
    assert f"{config / 'stg.yml'}:2: environment: stg.yaml and stg.yml are both the policy of environment 'stg'" in (
        "\n".join(err)
    )


def test_accounts_shared_by_two_environments_fail_validate_config(config: Path, capsys):
    _edit(config / "stg.yaml", 'accounts: ["222233334444"]', 'accounts: ["444455556666"]')
    status, _, err = _validate(config, capsys)
    assert status == 1
    assert err == [
        f"{config / 'stg.yaml'}:7: accounts: environments 'dev' and 'stg' share 444455556666; a finding must "
        "belong to one environment"
    ]


def test_no_such_directory_or_no_policy_file_is_bad_usage(tmp_path: Path, capsys):
    status, out, err = _validate(tmp_path / "missing", capsys)
    assert (status, out, err) == (2, [], [f"findings-router: --config-dir {tmp_path / 'missing'}: not a directory"])
    (tmp_path / "notes.txt").write_text("")
    status, out, err = _validate(tmp_path, capsys)
    assert (status, out) == (2, [])
    assert err == [
        f"{tmp_path / 'notes.txt'}: warning: not a policy file, ignored: policies are <env>.yaml or <env>.yml",
        f"{tmp_path}: no policy files (<env>.yaml or <env>.yml)",
    ]


def test_validate_config_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["validate-config", "--help"])
    text = capsys.readouterr().out
    assert "exit status:" in text
    for line in ("0  every file is valid (warnings allowed)", "1  a check failed", "2  bad usage"):
        assert line in text


def test_replay_reads_a_yml_policy(config: Path, capsys):
    (config / "stg.yaml").rename(config / "stg.yml")
    events = Path(__file__).resolve().parents[1] / "fixtures"
    fixture = next(iter(sorted(events.glob("asff_*.json"))))
    status = main(["replay", "--env", "stg", "--config-dir", str(config), "--format", "json", str(fixture)])
    assert status == 0, capsys.readouterr().err


# ------------------------------------------------------------------------------ explain


def test_explain_arguments():
    args = build_parser().parse_args(["explain", "--env", "prod", "-", "f.json"])
    # No --config-dir: resolved when the command runs ($FINDINGS_ROUTER_CONFIG_DIR, else ./config).
    assert (args.env, args.config_dir, args.output, args.files) == ("prod", None, "text", ["-", "f.json"])
    assert build_parser().parse_args(["explain", "--env", "prod", "--output", "json", "f.json"]).output == "json"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["explain", "f.json"])  # --env is required


def test_explain_calls_explain_command_with_the_loaded_policy(config: Path, monkeypatch):
    explain = pytest.importorskip("findings_router_local.explain")
    calls = []

    def fake(policy, paths, *, output, out, err, silences=()):
        calls.append((policy, paths, output))
        assert list(silences) == []  # no --silences
        return 0

    monkeypatch.setattr(explain, "explain_command", fake)
    (config / "prod.yaml").rename(config / "prod.yml")
    status = main(["explain", "--env", "prod", "--config-dir", str(config), "--output", "json", "-", "a.json"])
    assert status == 0
    [(policy, paths, output)] = calls
    assert isinstance(policy, Policy) and policy.environment == "prod"
    assert (list(map(str, paths)), output) == (["-", "a.json"], "json")


def test_version_is_the_packages_and_the_stacks(capsys):
    from findings_router import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"findings-router {__version__}"


def test_the_config_dir_comes_from_the_flag_then_the_environment_then_dot_config(
    config: Path, tmp_path: Path, monkeypatch, capsys
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("FINDINGS_ROUTER_CONFIG_DIR", raising=False)
    assert main(["validate-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("findings-router: no policy directory: --config-dir is not given, FINDINGS_ROUTER_CONFIG_DIR")
    assert "./config" in err and err.count("\n") == 1
    monkeypatch.setenv("FINDINGS_ROUTER_CONFIG_DIR", str(config))
    assert main(["validate-config"]) == 0
    monkeypatch.setenv("FINDINGS_ROUTER_CONFIG_DIR", str(tmp_path / "nope"))
    assert main(["validate-config"]) == 2
    assert "FINDINGS_ROUTER_CONFIG_DIR" in capsys.readouterr().err
    (elsewhere / "config").symlink_to(config)
    monkeypatch.delenv("FINDINGS_ROUTER_CONFIG_DIR")
    assert main(["validate-config"]) == 0


def test_redrive_and_status_refuse_bad_input_in_one_line(config: Path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["redrive", "--env", "prod", "--config-dir", str(config), "--max", "0"])
    assert done.value.code == 2
    assert "--max: 0 is not a positive number" in capsys.readouterr().err
    code = main(["status", "--env", "prod", "--config-dir", str(config), "--profile", "no-such-profile"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "findings-router: status: no AWS profile named 'no-such-profile' (aws configure list-profiles)\n"


def test_replay_output_names_as_the_aws_cli_spells_them(capsys):
    from tests.builders import FIXTURES

    fixture = str(FIXTURES / "asff_inspector_log4j.json")
    assert main(["replay", "--env", "prod", "--config-dir", str(CONFIG_DIR), "--output", "text", fixture]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["finding_id", "dedup_key"]
    assert out.rstrip().endswith("1 findings: 1 page, 0 notify, 0 resolve, 0 duplicate, 0 drop")


def test_replay_of_a_missing_file_is_one_line_and_exit_2(tmp_path: Path, capsys):
    code = main(["replay", "--env", "prod", "--config-dir", str(CONFIG_DIR), str(tmp_path / "nope.json")])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == f"error: {tmp_path / 'nope.json'}: no such file\n"
    assert captured.out == ""
