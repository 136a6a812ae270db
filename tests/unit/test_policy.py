"""Per-environment policy: the shipped examples, every kind of condition, suppressions, and file errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.settings.load import (
    EXPIRY_WARNING_DAYS,
    PolicyError,
    load_policy,
    load_policy_dir,
    parse_policy,
    policy_json,
    policy_path,
    policy_yaml_loader,
    validate_policy_dir,
    validate_policy_file,
    validate_policy_text,
)
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
        (("    expires: 2027-03-31", "    expires: someday"), ":64: suppressions[0].expires:"),
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


# ------------------------------------------------------------------------------ YAML: duplicate keys, unreadable values


def test_a_duplicate_key_is_an_error_not_a_silent_override():
    # PyYAML keeps the last of two equal keys: an appended `default_action: page` would page everything unmatched.
    text = (CONFIG_DIR / "stg.yaml").read_text() + "default_action: page\n"
    last = text.count("\n")
    first = text.splitlines().index("default_action: drop") + 1
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "config/stg.yaml")
    assert info.value.problems == [
        f"config/stg.yaml:{last}: default_action: duplicate key 'default_action' (first at line {first})"
    ]


def test_every_duplicate_key_is_reported_with_its_field():
    text = MINIMAL.format(env="t", accounts='["*"]').replace(
        "notifier: {routing_key_secret: s}\n",
        "notifier:\n  routing_key_secret: s\n  events_url: https://a.example\n  events_url: https://b.example\n",
    )
    text += "rules: []\n"
    problems = validate_policy_text(text, "t.yaml").errors
    assert [str(p) for p in problems] == [
        "t.yaml:6: notifier.events_url: duplicate key 'events_url' (first at line 5)",
        "t.yaml:9: rules: duplicate key 'rules' (first at line 7)",
    ]


def test_a_merge_key_override_is_not_a_duplicate():
    text = "environment: t\naccounts: ['*']\nnotifier: {routing_key_secret: s}\nbase: &base {name: a, action: notify}\n"
    # `base` is an unknown key (so the model refuses it), but YAML-wise the override of a merged `name` is fine.
    errors = validate_policy_text(text + "rules:\n  - {<<: *base, name: b}\n", "t.yaml").errors
    assert [str(p) for p in errors] == ["t.yaml:4: base: Extra inputs are not permitted"]


def test_the_loader_refuses_duplicate_keys_on_its_own():
    with pytest.raises(yaml.YAMLError, match=r"duplicate key 'a' \(first at line 1\)"):
        yaml.load("a: 1\nb: 2\na: 3\n", Loader=policy_yaml_loader())
    assert yaml.load("a: 1\nb: 2022-01-31\n", Loader=policy_yaml_loader()) == {
        "a": 1,
        "b": dt.date(2022, 1, 31),
    }


def test_an_invalid_date_names_file_line_and_field():
    # PyYAML's timestamp constructor raises a bare ValueError (month must be in 1..12): it was a traceback.
    text = (CONFIG_DIR / "prod.yaml").read_text().replace("expires: 2027-03-31", "expires: 2027-13-31")
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "config/prod.yaml")
    assert info.value.problems == ["config/prod.yaml:64: suppressions[0].expires: not a valid date: 2027-13-31"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-02-30", "t.yaml:6: default_action: not a valid date: 2027-02-30"),
        ("2027-02-03 25:00:00", "t.yaml:6: default_action: not a valid timestamp: 2027-02-03 25:00:00"),
        ("!!binary abc", "t.yaml:6: default_action: failed to decode base64 data"),
        ("!!int abc", "t.yaml:6: default_action: cannot read 'abc' as int: invalid literal for int()"),
        ("!custom x", "t.yaml:6: default_action: could not determine a constructor for the tag '!custom'"),
        ("*nowhere", "t.yaml:6: not valid YAML: found undefined alias 'nowhere'"),
        ("{<<: [1]}", "t.yaml:6: default_action.<<[0]: expected a mapping for merging, but found scalar"),
        ("{[a]: b}", "t.yaml:6: default_action: found unhashable key"),
    ],
)
def test_any_value_yaml_cannot_read_is_a_file_line_problem(value, expected):
    text = MINIMAL.format(env="t", accounts='["*"]') + f"default_action: {value}\n"
    [problem] = validate_policy_text(text, "t.yaml").errors
    assert str(problem).startswith(expected)
    assert "\n" not in str(problem)


def test_every_unreadable_value_is_reported_at_once():
    text = MINIMAL.format(env="t", accounts='["*"]') + "description: 2027-13-01\ndefault_action: 2027-00-01\n"
    assert [str(p) for p in validate_policy_text(text, "t.yaml").errors] == [
        "t.yaml:6: description: not a valid date: 2027-13-01",
        "t.yaml:7: default_action: not a valid date: 2027-00-01",
    ]


@pytest.mark.parametrize(
    "text", ["a: \x07\n", "[" * 5000, "a: &a [*a, *a]\n", "a: 1\n---\nb: 2\n", "", "- a\n", "\ttab: 1\n"]
)
def test_odd_yaml_never_raises_anything_but_policy_error(text):
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "t.yaml")
    assert all(p.startswith("t.yaml:") and "\n" not in p for p in info.value.problems)


def test_a_bad_date_in_a_config_dir_is_a_policy_error(tmp_path: Path):
    text = (CONFIG_DIR / "prod.yaml").read_text().replace("expires: 2027-03-31", "expires: 2027-13-31")
    (tmp_path / "prod.yaml").write_text(text)
    with pytest.raises(PolicyError, match=r"prod.yaml:64: suppressions\[0\].expires: not a valid date"):
        load_policy_dir(tmp_path)


def test_a_file_that_is_not_utf8_is_a_problem(tmp_path: Path):
    path = tmp_path / "t.yaml"
    path.write_bytes(b"environment: t\ndescription: caf\xe9\n")
    assert [str(p) for p in validate_policy_file(path).errors] == [
        f"{path}:2: not UTF-8 text: invalid continuation byte"
    ]


# ------------------------------------------------------------------------------ suppression expiry


def _prod(**kw):
    return validate_policy_file(CONFIG_DIR / "prod.yaml", **kw)


def test_an_expired_suppression_is_an_error_or_a_warning_as_asked():
    expired = _prod(today=dt.date(2027, 4, 2))
    assert [str(p) for p in expired.errors] == [
        f"{CONFIG_DIR / 'prod.yaml'}:64: suppressions[0].expires: suppression 'firmware-signing-account-root-mfa' "
        "expired on 2027-03-31 (2 days ago) and no longer applies: renew it after review, or remove it"
    ]
    assert not expired.ok and expired.policy is not None
    warned = _prod(today=dt.date(2027, 4, 2), expired_suppressions="warning")
    assert warned.ok and not warned.errors
    assert [str(p) for p in warned.warnings] == [str(expired.errors[0]).replace("expires: ", "expires: warning: ", 1)]


@pytest.mark.parametrize(
    ("today", "warning"),
    [
        (dt.date(2027, 3, 16), None),
        (dt.date(2027, 3, 17), "expires in 14 days (2027-03-31)"),
        (dt.date(2027, 3, 30), "expires in 1 day (2027-03-31)"),
        (dt.date(2027, 3, 31), "expires today (2027-03-31)"),
    ],
)
def test_a_suppression_expiring_soon_is_a_warning(today, warning):
    assert EXPIRY_WARNING_DAYS == 14
    for expired_suppressions in ("error", "warning"):
        result = _prod(today=today, expired_suppressions=expired_suppressions)
        assert result.ok
        if warning is None:
            assert result.warnings == ()
        else:
            [problem] = result.warnings
            assert str(problem).startswith(
                f"{CONFIG_DIR / 'prod.yaml'}:64: suppressions[0].expires: warning: suppression "
                f"'firmware-signing-account-root-mfa' {warning}: "
            )


def test_without_a_date_expiry_is_not_checked():
    # The functions load their policy without one: an expired suppression stops applying, it never stops the router.
    assert _prod().ok and _prod().warnings == ()
    assert load_policy(CONFIG_DIR / "prod.yaml").suppressions[0].expires == dt.date(2027, 3, 31)


# ------------------------------------------------------------------------------ the config directory


def test_yml_files_are_policies_too(tmp_path: Path):
    (tmp_path / "stg.yml").write_text((CONFIG_DIR / "stg.yaml").read_text())
    (tmp_path / "prod.yaml").write_text((CONFIG_DIR / "prod.yaml").read_text())
    assert set(load_policy_dir(tmp_path)) == {"stg", "prod"}
    assert policy_path(tmp_path, "stg") == tmp_path / "stg.yml"
    assert policy_path(tmp_path, "prod") == tmp_path / "prod.yaml"
    assert policy_path(tmp_path, "dev") == tmp_path / "dev.yaml"


def test_one_environment_in_a_yaml_and_a_yml_file_is_an_error(tmp_path: Path):
    (tmp_path / "stg.yaml").write_text((CONFIG_DIR / "stg.yaml").read_text())
    (tmp_path / "stg.yml").write_text((CONFIG_DIR / "stg.yaml").read_text())
    result = validate_policy_dir(tmp_path)
    assert [str(p) for p in result.errors] == [
        f"{tmp_path / 'stg.yml'}:2: environment: stg.yaml and stg.yml are both the policy of environment 'stg': "
        "keep one"
    ]
    with pytest.raises(PolicyError, match="both the policy of environment 'stg'"):
        load_policy_dir(tmp_path)


def test_other_files_are_named_in_a_warning_and_dotfiles_ignored(tmp_path: Path):
    (tmp_path / "stg.yaml").write_text((CONFIG_DIR / "stg.yaml").read_text())
    (tmp_path / "README.md").write_text("# policies\n")
    (tmp_path / "prod.json").write_text("{}")
    (tmp_path / "old").mkdir()
    (tmp_path / ".prettierrc").write_text("{}")
    result = validate_policy_dir(tmp_path)
    assert result.ok and set(result.policies) == {"stg"}
    assert [str(p) for p in result.warnings] == [
        f"{tmp_path / 'README.md'}: warning: not a policy file, ignored: policies are <env>.yaml or <env>.yml",
        f"{tmp_path / 'old'}: warning: a directory, ignored: policies are <env>.yaml or <env>.yml",
        f"{tmp_path / 'prod.json'}: warning: not a policy file, ignored: policies are <env>.yaml or <env>.yml",
    ]


def test_a_missing_or_empty_config_dir_is_a_usage_error(tmp_path: Path):
    assert validate_policy_dir(tmp_path / "nope").usage_error == f"{tmp_path / 'nope'}: no such directory"
    assert validate_policy_dir(tmp_path).usage_error == f"{tmp_path}: no policy files (<env>.yaml or <env>.yml)"
    with pytest.raises(PolicyError, match="no policy files"):
        load_policy_dir(tmp_path)


# ------------------------------------------------------------------------------ expired suppressions, explain (issue 12)

AFTER_EXPIRY = dt.datetime(2027, 4, 1, tzinfo=dt.UTC)  # prod's firmware-signing-account-root-mfa expired 2027-03-31


def _root_mfa(severity: str = "CRITICAL") -> dict:
    raw = control("IAM.6", severity=severity)
    raw["AwsAccountId"] = "111122224444"
    return raw


def test_an_expired_suppression_that_would_match_is_named_in_the_reason():
    assert _decide("prod", _root_mfa(), dt.datetime(2027, 3, 31, 23, 59, tzinfo=dt.UTC)).action == "drop"  # last day
    paged = _decide("prod", _root_mfa(), AFTER_EXPIRY)
    assert (paged.action, paged.urgency) == ("page", "high")
    assert paged.reason == (
        "rule high-and-critical (suppression firmware-signing-account-root-mfa expired 2027-03-31, no longer applies)"
    )
    dropped = _decide("prod", _root_mfa("LOW"), AFTER_EXPIRY)
    assert (dropped.action, dropped.reason) == (
        "drop",
        "default_action (suppression firmware-signing-account-root-mfa expired 2027-03-31, no longer applies)",
    )
    # a finding the suppression never matched says nothing about it
    assert _decide("prod", asff(severity="HIGH"), AFTER_EXPIRY).reason == "rule high-and-critical"


def test_several_expired_suppressions_are_all_named():
    text = MINIMAL.format(env="t", accounts='["*"]') + (
        "suppressions:\n"
        "  - {name: old-a, match: {severity: [HIGH]}, owner: o, reason: reviewed long ago, expires: 2026-01-01}\n"
        "  - {name: old-b, match: {product: [GuardDuty]}, owner: o, reason: reviewed long ago, expires: 2026-02-01}\n"
        "  - {name: old-c, match: {severity: [LOW]}, owner: o, reason: reviewed long ago, expires: 2026-03-01}\n"
    )
    decision = CompiledPolicy(parse_policy(text, "t.yaml")).evaluate(normalize_asff(asff(severity="HIGH")), NOW)
    assert (
        decision.reason == "rule a (suppressions old-a expired 2026-01-01, old-b expired 2026-02-01, no longer apply)"
    )


class _NoDate(dt.datetime):
    def date(self):  # evaluate must not look at the date unless a suppression matched
        raise AssertionError("date() called")


def test_expiry_is_checked_only_for_a_suppression_that_matches():
    now = _NoDate(2026, 11, 21, tzinfo=dt.UTC)
    assert _policy("prod").evaluate(normalize_asff(asff(severity="HIGH")), now).reason == "rule high-and-critical"
    with pytest.raises(AssertionError, match="date"):
        _policy("prod").evaluate(normalize_asff(_root_mfa()), now)


EVERY_CONDITION = """
environment: t
accounts: ["*"]
notifier: {routing_key_secret: s}
suppressions:
  - {name: active, match: {control_id: [IAM.6], account: ["111122224444"]}, owner: o, reason: reviewed in SEC-1, expires: 2099-01-01}
  - {name: expired, match: {severity: [CRITICAL], product: [Inspector]}, owner: o, reason: reviewed in SEC-2, expires: 2026-01-01}
  - {name: forever, match: {title: ["*tarpit*"]}, owner: o, reason: reviewed in SEC-3}
