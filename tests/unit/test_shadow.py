"""Shadow mode: shadow decisions made and recorded exactly as live ones, under their own keys (switching to live
inherits nothing), never sent or written back; rules with `shadow: true` in a live environment; the shadow-report's
comparison; and replay and explain showing silences and shadow decisions."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from findings_router.adapters.memory import InMemoryDedupStore, RecordingSecurityHub
from findings_router.domain.keys import SHADOW_PREFIX, live_key, shadow_key
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.policy import CompiledPolicy
from findings_router.domain.silences import match_from_pairs, new_silence
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.route import FindingsRouter, shadow_router
from findings_router.settings.load import load_policy
from findings_router.settings.schema import Policy, Rule
from findings_router_local.explain import explain_command
from findings_router_local.replay import run_replay
from findings_router_local.shadow_report import compare, parse_since, write_report
from tests.builders import CONFIG_DIR, NOW, asff, event, updated

TRIAL = {
    "name": "page-medium-guardduty-trial",
    "shadow": True,
    "match": {"severity": ["MEDIUM"], "product": ["GuardDuty"]},
    "action": "page",
    "urgency": "low",
}


def prod(**changes: Any) -> Policy:
    data = load_policy(CONFIG_DIR / "prod.yaml").model_dump(mode="json", exclude_none=True)
    data.update(changes)
    return Policy.model_validate(data)


def with_trial(**changes: Any) -> Policy:
    policy = prod(**changes)
    return policy.model_copy(update={"rules": [Rule.model_validate(TRIAL), *policy.rules]})


class World:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.table = InMemoryDedupStore()
        self.pagerduty = RecordingNotifier()
        self.securityhub = RecordingSecurityHub()

    def router(self) -> FindingsRouter:
        compiled = CompiledPolicy(self.policy)
        shadow = shadow_router(CompiledPolicy(self.policy, shadow=True), self.table) if self.policy.has_shadow else None
        return FindingsRouter(compiled, self.table, self.pagerduty, self.securityhub, shadow=shadow)

    def route(self, raw: dict[str, Any], now: dt.datetime = NOW) -> Any:
        return self.router().route(normalize_asff(raw), now)

    def keys(self, shadow: bool) -> list[str]:
        return [k for k in self.table.items if k.startswith(SHADOW_PREFIX) == shadow]


# ------------------------------------------------------------------------------------------ the policy's two views


def test_the_live_view_passes_shadow_rules_by_and_the_shadow_view_uses_them():
    policy = with_trial()
    medium = normalize_asff(asff(severity="MEDIUM"))
    live, shadow = CompiledPolicy(policy), CompiledPolicy(policy, shadow=True)
    assert (live.evaluate(medium, NOW).action, live.evaluate(medium, NOW).rule) == (
        "notify",
        "medium-guardduty-threats",
    )
    assert (shadow.evaluate(medium, NOW).action, shadow.evaluate(medium, NOW).rule) == ("page", TRIAL["name"])
    assert next(s.name for s in live.explain(medium, NOW).steps if s.kind == "rule") == "critical-cvss-any-label"
    assert policy.has_shadow and not prod().has_shadow and prod(mode="shadow").has_shadow


def test_keys_of_the_two_namespaces_pair_up():
    assert shadow_key("fr1-abc") == "fr1-shadow-abc" and live_key("fr1-shadow-abc") == "fr1-abc"
    assert live_key("fr1-abc") == "fr1-abc"


# ------------------------------------------------------------------------------------------ rules with shadow: true


def test_a_shadow_rule_is_decided_and_recorded_apart_and_only_live_sends(caplog: pytest.LogCaptureFixture):
    world = World(with_trial())
    with caplog.at_level(logging.INFO, logger="findings_router"):
        routed = world.route(asff(severity="MEDIUM"))
    assert routed.decision.outcome == "notify" and routed.deliveries == 1  # live: the live rules
    assert routed.shadow is not None and routed.shadow.decision.outcome == "page"  # shadow: the trial rule
    [live] = world.keys(shadow=False)
    [shadow] = world.keys(shadow=True)
    assert shadow == shadow_key(live)
    assert world.table.items[live].rule == "medium-guardduty-threats" and world.table.items[live].action == "notify"
    assert world.table.items[shadow].rule == TRIAL["name"] and world.table.items[shadow].action == "page"
    assert [n.key for n, _ in world.pagerduty.sent] == [live]  # the shadow's page went nowhere
    assert len(world.securityhub.updates) == 1  # the live notification's note only
    [line] = [r for r in caplog.records if r.getMessage() == "shadow decision"]
    assert line.shadow is True and line.decision == "page" and line.rule == TRIAL["name"]  # type: ignore[attr-defined]


def test_the_shadow_deduplicates_like_live():
    world = World(with_trial())
    raw = asff(severity="MEDIUM")
    world.route(raw)
    again = world.route(raw, NOW + dt.timedelta(minutes=5))
    assert again.decision.outcome == "duplicate" and again.shadow.decision.outcome == "duplicate"
    resolved = world.route(updated(raw, 10, RecordState="ARCHIVED"), NOW + dt.timedelta(minutes=10))
    assert resolved.decision.outcome == "resolve" and resolved.shadow.decision.outcome == "resolve"
    assert [n.kind for n, _ in world.pagerduty.sent] == ["trigger", "resolve"]  # live's only


def test_a_failing_shadow_never_fails_the_live_path(caplog: pytest.LogCaptureFixture):
    world = World(with_trial())

    class Broken(InMemoryDedupStore):
        def get_many(self, keys: Any) -> dict[str, Any]:
            if any(k.startswith(SHADOW_PREFIX) for k in keys):
                raise RuntimeError("throttled")
            return world.table.get_many(keys)

        def put(self, state: Any, expected_version: Any) -> bool:
            return world.table.put(state, expected_version)

    broken = Broken()
    router = FindingsRouter(
        CompiledPolicy(world.policy),
        world.table,
        world.pagerduty,
        shadow=shadow_router(CompiledPolicy(world.policy), broken),
    )
    routed = router.route(normalize_asff(asff(severity="HIGH")), NOW)
    assert routed.decision.outcome == "page" and routed.shadow is None
    assert any(r.getMessage() == "shadow decision failed" for r in caplog.records)


# ------------------------------------------------------------------------------------------ mode: shadow


def test_mode_shadow_sends_and_records_nothing_live():
    world = World(prod(mode="shadow"))
    routed = world.route(asff(severity="CRITICAL"))
    assert routed.decision.outcome == "drop" and routed.deliveries == 0
    assert routed.decision.reason.startswith("mode shadow: nothing is recorded or sent live (the shadow decision: page")
    assert routed.shadow is not None and routed.shadow.decision.outcome == "page"
    assert world.keys(shadow=False) == [] and len(world.keys(shadow=True)) == 1
    assert world.pagerduty.sent == [] and world.securityhub.updates == []


def test_switching_to_live_inherits_no_shadow_episode():
    world = World(prod(mode="shadow"))
    raw = asff(severity="CRITICAL")
    world.route(raw)
    world.policy = prod()  # deployed live
    routed = world.route(raw, NOW + dt.timedelta(hours=1))  # a re-send, not newer
    assert routed.decision.outcome == "page" and routed.deliveries == 1  # a new live episode: it pages
    assert world.table.items[routed.decision.key].episode == 1


# ------------------------------------------------------------------------------------------ the shadow-report


def test_the_report_counts_both_sides_per_rule_and_lists_the_differences():
    world = World(with_trial())
    world.route(asff(severity="MEDIUM", id="arn:aws:guardduty:eu-central-1:111122223333:detector/d/finding/m1"))
    world.route(asff(severity="HIGH", id="arn:aws:guardduty:eu-central-1:111122223333:detector/d/finding/h1"))
    world.route(asff(severity="LOW", Types=["Unusual"], id="arn:aws:guardduty:eu-central-1:111122223333:detector/d/l1"))
    report = compare("prod", world.table.items.values(), NOW - dt.timedelta(days=7))
    assert report.live == {"page": 1, "notify": 1} and report.shadow == {"page": 2, "notify": 0}
    rules = {r.rule: (r.live_page, r.live_notify, r.shadow_page, r.shadow_notify) for r in report.rules}
    assert rules == {
        "high-and-critical": (1, 0, 1, 0),
        "medium-guardduty-threats": (0, 1, 0, 0),
        TRIAL["name"]: (0, 0, 1, 0),
    }
    [difference] = report.differences
    assert difference.finding_id.endswith("/m1")
    assert (difference.live.action, difference.live.rule) == ("notify", "medium-guardduty-threats")
    assert (difference.shadow.action, difference.shadow.rule) == ("page", TRIAL["name"])
    # Outside the period: nothing.
    assert compare("prod", world.table.items.values(), NOW + dt.timedelta(hours=1)).differences == []
    out = io.StringIO()
    write_report(report, "csv", out)
    assert out.getvalue().splitlines()[1].startswith("MEDIUM,111122223333,arn:aws:guardduty")
    out = io.StringIO()
    write_report(report, "json", out)
    assert json.loads(out.getvalue())["differences"][0]["shadow"]["action"] == "page"
    out = io.StringIO()
    write_report(report, "table", out)
    assert "live paged 1, notified 1 · shadow would have paged 2, notified 0 · 1 finding(s) differ" in out.getvalue()


def test_the_report_counts_a_page_a_silence_held_back_as_the_page_the_policy_decided():
    from findings_router.adapters.silences import StaticSilences

    world = World(prod(mode="shadow"))
    world.route(asff(severity="HIGH"))
    held = new_silence(
        silence_id="s", environment="prod", match=None, all_findings=True, now=NOW, created_by="a",
        comment="INC-2: quiet", max_duration=dt.timedelta(days=1), duration=dt.timedelta(hours=1),
    )  # fmt: skip
    live = FindingsRouter(CompiledPolicy(prod()), world.table, world.pagerduty, silences=StaticSilences([held]))
    live.route(normalize_asff(asff(severity="HIGH", id=world.table.items[world.keys(True)[0]].finding_id)), NOW)
    report = compare("prod", world.table.items.values(), NOW - dt.timedelta(days=1))
    assert report.differences == [] and report.live["page"] == 1
    [row] = report.rules
    assert (row.live_page, row.shadow_page) == (1, 1)


def test_since_takes_durations_dates_and_times():
    assert parse_since("7d", NOW) == NOW - dt.timedelta(days=7)
    assert parse_since("2026-11-20", NOW) == dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="in the future"):
        parse_since("2027-01-01", NOW)
    with pytest.raises(ValueError, match="expected 7d"):
        parse_since("last week", NOW)


# ------------------------------------------------------------------------------------------ replay and explain


def _silences_file(tmp_path: Path, **match: str) -> Path:
    silence = new_silence(
        silence_id="maint",
        environment="prod",
        match=match_from_pairs([f"{k}={v}" for k, v in match.items()]) if match else None,
        all_findings=not match,
        now=NOW,
        created_by="alice",
        comment="CHG-9: patching",
        max_duration=dt.timedelta(days=7),
        starts_at=dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC),
        duration=dt.timedelta(hours=4),
    )
    path = tmp_path / "silences.json"
    path.write_text(json.dumps([silence.to_dict()]))
    return path


def test_replay_shows_what_a_silence_held_back(tmp_path: Path):
    from findings_router_local.cli import main

    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps(event(asff(severity="HIGH"), asff(severity="HIGH", account="111122224444"))))
    path = _silences_file(tmp_path, account="111122223333")
    out, err = io.StringIO(), io.StringIO()
    from findings_router.domain.silences import silences_from_json

    status = run_replay(prod(), [findings], "json", out, err, silences=silences_from_json(path.read_text()))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 0 and [r["decision"] for r in records] == ["silenced", "page"]
    assert "silenced by maint until 2026-11-21T13:00:00Z" in records[0]["reason"]
    assert main(["replay", "--env", "prod", "--config-dir", str(CONFIG_DIR), "--silences", str(tmp_path / "no.json"),
                 str(findings)]) == 2  # fmt: skip


def test_replay_shadow_decides_with_the_shadow_rules(tmp_path: Path):
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps(event(asff(severity="MEDIUM"))))
    out = io.StringIO()
    run_replay(with_trial(), [findings], "json", out, io.StringIO())
    assert json.loads(out.getvalue())["decision"] == "notify"
    out = io.StringIO()
    run_replay(with_trial(), [findings], "json", out, io.StringIO(), shadow=True)
    assert json.loads(out.getvalue())["decision"] == "page"
    out = io.StringIO()
    run_replay(prod(mode="shadow"), [findings], "json", out, io.StringIO())  # a shadow policy: what it records
    assert json.loads(out.getvalue())["decision"] == "notify"


def test_explain_says_silenced_by_and_shows_the_shadow_decision(tmp_path: Path):
    from findings_router.domain.silences import silences_from_json

    finding = tmp_path / "finding.json"
    finding.write_text(json.dumps(asff(severity="MEDIUM")))
    silences = silences_from_json(_silences_file(tmp_path, product="GuardDuty").read_text())
    out = io.StringIO()
    at = dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC)
    assert explain_command(with_trial(), [finding], out=out, err=io.StringIO(), now=at, silences=silences) == 0
    text = out.getvalue()
    assert (
        "silence maint (product=GuardDuty, active until 2026-11-21T13:00:00Z, by alice): MATCHED, holds it back" in text
    )
    assert "decision: NOTIFY — rule medium-guardduty-threats; silenced by maint until 2026-11-21T13:00:00Z" in text
    assert "sends: nothing (silenced by maint until 2026-11-21T13:00:00Z: nothing is sent now" in text
    assert "shadow decision (recorded apart, never sent): PAGE — rule page-medium-guardduty-trial" in text
    out = io.StringIO()
    explain_command(with_trial(), [finding], output="json", out=out, err=io.StringIO(), now=at, silences=silences)
    record = json.loads(out.getvalue())
    assert record["silenced_by"] == {"id": "maint", "until": "2026-11-21T13:00:00Z"} and record["sends"] == []
    assert record["silences"][0]["holds"] and record["shadow"]["rule"] == TRIAL["name"]
    # After its end it holds nothing.
    out = io.StringIO()
    explain_command(prod(), [finding], out=out, err=io.StringIO(), now=at + dt.timedelta(hours=4), silences=silences)
    assert "would match, but is expired" in out.getvalue() and "silenced by" not in out.getvalue()
