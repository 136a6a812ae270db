"""Per-environment policy: the shipped examples, every kind of condition, suppressions, and file errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from findings_router.config import PolicyError, load_policy, load_policy_dir, parse_policy, policy_json
from findings_router.normalize import normalize_asff
from findings_router.policy import CompiledPolicy
from tests.builders import CONFIG_DIR, NOW, asff, control


def _policy(env: str) -> CompiledPolicy:
    return CompiledPolicy(load_policy(CONFIG_DIR / f"{env}.yaml"))


def _decide(env: str, raw: dict, now: dt.datetime = NOW):
    return _policy(env).evaluate(normalize_asff(raw), now)


@pytest.mark.parametrize(
    ("env", "severity", "expected"),
    [
        ("prod", "CRITICAL", ("page", "high")),
        ("prod", "HIGH", ("page", "high")),
        ("prod", "LOW", ("drop", "low")),
        ("stg", "CRITICAL", ("page", "high")),
        ("stg", "HIGH", ("notify", "low")),
        ("stg", "MEDIUM", ("drop", "low")),
        ("dev", "CRITICAL", ("notify", "low")),
        ("dev", "HIGH", ("drop", "low")),
    ],
)
def test_shipped_policies(env, severity, expected):
    decision = _decide(env, asff(severity=severity))
    assert (decision.action, decision.urgency) == expected


def test_dev_never_pages():
    for severity in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"):
        assert _decide("dev", asff(severity=severity)).action != "page"


def test_prod_pages_cvss_9_whatever_the_label():
    raw = asff(
        product="inspector",
        severity="MEDIUM",
        Vulnerabilities=[{"Id": "CVE-2026-1111", "Cvss": [{"BaseScore": 5.0}, {"BaseScore": 9.8, "Version": "V3"}]}],
    )
    decision = _decide("prod", raw)
    assert decision.action == "page"
    assert decision.reason == "rule critical-cvss-any-label"
    assert _decide("prod", dict(raw, Vulnerabilities=[{"Id": "CVE-1", "Cvss": [{"BaseScore": 8.9}]}])).action == "drop"


def test_every_condition(tmp_path: Path):
    text = """
environment: t
accounts: ["*"]
notifier: {routing_key_secret: s}
rules:
  - {name: sev, match: {severity: [LOW]}, action: page}
  - {name: minsev, match: {min_severity: HIGH, product: [Inspector]}, action: page}
  - {name: product-arn, match: {product: ["arn:aws:securityhub:*::product/aws/macie"]}, action: notify}
  - {name: gen, match: {generator_id: ["custom-gen-*"]}, action: page}
  - {name: ctl, match: {control_id: [S3.8]}, action: page}
  - {name: type, match: {finding_type: ["Effects/Data Exfiltration*"]}, action: page}
  - {name: acct, match: {account: ["444455556666"]}, action: notify}
  - {name: region, match: {region: [us-east-1]}, action: page, urgency: low}
  - {name: rtype, match: {resource_type: ["AWS::IAM::AccessKey"]}, action: page}
  - {name: tag, match: {resource_tag: {team: "iot-*"}}, action: page}
  - {name: cve, match: {cve_id: [CVE-2021-44228]}, action: page}
