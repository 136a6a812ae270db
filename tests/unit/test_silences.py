"""Silences, the pure part: matchers (a policy `Match`, one implementation of matching), what a silence must have
(owner, comment, an end within the maximum), its states and expiry, its JSON form, the finding an episode keeps while
it owes a page, and the router's per-container cache of the silences in effect."""

from __future__ import annotations

import datetime as dt
import typing

import pytest

from findings_router.adapters.memory import InMemorySilenceStore
from findings_router.adapters.silences import CachedSilences, item_to_silence, silence_to_item
from findings_router.domain.normalize import normalize_asff, normalize_event
from findings_router.domain.policy import explain_match
from findings_router.domain.silences import (
    SCALAR_FIELDS,
    TAG_FIELD,
    CompiledSilences,
    Silence,
    SilenceError,
    expire,
    finding_from_snapshot,
    finding_snapshot,
    match_from_pairs,
    match_pairs,
    new_silence,
    parse_duration,
    parse_time,
    silences_from_json,
)
from findings_router.settings.schema import Match
from tests.builders import NOW, asff, load_fixture

WEEK = dt.timedelta(days=7)


def silence(
    silence_id: str = "s1",
    *,
    pairs: list[str] | None = None,
    all_findings: bool = False,
    hours: float = 2,
    start: dt.datetime = NOW,
    now: dt.datetime = NOW,
) -> Silence:
    return new_silence(
        silence_id=silence_id,
        environment="prod",
        match=match_from_pairs(pairs) if pairs else None,
        all_findings=all_findings,
        now=now,
        created_by="alice",
        comment="CHG-1234: security group rework",
        max_duration=WEEK,
        duration=dt.timedelta(hours=hours),
        starts_at=start,
    )


# ------------------------------------------------------------------------------------------ matchers


def test_matchers_are_a_rules_match_fields():
    match = match_from_pairs(
        ["account=111122223333", "account=111122224444", "min_severity=HIGH", "resource_tag.team=iot-*"]
    )
    assert match == Match(account=["111122223333", "111122224444"], min_severity="HIGH", resource_tag={"team": "iot-*"})
    assert match_from_pairs(match_pairs(match)) == match
    assert match_from_pairs(["exploit_available=true", "min_cvss=9"]) == Match(exploit_available=True, min_cvss=9.0)


def test_every_match_field_can_be_given_on_the_command_line():
    # A field added to `Match` must be classified here: one value, a map (resource_tag), or a list.
    for name, info in Match.model_fields.items():
        origin = typing.get_origin(info.annotation)
        args = typing.get_args(info.annotation)
        is_list = any(typing.get_origin(a) is list or "list[" in str(a) for a in args) or origin is list
        if name == TAG_FIELD:
            continue
        assert (name in SCALAR_FIELDS) != is_list, name


@pytest.mark.parametrize(
    ("pairs", "problem"),
    [
        (["account"], "expected FIELD=VALUE"),
        (["acount=111122223333"], "no match field 'acount'"),
        (["resource_tag=x"], "no match field 'resource_tag'"),
        (["account=12"], "account.0"),
        (["severity=SEVERE"], "severity.0"),
        (["min_severity=HIGH", "min_severity=LOW"], "give it once"),
    ],
)
def test_a_bad_matcher_is_one_line_naming_it(pairs, problem):
    with pytest.raises(SilenceError, match=problem) as raised:
        match_from_pairs(pairs)
    assert "\n" not in str(raised.value)


def test_a_silence_matches_with_the_policys_own_conditions():
    s = silence(pairs=["severity=HIGH", "account=111122223333"])
    compiled = CompiledSilences((s,))
    high = normalize_asff(asff(severity="HIGH"))
    other = normalize_asff(asff(severity="HIGH", account="111122224444"))
    assert compiled.matching(high, NOW) == s
    assert compiled.matching(other, NOW) is None
    [check] = compiled.explain(other, NOW)
    assert check.conditions == tuple(explain_match(s.match, other))  # the explanation is the decision's test
    assert not check.matched and check.state == "active" and not check.silences


