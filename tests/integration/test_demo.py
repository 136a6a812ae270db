"""`findings-router demo` runs end to end: moto + local receiver + the real handler, per environment."""

from __future__ import annotations

import io
import re

import pytest

from findings_router_local.cli import main
from findings_router_local.demo import load_corpus, run_demo
from findings_router_local.fakes.pagerduty import PagerDutyReceiver
from tests.builders import CONFIG_DIR

pytestmark = pytest.mark.timeout(120)


def _comparison(text: str) -> dict[str, list[int]]:
    table = text.split("all environments, same findings:")[1]
    rows = {}
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", line)
        if m:
            rows[m.group(1)] = [int(x) for x in m.groups()[1:]]
    return rows


def test_corpus_is_big_and_varied_enough():
    events = load_corpus()
    findings = [f for e in events for f in e.get("detail", {}).get("findings", [])]
    products = {f.get("ProductName") or f.get("metadata", {}).get("product", {}).get("name") for f in findings}
    assert len(findings) >= 30
    assert len(products - {None}) >= 5


@pytest.fixture(scope="module")
def demo_output() -> str:
    out = io.StringIO()
    assert run_demo(CONFIG_DIR, out=out) == 0
    return out.getvalue()


def test_demo_routes_the_corpus_under_every_policy(demo_output):
    text = demo_output
    rows = _comparison(text)
    assert set(rows) == {"dev", "stg", "prod"}
    # columns: page, notify, resolve, duplicate, drop, dead-lettered, incidents
    assert rows["dev"][0] == 0  # dev never pages
    assert rows["prod"][0] > rows["stg"][0] > 0
    for env in rows:
        assert rows[env][5] == 1  # the malformed event, dead-lettered
    assert rows["prod"][2] == 3  # PASSED control, archived GuardDuty, closed OCSF finding
    assert "ESCALATED HIGH→CRITICAL" in text
    assert "missing required field" in text
    # The acknowledgement loop (prod: signed webhooks to the Function URL; stg: JSM's webhook with its token).
    prod = text.split("\nprod (")[1]
    assert re.search(r"acknowledge #\d+ by Ada Lovelace.*signed webhook: 200 acknowledged", prod)
    assert re.search(r"resolve #\d+ by Grace Hopper.*signed webhook: 200 resolved", prod)
    assert re.search(r"resolve #\d+ by mallory, FORGED webhook: 401 invalid signature", prod)
    assert re.search(r"\d+ echo events routed again → 0 new pages", prod)
    stg = text.split("\nstg (")[1].split("\nprod (")[0]
    # stg pages through Jira Service Management and a signed webhook (routing per rule), and JSM acknowledges back.
    assert re.search(r"acknowledge JSM #\d+ by ada.lovelace@example.com, JSM webhook: 200 acknowledged", stg)
    assert re.search(r"close JSM #\d+ by grace.hopper@example.com, JSM webhook: 200 resolved", stg)
    assert re.search(r"close JSM #\d+ by mallory, JSM webhook, no token: 401 invalid token", stg)
    assert re.search(r"JSM +\d+ alerts \(1 acknowledged, \d+ closed\), e\.g\. #\d+ P1 ", stg)
    assert re.search(r"webhook +soar: \d+ signed deliveries, each verified by the receiver", stg)
    # The field: every environment ignores what is not for it.
    for env in ("dev (", "stg (", "prod ("):
        block = text.split("\n" + env)[1].split("\n\n")[0]
        assert (
            "ignored    another tool's custom action · a sample finding · account 999988887777 · an older copy" in block
        )


def test_the_default_output_tells_the_story_in_one_screen(demo_output):
    lines = demo_output.splitlines()
    assert len(lines) <= 102  # about 78, and the PSIRT section's 22
    page = demo_output.split("one page as the on-call engineer sees it in PagerDuty (prod):")[1]
    assert "CVE-2021-44228" in page and "severity critical (high urgency)" in page
    assert "link: This finding in Security Hub: https://" in page
    assert "decision: rule critical-cvss-any-label" in page
    assert "what next:" in demo_output and "findings-router explain" in demo_output


