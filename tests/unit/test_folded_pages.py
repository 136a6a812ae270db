"""What a folded vulnerability episode's page looks like at every on-call target: the affected resources known when
it is sent (capped, "and N more"), the command that lists them all, and what the vulnerability's facts say; and that
every body still meets its target's contract."""

from __future__ import annotations

import json

import pytest

from findings_router.domain.model import Severity
from findings_router.domain.normalize import normalize_asff
from findings_router.domain.notifications import FoldedResources, Notification, NotifyContext, resolve
from findings_router.notify.jsm.alerts import build_request
from findings_router.notify.pagerduty.events import build_event, event_bytes, fit
from findings_router.notify.webhook.chat import slack_body, teams_body
from findings_router.notify.webhook.payload import MAX_BODY_BYTES, build_body, encode
from findings_router_local.fakes.jsm import validate_request
from findings_router_local.fakes.pagerduty import validate_event
from findings_router_local.fakes.webhook import validate_body, validate_slack, validate_teams
from tests.builders import inspector

KEY = "R0UT1NGKEY0000000000000000000001"
COMMAND = "findings-router cve CVE-2021-44228 --env prod"


def _folded(count: int, listed: int | None = None, open_findings: int = 3) -> FoldedResources:
    listed = count if listed is None else listed
    return FoldedResources(
        vulnerability="CVE-2021-44228",
        fold="cve_account",
        resources=tuple(
            f"arn:aws:ecr:eu-central-1:111122223333:repository/svc-{i:03d}/sha256:{'a' * 64}" for i in range(listed)
        ),
        count=count,
        open_findings=open_findings,
        findings_capped=False,
        command=COMMAND,
    )


def _context(folded: FoldedResources | None) -> NotifyContext:
    finding = normalize_asff(inspector(image="svc-000", digest="a" * 64))
    return NotifyContext("prod", finding, "fr1-abc", "rule high-and-critical", 1, (), folded)


PAGE = Notification("trigger", "fr1-abc", Severity.CRITICAL, "high")


def test_the_pagerduty_page_lists_ten_resources_then_the_command():
    body = build_event(PAGE, _context(_folded(27, listed=25)), KEY)
    assert validate_event(body) == []
    details = body["payload"]["custom_details"]
    assert details["affected_resource_count"] == 27
    assert len(details["affected_resources"]) == 11
    assert details["affected_resources"][-1] == f"and 17 more: {COMMAND}"
    assert details["all_affected_resources"] == COMMAND
    assert details["vulnerability"] == (
        "CVE-2021-44228: exploit available, fix available: YES, EPSS 0.94358; one episode per CVE and account, "
        "3 findings open"
    )
    assert body["payload"]["summary"].endswith(" and 26 more resources in 111122223333/eu-central-1")


def test_one_affected_resource_reads_like_an_unfolded_page():
    body = build_event(PAGE, _context(_folded(1)), KEY)
    plain = build_event(PAGE, _context(None), KEY)
    assert body["payload"]["summary"] == plain["payload"]["summary"]
    assert body["payload"]["custom_details"]["affected_resources"] == [_folded(1).resources[0]]
    assert "vulnerability" not in plain["payload"]["custom_details"]


def test_a_capped_episode_says_its_open_findings_are_at_least_that():
    capped = FoldedResources("CVE-1", "cve_resource", ("r",), 1, 200, True, "findings-router cve CVE-1 --env prod")
    details = build_event(PAGE, _context(capped), KEY)["payload"]["custom_details"]
    assert details["vulnerability"].endswith("; one episode per CVE and resource, 200+ findings open")


def test_an_oversized_pagerduty_page_keeps_the_count_and_the_command():
    body = build_event(PAGE, _context(_folded(5000, listed=25)), KEY)
    assert event_bytes(body) < 512 * 1024
    body["payload"]["custom_details"]["description"] = "x" * (600 * 1024)
    fitted = fit(body)
    details = fitted["payload"]["custom_details"]
    assert event_bytes(fitted) <= 512 * 1024
    assert (details["affected_resource_count"], details["all_affected_resources"]) == (5000, COMMAND)


def test_the_jsm_alert_lists_twenty_resources_and_the_command():
    path, body = build_request(PAGE, _context(_folded(27, listed=25)))
    auth = {"Authorization": "GenieKey k"}
    assert validate_request("POST", f"https://api.atlassian.com{path}", auth, body, {"k"}) == []
    lines = body["description"].splitlines()
    start = lines.index(
        "Affected resources of CVE-2021-44228 (27; one episode per CVE and account; 3 finding(s) open):"
    )
    assert lines[start - 1] == "Vulnerability CVE-2021-44228: exploit available, fix available: YES, EPSS 0.94358"
    assert lines[start + 21] == f"  … and 7 more: {COMMAND}"
    assert lines[start + 22] == f"All affected resources: {COMMAND}"
    assert body["details"]["affected_resource_count"] == "27"
    assert body["details"]["affected_resources"].count("; ") == 4
    assert body["details"]["affected_more"] == f"and 22 more: {COMMAND}"
    assert "vulnerability:CVE-2021-44228" in body["tags"]


def test_the_webhook_carries_data_affected_and_the_receivers_contract_accepts_it():
    body = build_body(PAGE, _context(_folded(27, listed=25)), 1_764_000_000)
    assert validate_body(json.loads(encode(body))) == []
    affected = body["data"]["affected"]
    assert (affected["count"], affected["more"], len(affected["resources"])) == (27, 7, 20)
    assert affected["command"] == COMMAND
    assert (affected["exploit_available"], affected["fix_available"], affected["max_epss"]) == (True, "YES", 0.94358)
    assert "and 26 more resources" in body["data"]["summary"]
    # Not on resolves, and not for keys that do not fold.
    resolved = build_body(resolve("fr1-abc", Severity.CRITICAL), _context(_folded(27)), 1_764_000_000)
    assert "affected" not in resolved["data"]
    assert "affected" not in build_body(PAGE, _context(None), 1_764_000_000)["data"]


def test_an_oversized_webhook_keeps_five_resources_and_counts_the_rest():
    folded = _folded(27, listed=25)
    long = FoldedResources(
        folded.vulnerability,
        folded.fold,
        tuple(r + "x" * 900 for r in folded.resources),
        folded.count,
        folded.open_findings,
        folded.findings_capped,
        folded.command,
    )
    body = build_body(PAGE, _context(long), 1_764_000_000)
    assert len(encode(body)) <= MAX_BODY_BYTES
    assert validate_body(json.loads(encode(body))) == []
    affected = body["data"]["affected"]
    assert (len(affected["resources"]), affected["more"], affected["count"]) == (5, 22, 27)


@pytest.mark.parametrize("render", [slack_body, teams_body])
def test_chat_messages_name_the_count_and_the_command(render):
    body = render(PAGE, _context(_folded(27, listed=25)))
    text = json.dumps(body)
    assert "CVE-2021-44228: 27 affected resource(s)" in text
    assert "and 24 more" in text
    assert COMMAND in text
    assert (validate_slack(body) if render is slack_body else validate_teams(body)) == []