def test_of_several_silences_the_one_ending_last_holds_it():
    short, long = silence("short", all_findings=True, hours=1), silence("long", pairs=["severity=HIGH"], hours=5)
    finding = normalize_asff(asff(severity="HIGH"))
    assert CompiledSilences((short, long)).matching(finding, NOW) == long
    assert CompiledSilences((short, long)).matching(finding, NOW + dt.timedelta(hours=6)) is None


def test_a_custom_action_is_an_explicit_request_never_silenced():
    event = load_fixture("asff_custom_action_two_findings.json")
    finding = normalize_event(event).findings[0]
    assert finding.custom_action is not None
    assert CompiledSilences((silence(all_findings=True),)).matching(finding, NOW) is None


# ------------------------------------------------------------------------------------------ what a silence must have


def test_silencing_everything_is_deliberate():
    with pytest.raises(SilenceError, match="--all"):
        new_silence(
            silence_id="x", environment="prod", match=None, all_findings=False, now=NOW, created_by="a",
            comment="why not", max_duration=WEEK, duration=dt.timedelta(hours=1),
        )  # fmt: skip
    with pytest.raises(SilenceError, match="no --match"):
        new_silence(
            silence_id="x", environment="prod", match=Match(severity=["LOW"]), all_findings=True, now=NOW,
            created_by="a", comment="why not", max_duration=WEEK, duration=dt.timedelta(hours=1),
        )  # fmt: skip
    assert silence(all_findings=True).matchers == "all findings"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"comment": "  "}, "needs a comment"),
        ({"created_by": ""}, "needs an owner"),
        ({"duration": None}, "give its end"),
        ({"duration": dt.timedelta(days=8)}, "longer than silences.max_duration_hours"),
        ({"duration": None, "until": NOW - dt.timedelta(hours=1)}, "before it starts"),
        ({"duration": dt.timedelta(hours=1), "starts_at": NOW - dt.timedelta(hours=3)}, "in the past"),
    ],
)
def test_no_silence_without_an_owner_a_comment_and_an_end(changes, problem):
    arguments = {
        "silence_id": "x",
        "environment": "prod",
        "match": None,
        "all_findings": True,
        "now": NOW,
        "created_by": "alice",
        "comment": "INC-1: stop paging now",
        "max_duration": WEEK,
        "duration": dt.timedelta(hours=2),
        **changes,
    }
    with pytest.raises(SilenceError, match=problem):
        new_silence(**arguments)


def test_durations_and_times():
    assert parse_duration("1h30m") == dt.timedelta(minutes=90)
    assert parse_duration("2d") == dt.timedelta(days=2)
    assert parse_time("2026-11-21T18:00Z") == dt.datetime(2026, 11, 21, 18, tzinfo=dt.UTC)
    assert parse_time("2026-11-21T19:00+01:00") == dt.datetime(2026, 11, 21, 18, tzinfo=dt.UTC)
    for bad in ("", "4", "h", "0m", "-1h"):
        with pytest.raises(SilenceError):
            parse_duration(bad)
    with pytest.raises(SilenceError, match="not a time"):
        parse_time("tomorrow")


# ------------------------------------------------------------------------------------------ states and expiry


def test_states_and_an_early_expiry():
    s = silence(all_findings=True, start=NOW + dt.timedelta(hours=1), hours=2)
    assert [s.state(NOW), s.state(NOW + dt.timedelta(hours=1)), s.state(NOW + dt.timedelta(hours=3))] == [
        "pending",
        "active",
        "expired",
    ]
    later = NOW + dt.timedelta(hours=1, minutes=30)
    ended = expire(s, later, "bob")
    assert ended.ends_at == later and ended.expired_by == "bob" and ended.version == s.version + 1
    assert ended.state(later) == "expired" and not ended.is_active(later)
    with pytest.raises(SilenceError, match="already ended"):
        expire(ended, later, "bob")
    # A silence still to come, expired, never starts.
    never = expire(s, NOW, "bob")
    assert never.starts_at == never.ends_at == NOW + dt.timedelta(hours=1) and not never.is_active(never.starts_at)


