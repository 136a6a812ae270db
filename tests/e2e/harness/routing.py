"""The router's side of the deployed stacks: what it handled (its "batch routed" log lines) and what reached each
target's stand-in about findings (PagerDuty, JSM, webhooks: harness/targets.py); sending events; what the Security
Hub stub was asked to write back."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from findings_router.domain.keys import meta_dedup_key
from tests.e2e.harness.environments import Environment
from tests.e2e.harness.localstack import ENDPOINT
from tests.e2e.harness.observe import alarms, log_records, wait_for
from tests.e2e.harness.session import Deployment
from tests.e2e.harness.targets import Delivery, received

WAVE_TIMEOUT_SECONDS = 90  # a wave: EventBridge, SQS, the mapping's poll, a cold start of each router, PagerDuty
OUTCOMES = ("page", "notify", "drop", "duplicate", "resolve")


@dataclass
class Seen:
    """What one environment's deployed stack did with the events sent so far."""

    records: int = 0  # SQS messages the router handled ("batch routed" lines)
    outcomes: Counter[str] = field(default_factory=Counter)
    # Target -> what reached its stand-in about findings, in order (pagerduty: the policy's `notifier`).
    sent: dict[str, list[Delivery]] = field(default_factory=dict)

    @property
    def deliveries(self) -> int:
        return sum(len(got) for got in self.sent.values())


def seen(deployment: Deployment, env: Environment) -> Seen:
    out = Seen()
    for record in log_records(deployment.aws, env.names.log_group):
        if record.get("message") == "batch routed":
            out.records += int(record.get("records", 0))
            out.outcomes.update({k: int(v) for k, v in record.items() if k in OUTCOMES})
    # The meta-alert function sends with the same routing key (unless the policy gives it its own): its events, one
    # dedup key per alarm, are test_4's.
    out.sent = received(env, deployment.pagerduty, meta_alert_keys(deployment, env))
    return out


def meta_alert_keys(deployment: Deployment, env: Environment) -> set[str]:
    return {meta_dedup_key(a["AlarmArn"]) for a in alarms(deployment.aws, env.names.alarm_prefix).values()}


def put_events(deployment: Deployment, entries: list[dict[str, Any]]) -> None:
    events = deployment.aws.client("events")
    for start in range(0, len(entries), 10):
        response = events.put_events(Entries=entries[start : start + 10])
        assert response["FailedEntryCount"] == 0, response["Entries"]


def securityhub_updates() -> list[dict[str, Any]]:
    """What the Security Hub stub (tests/e2e/localstack_plugins) was asked to write back."""
    with urllib.request.urlopen(f"{ENDPOINT}/_securityhub_stub/updates", timeout=10) as response:
        return list(json.loads(response.read())["updates"])


def written_back(updates: list[dict[str, Any]], environment: str) -> set[tuple[str, str]]:
    """(finding id, note) of what the environment's router wrote back. Its notes name the environment ("… (prod):
    …"); the findings' ids alone do not always tell (a Macie finding's id is a bare hash, the same in every
    account)."""
    out = set()
    for update in updates:
        note = (update.get("Note") or {}).get("Text") or update.get("Comment") or ""
        if f"({environment})" not in note:
            continue
        for ref in update.get("FindingIdentifiers") or []:
            out.add((ref.get("Id") or ref.get("FindingInfoUid"), note))
    return out


def wait_routed(deployment: Deployment, what: str, wanted: dict[str, tuple[int, int]]) -> None:
    """Until each environment's router handled at least that many messages and its targets' stand-ins accepted at
    least that many deliveries (all targets together)."""

    def progress() -> dict[str, tuple[int, int]]:
        return {
            name: (s.records, s.deliveries)
            for name, s in ((n, seen(deployment, deployment.environments[n])) for n in wanted)
        }

    wait_for(
        f"{what} to be routed: (messages handled, deliveries to its targets) per environment {wanted}",
        progress,
        lambda got: all(got[n][0] >= m and got[n][1] >= e for n, (m, e) in wanted.items()),
        WAVE_TIMEOUT_SECONDS,
    )