rules:
  - {name: samples, match: {sample: true, severity: [CRITICAL]}, action: notify}
  - {name: tags, match: {resource_tag: {team: "iot-*", env: prod}, min_severity: MEDIUM}, action: page}
  - {name: cvss, match: {min_cvss: 9.0, cve_id: ["CVE-2021-*"]}, action: page}
  - {name: real-only, match: {sample: false, finding_type: ["Effects/*"]}, action: notify}
  - {name: where, match: {region: [us-*], resource_type: ["AWS::S3::Bucket"], resource_id: ["*telemetry*"]}, action: page, urgency: low}
  - {name: who, match: {product: ["arn:aws:securityhub:*::product/aws/macie"], generator_id: ["*"], account: ["111122223333"]}, action: notify}
  - {name: controls, match: {control_id: ["S3.*"]}, action: page}
  - {name: exploitable, match: {exploit_available: true, fix_available: [YES, PARTIAL], min_epss: 0.5}, action: page}
  - {name: unfixable, match: {exploit_available: false, fix_available: [NO]}, action: notify}
  - {name: quiet, match: {severity: [LOW, INFORMATIONAL]}, action: drop}
  - {name: everything-high, match: {min_severity: HIGH}, action: page}
default_action: notify
"""


def _fixture_findings() -> list:
    from findings_router.domain.normalize import normalize_document
    from findings_router_local.replay import read_documents
    from tests.builders import FIXTURES

    findings = []
    for path in sorted(FIXTURES.glob("*.json")):
        try:
            docs = list(read_documents(path))
        except ValueError:
            continue
        for _, doc in docs:
            try:
                findings.extend(normalize_document(doc).findings)
            except ValueError:
                continue
    return findings


def _built_findings() -> list:
    tagged = [{"Type": "AwsEc2Instance", "Id": "i-1", "Tags": {"team": "iot-gw", "env": "prod"}}]
    split = [
        {"Type": "AwsEc2Instance", "Id": "i-2", "Tags": {"team": "iot-gw"}},
        {"Type": "AwsEc2Instance", "Id": "i-3", "Tags": {"env": "prod"}},
    ]
    raws = [asff(severity=s) for s in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")]
    raws += [
        asff(severity="CRITICAL", Sample=True),
        asff(severity="LOW", Sample=True),
        asff(severity="MEDIUM", Resources=tagged),
        asff(severity="MEDIUM", Resources=split),
        asff(product="inspector", severity="CRITICAL"),
        asff(
            product="inspector",
            severity="MEDIUM",
            Vulnerabilities=[{"Id": "CVE-2021-44228", "Cvss": [{"BaseScore": 10}]}],
        ),
        asff(
            product="inspector", severity="MEDIUM", Vulnerabilities=[{"Id": "CVE-2023-1", "Cvss": [{"BaseScore": 9.5}]}]
        ),
        asff(
            product="inspector",
            severity="LOW",
            Vulnerabilities=[
                {"Id": "CVE-2026-1", "ExploitAvailable": "YES", "FixAvailable": "YES", "EpssScore": 0.7},
                {"Id": "CVE-2026-2", "ExploitAvailable": "NO", "FixAvailable": "NO", "EpssScore": 0.1},
            ],
        ),
        asff(
            product="inspector",
            severity="LOW",
            Vulnerabilities=[{"Id": "CVE-2026-3", "ExploitAvailable": "NO", "FixAvailable": "NO", "EpssScore": 0.9}],
        ),
        asff(product="inspector", severity="LOW", Vulnerabilities=[{"Id": "CVE-2026-4", "EpssScore": 0.9}]),
        asff(product="macie", severity="MEDIUM", Types=["Effects/Data Exposure"]),
        asff(product="macie", severity="MEDIUM", Types=["Effects/Data Exposure"], Sample=True),
        asff(
            severity="MEDIUM",
            region="us-east-1",
            Resources=[{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::telemetry-raw"}],
        ),
        asff(severity="HIGH", Title="ssh tarpit probe"),
        _root_mfa(),
        control("S3.8", severity="MEDIUM"),
    ]
    return [normalize_asff(r) for r in raws]


def _every_condition_policy():
    return parse_policy(EVERY_CONDITION, "every.yaml")


def test_explain_match_uses_the_same_tests_as_compile_match():
    from findings_router.domain.policy import compile_match, explain_match

    policies = [load_policy(CONFIG_DIR / f"{env}.yaml") for env in ("dev", "stg", "prod")] + [_every_condition_policy()]
    matches = [r.match for p in policies for r in p.rules if r.match] + [
        s.match for p in policies for s in p.suppressions
    ]
    compiled = [(m, compile_match(m)) for m in matches]
    findings = _fixture_findings() + _built_findings()
    assert len(findings) > 30
    for f in findings:
        for match, predicate in compiled:
            results = explain_match(match, f)
            assert [r.field for r in results] == [k for k, v in match if v is not None]
            assert all(r.matched for r in results) == predicate(f), (f.id, match, results)


def test_explain_decides_exactly_what_evaluate_decides_over_fixtures_and_shipped_configs():
    policies = [_policy(env) for env in ("dev", "stg", "prod")] + [CompiledPolicy(_every_condition_policy())]
    findings = _fixture_findings() + _built_findings()
    reasons = set()
    for policy in policies:
        for f in findings:
            for now in (NOW, AFTER_EXPIRY):
                decision = policy.evaluate(f, now)
                explanation = policy.explain(f, now)
                assert explanation.decision == decision, (policy.environment, f.id)
                step = explanation.decided_by
                if decision.reason.startswith(("rule ", "suppression ")):
                    assert step is not None
                    assert decision.reason == f"{step.kind} {step.name}" or decision.reason.startswith(
                        (f"{step.kind} {step.name} (", f"{step.kind} {step.name};")
                    ), (decision.reason, step)
                    assert step.matched and step is explanation.steps[-1]
                else:
                    assert step is None
                    assert decision.reason.startswith(("default_action", "sample finding: "))
                    assert not explanation.not_reached
                assert all(s.status != "decided" for s in explanation.steps[:-1])
                expired_matches = [s.name for s in explanation.steps if s.status == "expired" and s.matched]
                for name in expired_matches:
                    assert f"{name} expired" in decision.reason
                reasons.add(decision.reason.split(" (")[0])
    # the corpus exercises every kind of outcome of the synthetic policy
    for expected in (
        "suppression active",
        "suppression forever",
        "rule samples",
        "rule tags",
        "rule cvss",
        "rule real-only",
        "rule where",
        "rule who",
        "rule controls",
        "rule quiet",
        "rule everything-high",
        "default_action",
    ):
        assert expected in reasons, expected
    assert any(r.startswith("sample finding: ") for r in reasons)


def test_explain_says_field_by_field_why_a_rule_did_not_match():
    from findings_router.domain.policy import explain_match

    policy = _every_condition_policy()
    rules = {r.name: r.match for r in policy.rules}
    web = normalize_asff(
        asff(severity="MEDIUM", Resources=[{"Type": "AwsEc2Instance", "Id": "i", "Tags": {"team": "web"}}])
    )
    assert [r.text for r in explain_match(rules["tags"], web)] == [
        "min_severity: MEDIUM is at least MEDIUM",
        "resource_tag: team 'web' does not match 'iot-*', no tag env",
    ]
    assert [(r.matched, r.text) for r in explain_match(rules["cvss"], web)] == [
        (False, "min_cvss: no CVSS score"),
        (False, "cve_id: no CVE ids"),
    ]
    high = load_policy(CONFIG_DIR / "prod.yaml").rules[1].match
    assert high is not None
    [result] = explain_match(high, web)
    assert (result.matched, result.text) == (False, "severity: MEDIUM not in [HIGH, CRITICAL]")

    explanation = CompiledPolicy(policy).explain(normalize_asff(asff(severity="HIGH", Sample=True)), NOW)
    assert (
        explanation.decision.reason
        == "sample finding: rule everything-high would page, but no rule with `sample: true` matched"
    )
    gated = explanation.steps[-1]
    assert (gated.name, gated.status) == ("everything-high", "no match")
    assert [c.text for c in gated.conditions] == [
        "min_severity: HIGH is at least HIGH",
        "sample: a sample finding needs a rule with sample: true",
    ]
    samples = next(s for s in explanation.steps if s.name == "samples")
    assert [c.text for c in samples.conditions] == ["severity: HIGH not in [CRITICAL]", "sample: a sample finding"]


def test_explain_shows_expired_suppressions_and_stops_at_the_deciding_rule():
    explanation = _policy("prod").explain(normalize_asff(_root_mfa()), AFTER_EXPIRY)
    [suppression, cvss, high] = explanation.steps
    assert (suppression.status, suppression.matched, str(suppression.expires)) == ("expired", True, "2027-03-31")
    assert [c.text for c in suppression.conditions] == [
        "control_id: 'IAM.6' matches [IAM.6]",
        "account: 111122224444 in [111122224444]",
    ]
    assert (cvss.status, [c.text for c in cvss.conditions]) == ("no match", ["min_cvss: no CVSS score"])
    assert (high.status, high.name) == ("decided", "high-and-critical")
    assert explanation.not_reached == ("rule exploitable-cvss-7", "rule medium-guardduty-threats")
    before = _policy("prod").explain(normalize_asff(_root_mfa()), NOW)
    assert [s.status for s in before.steps] == ["decided"]
    assert before.not_reached == (
        "rule critical-cvss-any-label",
        "rule high-and-critical",
        "rule exploitable-cvss-7",
        "rule medium-guardduty-threats",
    )


def _vulnerable(severity: str = "LOW", **vuln):
    return normalize_asff(asff(product="inspector", severity=severity, Vulnerabilities=[{"Id": "CVE-2026-9", **vuln}]))


@pytest.mark.parametrize(
    ("match", "vuln", "expected"),
    [
        ({"exploit_available": True}, {"ExploitAvailable": "YES"}, (True, "exploit available (matches true)")),
        ({"exploit_available": True}, {"ExploitAvailable": "NO"}, (False, "no known exploit (does not match true)")),
        ({"exploit_available": False}, {"ExploitAvailable": "NO"}, (True, "no known exploit (matches false)")),
        ({"exploit_available": False}, {}, (False, "exploit availability unknown")),
        ({"exploit_available": True}, {}, (False, "exploit availability unknown")),
        ({"fix_available": ["YES"]}, {"FixAvailable": "YES"}, (True, "YES in [YES]")),
        ({"fix_available": ["YES", "PARTIAL"]}, {"FixAvailable": "NO"}, (False, "NO not in [YES, PARTIAL]")),
        ({"fix_available": ["NO"]}, {}, (False, "fix availability unknown")),
        ({"min_epss": 0.5}, {"EpssScore": 0.94358}, (True, "0.94358 >= 0.5")),
        ({"min_epss": 0.5}, {"EpssScore": 0.1}, (False, "0.1 < 0.5")),
        ({"min_epss": 0}, {}, (False, "no EPSS score")),
    ],
)
def test_vulnerability_conditions(match, vuln, expected):
    from findings_router.domain.policy import compile_match, explain_match
    from findings_router.settings.schema import Match

    m = Match.model_validate(match)
    finding = _vulnerable(**vuln)
    [result] = explain_match(m, finding)
    assert (result.matched, result.detail) == expected
    assert compile_match(m)(finding) is expected[0]


def test_unquoted_yes_and_no_mean_yes_and_no_in_fix_available():
    text = EVERY_CONDITION.replace("fix_available: [NO]", "fix_available: [NO, YES]")
    policy = parse_policy(text, "every.yaml")
    rule = next(r for r in policy.rules if r.name == "unfixable")
    assert rule.match is not None and rule.match.fix_available == ["NO", "YES"]
    # As YAML reads them unquoted: booleans.
    assert yaml.safe_load("a: [NO, YES]") == {"a": [False, True]}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("min_epss: 1.5", "min_epss: Input should be less than or equal to 1"),
        ("fix_available: [SOON]", "fix_available[0]: Input should be 'YES', 'NO' or 'PARTIAL'"),
        ("fix_available: []", "fix_available: List should have at least 1 item"),
        ("exploit_available: maybe", "exploit_available: Input should be a valid boolean"),
    ],
)
def test_invalid_vulnerability_conditions_name_the_field(line, problem):
    text = EVERY_CONDITION.replace('match: {control_id: ["S3.*"]}', "match: {" + line + "}")
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "every.yaml")
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_prod_pages_an_exploitable_vulnerability_whatever_its_label():
    policy = _policy("prod")
    exploitable = _vulnerable("MEDIUM", ExploitAvailable="YES", Cvss=[{"BaseScore": 7.5}])
    assert policy.evaluate(exploitable, NOW).reason == "rule exploitable-cvss-7"
    assert (
        policy.evaluate(_vulnerable("MEDIUM", ExploitAvailable="NO", Cvss=[{"BaseScore": 7.5}]), NOW).action == "drop"
    )
    assert (
        policy.evaluate(_vulnerable("MEDIUM", ExploitAvailable="YES", Cvss=[{"BaseScore": 6.9}]), NOW).action == "drop"
    )


def test_every_match_field_is_explained():
    from findings_router.domain.policy import explain_match
    from findings_router.settings.schema import Match

    every = Match(
        severity=["HIGH"],
        min_severity="LOW",
        product=["GuardDuty"],
        generator_id=["*"],
        control_id=["S3.8"],
        finding_type=["TTPs/*"],
        account=["111122223333"],
        region=["eu-*"],
        resource_type=["AWS::EC2::Instance"],
        resource_id=["*i-0abc"],
        resource_tag={"env": "prod"},
        min_cvss=1.0,
        cve_id=["CVE-*"],
        exploit_available=True,
        fix_available=["YES"],
        min_epss=0.5,
        title=["SSH*"],
        sample=False,
    )
    assert set(every.model_fields_set) == set(Match.model_fields), "a new Match field needs a builder in policy.py"
    results = explain_match(every, normalize_asff(asff(severity="HIGH")))
    assert [r.field for r in results] == list(Match.model_fields)
    assert {r.field for r in results if not r.matched} == {
        "control_id",
        "min_cvss",
        "cve_id",
        "exploit_available",
        "fix_available",
        "min_epss",
    }
