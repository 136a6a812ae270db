"""A finding imported into Security Hub (`BatchImportFindings`, as a partner product or the coming canary does) is
routed for real: the Security Hub stub emits `Security Hub Findings - Imported` onto the default bus, the deployed
rule and router take it, on-call is told once (at each target the policy routes it to: PagerDuty; in staging JSM and
the SOAR's webhook), the router writes back (NOTIFIED and a note), and the echo Security Hub emits for that
write-back is routed as a duplicate: no second page, no loop.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from tests.e2e.harness.environments import environments
from tests.e2e.harness.findings import FIXTURES, delivered, rehome
from tests.e2e.harness.observe import wait_for
from tests.e2e.harness.routing import OUTCOMES, WAVE_TIMEOUT_SECONDS, seen
from tests.e2e.harness.session import Deployment
from tests.e2e.harness.targets import as_counters, differences, recording_replayer, since

ENVIRONMENTS = sorted(environments())
FIXTURE = "asff_inspector_log4j.json"  # CRITICAL: every shipped policy pages or notifies it


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_imported_finding_pages_once_and_its_echo_is_a_duplicate(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    aws = deployment.aws
    account = env.policy.accounts[0]
    finding = rehome(json.loads((FIXTURES / FIXTURE).read_text()), account)["detail"]["findings"][0]
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    finding.update(Id=f"{finding['Id']}/e2e-imported", UpdatedAt=now, CreatedAt=now)
    # A CVE of its own: prod and stg fold Inspector findings into one episode per CVE and account
    # (dedup.fold_vulnerabilities), and test_2 already paged this fixture's log4shell there.
    finding["Vulnerabilities"][0]["Id"] = f"CVE-2026-{dt.datetime.now(dt.UTC):%H%M%S%f}"
    finding.pop("Note", None)
    finding.pop("ProcessedAt", None)

    # What must happen: the import's event, then the echo of the write-back (a note, NOTIFIED for a page).
    replay, recording = recording_replayer(env)
    event = {"source": "aws.securityhub", "detail-type": "Security Hub Findings - Imported", "time": now}
    imported = {**event, "resources": [finding["Id"]], "detail": {"findings": [finding]}}
    first = list(replay.route(replay.normalize_document("import", delivered(imported, aws.account, aws.region))))
    outcome = first[0].decision.outcome
    assert outcome in ("page", "notify"), f"{name}: the policy says {outcome} for {FIXTURE}; pick a finding it pages"
    echo_finding = {**finding, "Note": {"Text": "…", "UpdatedBy": "findings-router"}}
    if outcome == "page":
        echo_finding["Workflow"] = {"Status": "NOTIFIED"}
    echo = {**imported, "detail": {"findings": [echo_finding]}}
    second = list(replay.route(replay.normalize_document("echo", delivered(echo, aws.account, aws.region))))
    expected_outcomes = Counter(r.decision.outcome for r in first + second)
    expected_sent = as_counters(recording.sent())

    before = seen(deployment, env)
    response = aws.client("securityhub").batch_import_findings(Findings=[finding])
    assert (response["SuccessCount"], response["FailedCount"]) == (1, 0), response
    after = wait_for(
        f"{name}: the router to handle the imported finding and the echo of its write-back",
        lambda: seen(deployment, env),
        lambda s: s.records >= before.records + 2,
        WAVE_TIMEOUT_SECONDS,
        show=lambda s: f"{s.records - before.records} messages handled, outcomes {s.outcomes - before.outcomes}",
    )
    assert after.records == before.records + 2
    assert Counter({k: v for k, v in (after.outcomes - before.outcomes).items() if k in OUTCOMES}) == expected_outcomes
    got = since(after.sent, before.sent)
    assert got == expected_sent, differences(name, got, expected_sent)