default_action: drop
"""
    policy = CompiledPolicy(parse_policy(text, "t.yaml"))

    def rule(**kw):
        return policy.evaluate(normalize_asff(asff(**kw)), NOW).reason

    assert rule(severity="LOW") == "rule sev"
    assert rule(product="inspector", severity="CRITICAL") == "rule minsev"
    assert rule(product="inspector", severity="MEDIUM") == "default_action"
    assert rule(product="macie", severity="MEDIUM") == "rule product-arn"
    assert rule(severity="MEDIUM", GeneratorId="custom-gen-42") == "rule gen"
    assert policy.evaluate(normalize_asff(control("S3.8", severity="MEDIUM")), NOW).reason == "rule ctl"
    assert rule(severity="MEDIUM", Types=["Effects/Data Exfiltration/x"]) == "rule type"
    assert rule(severity="MEDIUM", account="444455556666") == "rule acct"
    r = policy.evaluate(normalize_asff(asff(severity="MEDIUM", region="us-east-1")), NOW)
    assert (r.reason, r.urgency) == ("rule region", "low")
    assert rule(severity="MEDIUM", Resources=[{"Type": "AwsIamAccessKey", "Id": "AKIA"}]) == "rule rtype"
    assert rule(severity="MEDIUM", Resources=[{"Type": "AwsEc2Instance", "Id": "i", "Tags": {"team": "iot-gw"}}]) == (
        "rule tag"
    )
    assert rule(severity="MEDIUM", Resources=[{"Type": "AwsEc2Instance", "Id": "i", "Tags": {"team": "web"}}]) == (
        "default_action"
    )
    assert rule(severity="MEDIUM", Vulnerabilities=[{"Id": "CVE-2021-44228"}]) == "rule cve"


def test_suppression_wins_until_it_expires():
    raw = control("IAM.6", severity="CRITICAL")
    raw["AwsAccountId"] = "111122224444"
    assert _decide("prod", raw).action == "drop"
    assert "suppression firmware-signing-account-root-mfa" in _decide("prod", raw).reason
    after = dt.datetime(2027, 4, 1, tzinfo=dt.UTC)
    assert _decide("prod", raw, after).action == "page"
    assert _policy("prod").expired_suppressions(after) == ["firmware-signing-account-root-mfa"]


def test_shipped_config_dir_is_valid():
    assert set(load_policy_dir(CONFIG_DIR)) == {"dev", "stg", "prod"}


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            ("severity: [HIGH, CRITICAL]", "severity: [HIGH, CRITCAL]"),
            ":33: rules[1].match.severity[1]: Input should be",
        ),
        (("    urgency: high\n  - name: high", "    urgency: loud\n  - name: high"), ":30: rules[0].urgency:"),
        (("      min_cvss: 9.0", "      min_cvss: 11"), ":28: rules[0].match.min_cvss: Input should be less than"),
        (("      min_cvss: 9.0", "      min_cvs: 9.0"), ":28: rules[0].match.min_cvs: Extra inputs are not permitted"),
        (("    expires: 2027-03-31", "    expires: someday"), ":56: suppressions[0].expires:"),
        (("  routing_key_secret: findings", "  routing_key_secretz: findings"), ":16: notifier.routing_key_secretz"),
    ],
)
def test_invalid_file_names_file_line_and_field(broken, expected):
    text = (CONFIG_DIR / "prod.yaml").read_text()
    old, new = broken
    assert old in text
    with pytest.raises(PolicyError) as info:
        parse_policy(text.replace(old, new, 1), "config/prod.yaml")
    assert any(p.startswith("config/prod.yaml") and expected in p for p in info.value.problems), info.value.problems


def test_yaml_syntax_error_has_line():
    with pytest.raises(PolicyError, match=r"x.yaml:[34]: not valid YAML"):
        parse_policy("environment: t\nrules:\n  - [unclosed\n", "x.yaml")


def test_file_name_must_match_environment(tmp_path: Path):
    (tmp_path / "prod.yaml").write_text((CONFIG_DIR / "stg.yaml").read_text())
    with pytest.raises(PolicyError, match="does not match the file name"):
        load_policy_dir(tmp_path)


def test_urgency_is_for_pages_only():
    with pytest.raises(PolicyError, match="urgency applies to action 'page' only"):
        parse_policy(
            'environment: t\naccounts: ["*"]\nnotifier: {routing_key_secret: s}\n'
            "rules:\n  - {name: a, action: notify, urgency: high}\n",
            "t.yaml",
        )


# ------------------------------------------------------------------------------ the packaged (JSON) policy


@pytest.mark.parametrize("env", ["dev", "stg", "prod"])
def test_the_packaged_json_policy_is_the_same_policy(env, tmp_path):
    policy = load_policy(CONFIG_DIR / f"{env}.yaml")
    packaged = tmp_path / f"{env}.json"
    packaged.write_text(policy_json(policy))
    assert load_policy(packaged) == policy


def test_a_broken_packaged_policy_names_the_file_and_the_field(tmp_path):
    data = json.loads(policy_json(load_policy(CONFIG_DIR / "prod.yaml")))
    data["storm"]["threshold"] = 0
    data["rules"][1]["match"]["severity"] = ["SEVERE"]
    packaged = tmp_path / "prod.json"
    packaged.write_text(json.dumps(data))
    with pytest.raises(PolicyError) as info:
        load_policy(packaged)
    assert info.value.problems[0].startswith(f"{packaged}: rules[1].match.severity[0]: Input should be")
    assert info.value.problems[1].startswith(f"{packaged}: storm.threshold: Input should be greater than")


# ------------------------------------------------------------------------------ accounts, custom action, samples

MINIMAL = "environment: {env}\naccounts: {accounts}\nnotifier: {{routing_key_secret: s}}\nrules:\n  - {{name: a, action: page}}\n"


def test_accounts_are_required_and_twelve_digits_or_star():
    with pytest.raises(PolicyError, match=r"t.yaml:1: accounts: Field required"):
        parse_policy(
            "environment: t\nnotifier: {routing_key_secret: s}\nrules:\n  - {name: a, action: page}\n", "t.yaml"
        )
    with pytest.raises(PolicyError, match=r"t.yaml:2: accounts\[0\]: String should match"):
        parse_policy(MINIMAL.format(env="t", accounts='["1234"]'), "t.yaml")
    with pytest.raises(PolicyError, match=r'use \["\*"\] alone'):
        parse_policy(MINIMAL.format(env="t", accounts='["*", "111122223333"]'), "t.yaml")
    assert parse_policy(MINIMAL.format(env="t", accounts='["*"]'), "t.yaml").in_scope("999988887777")
    scoped = parse_policy(MINIMAL.format(env="t", accounts='["111122223333"]'), "t.yaml")
    assert scoped.in_scope("111122223333") and not scoped.in_scope("999988887777")


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        ('["111122223333", "222233334444"]', '["222233334444"]', "share 222233334444"),
        ('["*"]', '["222233334444"]', "share every account"),
    ],
)
def test_two_environments_may_not_share_an_account(tmp_path: Path, a, b, shared):
    (tmp_path / "prod.yaml").write_text(MINIMAL.format(env="prod", accounts=a))
    (tmp_path / "stg.yaml").write_text("# staging\n" + MINIMAL.format(env="stg", accounts=b))
    with pytest.raises(PolicyError) as info:
        load_policy_dir(tmp_path)
    [problem] = info.value.problems
    assert problem.startswith(f"{tmp_path / 'stg.yaml'}:3: accounts: environments 'prod' and 'stg' {shared}")


def test_the_old_custom_action_string_says_how_to_migrate():
    text = MINIMAL.format(env="t", accounts='["*"]') + "custom_action: notify\n"
    with pytest.raises(
        PolicyError, match=r"t.yaml:6: custom_action: .*custom_action: \{id: PageOnCall<Env>, mode: notify\}"
    ):
        parse_policy(text, "t.yaml")
    with pytest.raises(PolicyError, match=r"custom_action.id: String should match pattern"):
        parse_policy(MINIMAL.format(env="t", accounts='["*"]') + "custom_action: {id: page-on-call}\n", "t.yaml")


def test_sample_findings_page_only_through_a_rule_that_asks_for_samples():
    sample = asff(severity="CRITICAL", Sample=True)
    decision = _decide("prod", sample)
    assert decision.action == "drop"
    assert decision.reason.startswith("sample finding: rule high-and-critical would page")
    assert _decide("prod", dict(sample, Sample=False)).action == "page"
    text = MINIMAL.format(env="t", accounts='["*"]').replace(
        "rules:\n", "rules:\n  - {name: samples-to-test-service, match: {sample: true}, action: notify}\n"
    )
    policy = CompiledPolicy(parse_policy(text, "t.yaml"))
    tested = policy.evaluate(normalize_asff(sample), NOW)
    assert (tested.action, tested.reason) == ("notify", "rule samples-to-test-service")
    assert policy.evaluate(normalize_asff(asff(severity="LOW")), NOW).reason == "rule a"