def test_the_json_form_round_trips_and_is_what_replay_and_explain_read():
    s = expire(silence(pairs=["account=111122223333", "resource_tag.team=iot-*"]), NOW + dt.timedelta(hours=1), "b")
    data = s.to_dict(NOW)
    assert data["state"] == "active" and data["matchers"] == {
        "account": ["111122223333"],
        "resource_tag": {"team": "iot-*"},
    }
    import json

    [back] = silences_from_json(json.dumps([data]))
    assert back == Silence.from_dict(data) and back.match == s.match and back.ends_at == s.ends_at
    assert silences_from_json(json.dumps({"silences": [data]})) == [back]
    with pytest.raises(SilenceError, match="JSON array"):
        silences_from_json('"x"')
    with pytest.raises(SilenceError, match="without 'comment'"):
        silences_from_json(json.dumps([{k: v for k, v in data.items() if k != "comment"}]))


def test_a_silence_item_expires_through_ttl_after_its_retention():
    s = silence(all_findings=True, hours=4)
    item = silence_to_item(s, retention_days=30)
    assert item["pk"] == {"S": "fr1-silence-prod-s1"}
    assert int(item["expires_at"]["N"]) == int(s.ends_at.timestamp()) + 30 * 86400
    assert item["index_pk"] == {"S": "silence"} and item["index_sk"] == {"S": s.until}  # listed by its end
    assert item_to_silence(item) == s
    # Expired early: its TTL follows the new end.
    ended = expire(s, NOW + dt.timedelta(hours=1), "bob")
    assert int(silence_to_item(ended, 30)["expires_at"]["N"]) == int(ended.ends_at.timestamp()) + 30 * 86400


# ------------------------------------------------------------------------------------------ the finding kept


@pytest.mark.parametrize(
    "fixture",
    ["asff_inspector_log4j.json", "asff_guardduty_ssh_bruteforce.json", "ocsf_inspector_vulnerability.json"],
)
def test_the_finding_an_owing_episode_keeps_is_the_finding(fixture):
    finding = normalize_event(load_fixture(fixture)).findings[0]
    kept = finding_from_snapshot(finding_snapshot(finding))
    assert kept == finding  # every field the policy matches and the page shows (not the raw JSON)


# ------------------------------------------------------------------------------------------ the router's cache


def test_silences_are_read_at_most_every_half_minute_and_a_failed_read_keeps_the_last():
    store = InMemorySilenceStore()
    tick = [0.0]
    cached = CachedSilences(store, clock=lambda: tick[0])
    finding = normalize_asff(asff())
    assert cached.current(NOW).matching(finding, NOW) is None
    store.add(silence(all_findings=True))
    tick[0] = 29.0
    assert cached.current(NOW).matching(finding, NOW) is None  # not yet: read 29 s ago
    tick[0] = 30.0
    assert cached.current(NOW).matching(finding, NOW) is not None  # within the half minute
    assert store.reads == 2

    def broken(now: dt.datetime) -> list[Silence]:
        raise RuntimeError("throttled")

    store.not_ended = broken  # type: ignore[method-assign]
    tick[0] = 61.0
    assert cached.current(NOW).matching(finding, NOW) is not None  # fail open on what was read, not on nothing


def test_an_ended_silence_is_not_read_and_stops_applying_at_its_end():
    store = InMemorySilenceStore([silence(all_findings=True, hours=1)])
    assert store.not_ended(NOW + dt.timedelta(hours=1)) == []
    compiled = CompiledSilences(tuple(store.not_ended(NOW)))
    finding = normalize_asff(asff())
    assert compiled.matching(finding, NOW + dt.timedelta(minutes=59)) is not None
    assert compiled.matching(finding, NOW + dt.timedelta(hours=1)) is None
