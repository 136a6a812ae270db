"""`findings-router explain`: why a policy pages, notifies or drops each finding, and what it would send."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest

from findings_router.settings.load import load_policy, parse_policy
from findings_router_local.explain import explain_command
from findings_router_local.replay import Replayer
from tests.builders import CONFIG_DIR, FIXTURES, NOW, asff, control, event

AFTER_EXPIRY = dt.datetime(2027, 4, 1, tzinfo=dt.UTC)  # prod's suppression expired 2027-03-31
SECRET = "findings-router/prod/pagerduty-routing-key"
CUSTOM_ACTION_ARN = "arn:aws:securityhub:eu-central-1:111122223333:action/custom/PageOnCallProd"


def run(paths, *, env="prod", output="json", now=NOW, stdin="", policy=None):
    out, err = io.StringIO(), io.StringIO()
    code = explain_command(
        policy or load_policy(CONFIG_DIR / f"{env}.yaml"),
        [str(p) for p in paths],
        output=output,
        out=out,
        err=err,
        now=now,
        stdin=io.StringIO(stdin),
    )
    return code, out.getvalue(), err.getvalue()


def records(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def write(tmp_path: Path, name: str, *docs: dict) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    return path


def root_mfa(severity: str = "CRITICAL") -> dict:
    raw = control("IAM.6", severity=severity)
    raw["AwsAccountId"] = "111122224444"
    return raw


def test_a_page_shows_each_rule_up_to_the_deciding_one_and_the_body_it_would_send():
    code, out, err = run([FIXTURES / "asff_guardduty_ssh_bruteforce.json"], output="text")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("finding arn:aws:guardduty:")
    for expected in (
        "scope: in scope: account 111122223333 is one of prod's accounts",
        "suppression firmware-signing-account-root-mfa: no match",
        "  ✗ account: 111122223333 not in [111122224444]",
        "  ✗ control_id: no control id (not a Security Hub control finding)",
        "rule critical-cvss-any-label (page, high urgency): no match",
        "  ✗ min_cvss: no CVSS score",
        "rule high-and-critical (page, high urgency): MATCHED, decides",
        "  ✓ severity: HIGH in [HIGH, CRITICAL]",
        "not evaluated (the first match decides): rule exploitable-cvss-7, rule medium-guardduty-threats",
        "decision: PAGE, high urgency — rule high-and-critical",
    ):
        assert expected in lines, expected
    assert not any(line.startswith("rule medium-guardduty-threats") for line in lines)
    assert any(line.startswith("dedup key: fr1-") for line in lines)
    body = json.loads(out[out.index("\n  {") : out.rindex("  }") + 3])
    assert body["routing_key"] == f"<from Secrets Manager: {SECRET}>"
    assert body["event_action"] == "trigger"
    assert body["payload"]["severity"] == "error"
    assert body["payload"]["custom_details"]["decision"] == "rule high-and-critical"


def test_json_lines_carry_the_same_content():
    code, out, _ = run([FIXTURES / "asff_guardduty_ssh_bruteforce.json"])
    assert code == 0
    [rec] = records(out)
    assert rec["scope"]["in_scope"] is True
    assert [(s["kind"], s["name"], s["status"]) for s in rec["steps"]] == [
        ("suppression", "firmware-signing-account-root-mfa", "no match"),
        ("rule", "critical-cvss-any-label", "no match"),
        ("rule", "high-and-critical", "decided"),
    ]
    assert rec["steps"][1]["conditions"] == [{"field": "min_cvss", "matched": False, "detail": "no CVSS score"}]
    assert rec["not_reached"] == ["rule exploitable-cvss-7", "rule medium-guardduty-threats"]
    assert rec["default_action"] is None
    assert rec["decision"] == {"action": "page", "urgency": "high", "reason": "rule high-and-critical"}
    assert rec["dedup_key"].startswith("fr1-")
    [body] = rec["sends"]
    assert body["dedup_key"] == rec["dedup_key"]
    assert body["routing_key"] == f"<from Secrets Manager: {SECRET}>"


def test_a_drop_sends_nothing_and_names_the_default_action(tmp_path):
    code, out, _ = run([write(tmp_path, "low.json", asff(severity="LOW"))])
    [rec] = records(out)
    assert code == 0
    assert rec["default_action"] == "drop"
    assert rec["decision"] == {"action": "drop", "urgency": "low", "reason": "default_action"}
    assert rec["sends"] == []
    assert [s["status"] for s in rec["steps"]] == ["no match"] * 5
    _, text, _ = run([write(tmp_path, "low.json", asff(severity="LOW"))], output="text")
    assert "no suppression or rule decided: default_action drop" in text
    assert "sends: nothing (drop: nothing is sent)" in text


def test_an_expired_suppression_is_shown_as_expired(tmp_path):
    path = write(tmp_path, "root.json", root_mfa())
    _, out, _ = run([path], output="text", now=AFTER_EXPIRY)
    assert (
        "suppression firmware-signing-account-root-mfa: expired 2027-03-31, no longer applies (would have matched)"
        in out.splitlines()
    )
    assert "  ✓ control_id: 'IAM.6' matches [IAM.6]" in out.splitlines()
    assert (
        "decision: PAGE, high urgency — rule high-and-critical "
        "(suppression firmware-signing-account-root-mfa expired 2027-03-31, no longer applies)"
    ) in out.splitlines()
    _, before, _ = run([path], now=NOW)
    [rec] = records(before)
    assert [s["status"] for s in rec["steps"]] == ["decided"]
    assert rec["decision"]["reason"].startswith("suppression firmware-signing-account-root-mfa")
    assert rec["sends"] == []


def test_out_of_scope_says_so_and_stops_there(tmp_path):
    foreign = asff(account="999988887777")
    other_tool = event(
        asff(severity="CRITICAL"),
        detail_type="Security Hub Findings - Custom Action",
        actionName="Ticket",
        resources=["arn:aws:securityhub:eu-central-1:111122223333:action/custom/Ticket"],
    )
    code, out, _ = run([write(tmp_path, "in.jsonl", foreign, other_tool)])
    assert code == 0
    a, b = records(out)
    assert a["scope"] == {
        "in_scope": False,
        "detail": "account 999988887777 is outside prod's account scope (accounts: 111122223333, 111122224444)",
    }
    assert "another tool's action changes nothing" in b["scope"]["detail"]
    for rec in (a, b):
        assert "steps" not in rec and "dedup_key" not in rec
        assert rec["decision"]["action"] == "drop"
        assert rec["sends"] == []
    _, text, _ = run([write(tmp_path, "in.jsonl", foreign)], output="text")
    assert "scope: OUT OF SCOPE: account 999988887777" in text
    assert "suppression" not in text and "rule " not in text


def test_our_custom_action_pages_whatever_the_rules_say(tmp_path):
    sent = event(
        asff(severity="LOW"),
        detail_type="Security Hub Findings - Custom Action",
        actionName="Page on-call prod",
        resources=[CUSTOM_ACTION_ARN],
    )
    _, out, _ = run([write(tmp_path, "action.json", sent)])
    [rec] = records(out)
    assert rec["policy_decision"]["reason"] == "default_action"
    assert rec["custom_action"]["applies"] is True
    assert rec["custom_action"]["mode"] == "page"
    assert rec["decision"] == {"action": "page", "urgency": "high", "reason": "custom action PageOnCallProd"}
    assert rec["sends"][0]["payload"]["custom_details"]["decision"] == "custom action PageOnCallProd"

    text = (CONFIG_DIR / "prod.yaml").read_text().replace("  mode: page", "  mode: policy")
    _, out, _ = run([write(tmp_path, "action.json", sent)], policy=parse_policy(text, "prod.yaml"))
    [rec] = records(out)
    assert rec["custom_action"]["applies"] is False
    assert rec["decision"]["reason"] == "default_action"
    assert rec["sends"] == []


def test_a_resolved_finding_resolves_an_open_incident_whatever_the_decision(tmp_path):
    _, out, _ = run([write(tmp_path, "passed.json", control("S3.8", status="PASSED"))])
    [rec] = records(out)
    assert rec["finding"]["resolved"] is True
    [body] = rec["sends"]
    assert body == {
        "routing_key": f"<from Secrets Manager: {SECRET}>",
        "event_action": "resolve",
        "dedup_key": rec["dedup_key"],
    }


def test_a_sample_finding_needs_a_rule_with_sample_true(tmp_path):
    code, out, _ = run([FIXTURES / "asff_guardduty_sample.json"], output="text")
    assert code == 0
    assert "  ✗ sample: a sample finding needs a rule with sample: true" in out.splitlines()
    assert "decision: DROP — sample finding: " in out


def test_resource_tags_are_explained_per_tag(tmp_path):
    policy = parse_policy(
        'environment: t\naccounts: ["*"]\nnotifier: {routing_key_secret: s}\n'
        'rules:\n  - {name: iot, match: {resource_tag: {team: "iot-*"}}, action: page}\n',
        "t.yaml",
    )
    web = asff(Resources=[{"Type": "AwsEc2Instance", "Id": "i", "Tags": {"team": "web"}}])
    _, out, _ = run([write(tmp_path, "web.json", web)], policy=policy, output="text")
    assert "  ✗ resource_tag: team 'web' does not match 'iot-*'" in out.splitlines()
    assert "decision: DROP — default_action" in out.splitlines()


def test_standard_input(tmp_path):
    text = json.dumps(asff(severity="CRITICAL")) + "\n" + json.dumps(asff(severity="LOW")) + "\n"
    code, out, err = run(["-"], stdin=text)
    assert (code, err) == (0, "")
    assert [(r["where"], r["decision"]["action"]) for r in records(out)] == [
        ("<stdin>:1", "page"),
        ("<stdin>:2", "drop"),
    ]


def test_every_input_shape_is_explained(tmp_path):
    bare = write(tmp_path, "bare.json", asff(severity="HIGH"))
    array = tmp_path / "array.json"
    array.write_text(json.dumps([asff(severity="HIGH"), asff(severity="MEDIUM")]))
    lines = write(tmp_path, "events.jsonl", event(asff(severity="CRITICAL")), event(asff(severity="LOW")))
    code, out, err = run(
        [bare, array, lines, FIXTURES / "get_findings_output.json", FIXTURES / "ocsf_guardduty_detection.json"]
    )
    assert (code, err) == (0, "")
    wheres = [r["where"] for r in records(out)]
    assert wheres[:5] == [str(bare), str(array), str(array), f"{lines}:1", f"{lines}:2"]
    assert len(wheres) > 6


def test_unreadable_input_is_reported_with_its_position_and_the_rest_still_explained(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(asff(severity="HIGH")) + "\n{not json\n" + json.dumps({"hello": 1}) + "\n")
    code, out, err = run(
        [tmp_path / "missing.json", broken, FIXTURES / "asff_missing_required_field.json", "-"],
        stdin=json.dumps(asff(severity="LOW")),
    )
    assert code == 2
    assert [r["where"] for r in records(out)] == [f"{broken}:1", "<stdin>"]
    problems = err.splitlines()
    assert problems[0].startswith(f"error: {tmp_path / 'missing.json'}: ")
    assert problems[1].startswith(f"error: {broken}:2: column 2: not JSON")
    assert problems[2].startswith(f"error: {broken}:3: not a Security Hub event")
    assert problems[3].startswith(f"error: {FIXTURES / 'asff_missing_required_field.json'}: missing required field")
    assert len(problems) == 4


def test_an_unknown_output_is_refused():
    with pytest.raises(ValueError, match="output must be one of text, json"):
        run([], output="yaml")


def test_the_real_routing_key_is_never_shown(tmp_path):
    _, out, _ = run([FIXTURES / "asff_inspector_log4j.json"], output="text")
    assert f"<from Secrets Manager: {SECRET}>" in out
    assert "R" * 32 not in out


@pytest.mark.parametrize("env", ["dev", "stg", "prod"])
def test_what_explain_shows_is_what_the_router_sends(env):
    """Every fixture finding, seen for the first time: explain's decision and bodies are the router's own."""
    policy = load_policy(CONFIG_DIR / f"{env}.yaml")
    policy = policy.model_copy(update={"accounts": ["*"]})  # the fixtures' accounts are prod's
    outcomes = set()
    for path in sorted(FIXTURES.glob("*.json")):
        findings = Replayer(policy).normalize_files([path])
        _, out, _ = run([path], policy=policy)
        assert len(records(out)) == len(findings), path.name
        for finding, rec in zip(findings, records(out), strict=True):
            replayer = Replayer(policy)  # fresh state: a first sighting
            routed = replayer.router.route(finding, NOW)
            outcomes.add(routed.decision.outcome)
            assert rec["finding"]["id"] == finding.id
            assert rec.get("dedup_key", routed.decision.key) == routed.decision.key  # none when out of scope
            if routed.decision.outcome in ("page", "notify"):
                assert (rec["decision"]["action"], rec["decision"]["urgency"]) == (
                    routed.policy.action,
                    routed.policy.urgency,
                )
                routing_key = rec["sends"][0]["routing_key"]
                assert rec["sends"] == [dict(e, routing_key=routing_key) for e in replayer.notifier.events]
            elif finding.is_resolved and rec["scope"]["in_scope"]:
                assert rec["decision"]["action"] == "resolve"  # the router resolves, whatever the rules say
                assert not replayer.notifier.events
            else:
                assert rec["decision"] == {
                    "action": routed.policy.action,
                    "urgency": routed.policy.urgency,
                    "reason": routed.policy.reason,
                }
                assert not replayer.notifier.events
                assert rec["sends"] == [] or finding.is_resolved
    assert "page" in outcomes or "notify" in outcomes


def test_a_finding_security_hub_reports_gone_is_explained_as_a_resolution(capsys):
    import io

    from findings_router.settings.load import load_policy
    from findings_router_local.explain import explain_command
    from tests.builders import CONFIG_DIR, FIXTURES

    out, err = io.StringIO(), io.StringIO()
    policy = load_policy(CONFIG_DIR / "prod.yaml")
    assert explain_command(policy, [FIXTURES / "asff_guardduty_archived.json"], out=out, err=err) == 0
    text = out.getvalue()
    assert "decision: RESOLVE — Security Hub reports it gone" in text
    assert "decision: PAGE" not in text


# ------------------------------------------------------------------------------ vulnerabilities


def test_an_exploitable_medium_vulnerability_pages_by_its_exploit_and_cvss(tmp_path):
    raw = asff(
        product="inspector",
        severity="MEDIUM",
        Types=["Software and Configuration Checks/Vulnerabilities/CVE"],
        Vulnerabilities=[{"Id": "CVE-2026-1234", "Cvss": [{"BaseScore": 8.1}], "ExploitAvailable": "YES"}],
    )
    code, out, _ = run([write(tmp_path, "v.json", raw)], output="text")
    lines = out.splitlines()
    assert code == 0
    assert "rule exploitable-cvss-7 (page, high urgency): MATCHED, decides" in lines
    assert "  ✓ exploit_available: exploit available (matches true)" in lines
    assert "  ✓ min_cvss: 8.1 >= 7.0" in lines
    assert any(
        line.startswith("folded: dedup.fold_vulnerabilities cve_account: every finding of CVE-2026-1234")
        for line in lines
    )
    [rec] = records(run([write(tmp_path, "v.json", raw)])[1])
    assert rec["folded"]["vulnerability"] == "CVE-2026-1234"
    [body] = rec["sends"]
    details = body["payload"]["custom_details"]
    assert details["vulnerability"].startswith("CVE-2026-1234: exploit available;")
    assert details["affected_resource_count"] == 1
    assert details["all_affected_resources"] == "findings-router cve CVE-2026-1234 --env prod"


def test_unknown_vulnerability_facts_are_named_in_the_explanation(tmp_path):
    policy = parse_policy(
        (CONFIG_DIR / "dev.yaml").read_text()
        + "\n".join(
            [
                "",
                "suppressions:",
                "  - name: no-fix-no-page",
                "    match: {fix_available: [NO], min_epss: 0.5, exploit_available: false}",
                "    owner: platform@example.com",
                "    reason: nothing to do until a fix exists, reviewed weekly",
            ]
        ),
        "dev.yaml",
    )
    raw = asff(severity="CRITICAL", account="444455556666")
    code, out, _ = run([write(tmp_path, "g.json", raw)], output="text", env="dev", policy=policy)
    lines = out.splitlines()
    assert code == 0
    assert "  ✗ exploit_available: exploit availability unknown" in lines
    assert "  ✗ fix_available: fix availability unknown" in lines
    assert "  ✗ min_epss: no EPSS score" in lines