def test_production_shows_a_silence_round_and_a_shadow_trial(demo_output):
    prod = demo_output.split("\nprod (")[1].split("\n\n")[0]
    # stop paging now: one page held back (tracked), an incident paged before still resolved, the sweep pages it once
    # the silence is expired; the day's counts (compared across environments) are the same as without the round.
    assert re.search(
        r"silence +`silence add --all --duration 2h`: 1 page held back \(tracked\), an earlier incident still "
        r"resolved; `silence expire` → the sweep paged it: #\d+$",
        prod,
        re.MULTILINE,
    )
    assert re.search(
        r"shadow +trial rule page-medium-guardduty-trial \(shadow: true\): [1-9]\d* finding\(s\) would", prod
    )
    assert "nothing sent" in prod


def test_the_demo_ends_with_the_psirt_question_answered_by_the_cve_command(demo_output):
    psirt = demo_output.split("PSIRT at 3 a.m.")[1].split("what next:")[0]
    assert "$ findings-router cve CVE-2021-44228 --env prod --regions eu-central-1" in psirt
    assert len(psirt.splitlines()) <= 23
    rows = [line for line in psirt.splitlines() if re.match(r"^1111222(23333|24444) ", line)]
    assert len(rows) == 7  # prod's affected resources in eu-central-1: images, a Lambda layer, Linux and Windows
    assert any("via KB5008212" in row for row in rows) and any("no fix" in row for row in rows)
    assert "confirmed by Security Hub 7" in psirt
    assert "Regions not asked for: us-east-1 (2)" in psirt  # the aggregator's cross-check
    assert "findings-router cve CVE-… --since 24h" in demo_output.split("what next:")[1]


def test_verbose_prints_every_table_and_who_really_resolved():
    out = io.StringIO()
    assert run_demo(CONFIG_DIR, out=out, verbose=True) == 0
    text = out.getvalue()
    prod = text.split("\nprod: ")[1]
    assert re.search(r"acknowledge #\d+ +Ada Lovelace.*signed webhook +200 +acknowledged", prod)
    assert "Acknowledged by Ada Lovelace" in prod
    stg = text.split("\nstg: ")[1].split("\nprod: ")[0]
    # stg sets RESOLVED in Security Hub on an operator's resolve; its echo must not rewrite who resolved it.
    state = stg.split("dedup state (DynamoDB)")[1].split("\n\n")[0]
    assert re.search(r"resolved +1 +CRITICAL +- +operator", state)


def test_demo_sends_to_any_events_url(capsys):
    with PagerDutyReceiver() as external:
        url = external.url
        assert main(["demo", "--config-dir", str(CONFIG_DIR), "--events-url", url]) == 0
        assert external.notifications > 0
        assert external.rejected == []
    assert url in capsys.readouterr().out


def test_a_flaky_endpoint_shows_retries_and_still_delivers_every_incident_once(demo_output, capsys):
    capsys.readouterr()
    out = io.StringIO()
    assert run_demo(CONFIG_DIR, out=out, flaky=True) == 0
    flaky = out.getvalue()
    assert re.search(r"the on-call endpoint failed \d+ time\(s\): retried with backoff", flaky)
    # A count, not a line per retry (they went to stderr, 70 of them).
    err = capsys.readouterr().err
    assert "delivery retry" not in err and "delivery retry" not in flaky
    assert len(flaky.splitlines()) <= 105
    steady, shaky = _comparison(demo_output), _comparison(flaky)
    for env in steady:
        page, notify, resolve, _, _, dead, incidents = steady[env]
        assert (shaky[env][0], shaky[env][1], shaky[env][2], shaky[env][5], shaky[env][6]) == (
            page,
            notify,
            resolve,
            dead,
            incidents,
        )


def test_demo_sends_a_target_to_any_url(capsys):
    """`--target-url NAME=URL`: the policy's JSM or webhook notifier to an endpoint elsewhere (here a receiver the
    test runs), as `--events-url` does for PagerDuty."""
    from findings_router_local.environment import LOCAL_WEBHOOK_SECRET
    from findings_router_local.fakes.webhook import WebhookReceiver

    with WebhookReceiver(LOCAL_WEBHOOK_SECRET) as soar:
        assert main(["demo", "--config-dir", str(CONFIG_DIR), "--target-url", f"soar={soar.url}"]) == 0
        assert len(soar.accepted) > 0 and soar.rejected == []
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--target-url", "soar"])
    assert exited.value.code == 2
    assert "expected NAME=http(s)://" in capsys.readouterr().err
