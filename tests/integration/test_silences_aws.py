"""Silences and shadow decisions against moto's server: the `silence` commands write conditional, TTL'd items found
through the state table's time index; the real router handler holds a silenced finding back; the real sweep handler
pages it once the silence is expired; and `shadow-report` compares the two namespaces of the table."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from findings_router.adapters.silences import DynamoOwedIndex, DynamoSilenceStore
from findings_router.adapters.state_table import TIME_INDEX
from findings_router.bootstrap import RuntimeEnv, build_silence_sweep
from findings_router.entrypoints import route_findings as router_handler
from findings_router.entrypoints import sweep_silences
from findings_router_local.cli import main
from findings_router_local.environment import LocalEnvironment, shipped_policy_data
from tests.builders import CONFIG_DIR, FakeLambdaContext, asff, event, sqs_event

TRIAL = {
    "name": "page-medium-guardduty-trial",
    "shadow": True,
    "match": {"severity": ["MEDIUM"], "product": ["GuardDuty"]},
    "action": "page",
    "urgency": "low",
}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """prod's policy with a trial rule in shadow, as a config directory the CLI reads."""
    data = shipped_policy_data(CONFIG_DIR / "prod.yaml")
    data["rules"] = [TRIAL, *data["rules"]]
    directory = tmp_path / "config"
    directory.mkdir()
    (directory / "prod.yaml").write_text(yaml.safe_dump(data))
    return directory


@pytest.fixture
def prod(moto_endpoint: str, tmp_path: Path, config: Path) -> Iterator[LocalEnvironment]:
    """prod (with the trial rule) on moto with its stack's own names: the CLI finds its table by the policy."""
    with LocalEnvironment(
        config / "prod.yaml",
        endpoint=moto_endpoint,
        reset=True,
        workdir=tmp_path,
        fast_retries=True,
        accounts=["*"],
        acknowledgements={"mode": "none"},
        router_adapters={"pacer": None},
    ) as local:
        local.new_router_runtime()
        yield local


def cli(local: LocalEnvironment, config: Path, *args: str) -> list[str]:
    return [*args, "--env", "prod", "--config-dir", str(config), "--region", "eu-central-1", "--endpoint-url",
            local.endpoint]  # fmt: skip


def printed(capsys: pytest.CaptureFixture[str]) -> str:
    """What the command printed (stdout also holds the handlers' JSON log lines)."""
    return "\n".join(line for line in capsys.readouterr().out.splitlines() if not line.startswith('{"'))


def route(*findings: dict[str, Any]) -> dict[str, Any]:
    return router_handler.lambda_handler(sqs_event(event(*findings)), FakeLambdaContext())


def test_silence_commands_write_audited_conditional_items_listed_through_the_time_index(
    prod: LocalEnvironment, config: Path, capsys: pytest.CaptureFixture[str]
):
    code = main(cli(prod, config, "silence", "add", "--match", "account=111122223333", "--match",
                    "control_id=EC2.19", "--duration", "4h", "--comment", "CHG-1234: rework", "--author", "alice"))  # fmt: skip
    out = printed(capsys)
    assert code == 0
    assert out.startswith("silence ") and " added in prod by alice: control_id=EC2.19 account=111122223333 from " in out
    silence_id = out.split()[1]
    [item] = [i for i in prod.dynamodb.scan(TableName=prod.table)["Items"] if i["pk"]["S"].startswith("fr1-silence-")]
    assert item["pk"]["S"] == f"fr1-silence-prod-{silence_id}"
    silence = json.loads(item["silence"]["S"])
    ends = dt.datetime.fromisoformat(silence["ends_at"].replace("Z", "+00:00"))
    assert int(item["expires_at"]["N"]) == int(ends.timestamp()) + 30 * 86400  # TTL: its end + retention
    assert main(cli(prod, config, "silence", "list", "--output", "json")) == 0
    [listed] = json.loads(printed(capsys))
    assert listed["id"] == silence_id and listed["state"] == "active" and listed["created_by"] == "alice"

    assert main(cli(prod, config, "silence", "expire", silence_id, "--author", "bob")) == 0
    assert f"silence {silence_id} expired in prod by bob at " in printed(capsys)
    store = DynamoSilenceStore(prod.table, prod.dynamodb, "prod")
    assert store.not_ended(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == []  # the index by end says so
    assert main(cli(prod, config, "silence", "list")) == 0
    table = printed(capsys)
    assert silence_id in table and "expired" in table and "alice (expired by bob)" in table
    # Expiring it again, an unknown id, no comment, too long: one line each, exit status 2.
    assert main(cli(prod, config, "silence", "expire", silence_id)) == 2
    assert "already ended" in capsys.readouterr().err
    assert main(cli(prod, config, "silence", "expire", "nope")) == 2
    assert "no silence 'nope' in prod" in capsys.readouterr().err
    assert main(cli(prod, config, "silence", "add", "--all", "--duration", "8d", "--comment", "too long")) == 2
    assert "silences.max_duration_hours" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(cli(prod, config, "silence", "add", "--all", "--duration", "1h"))  # no --comment: argparse says so


def test_a_silenced_finding_is_held_in_dynamodb_and_the_sweep_handler_pages_it_after_the_expiry(
    prod: LocalEnvironment, config: Path, capsys: pytest.CaptureFixture[str]
):
    receiver = prod.receiver
    assert receiver is not None
    paged_before = asff(severity="HIGH")
    route(paged_before)
    assert main(cli(prod, config, "silence", "add", "--all", "--duration", "2h", "--comment", "INC-7: stop")) == 0
    silence_id = printed(capsys).split()[1]
    prod.new_router_runtime()  # a new container (in AWS: within a minute)
    held = asff(severity="CRITICAL")
    archived = {**paged_before, "UpdatedAt": "2026-11-21T11:00:00.000Z", "RecordState": "ARCHIVED"}
    route(held, archived)
    assert [i.is_open for i in receiver.all_incidents] == [False]  # no new page; the resolve still went out
    owed = DynamoOwedIndex(prod.table, prod.dynamodb).owed()
    [entry] = owed
    assert entry.silenced_by == silence_id
    state = prod.dynamodb.get_item(TableName=prod.table, Key={"pk": {"S": entry.key}})["Item"]
    assert state["silenced"]["L"] == [{"S": entry.key}] and state["incident_keys"]["L"] == []

    env = RuntimeEnv.from_environ()
    sweep_silences.install(build_silence_sweep(env, securityhub=prod.securityhub))
    try:
        assert sweep_silences.lambda_handler({}, FakeLambdaContext())["paged"] == 0  # still silenced
        assert main(cli(prod, config, "silence", "expire", silence_id)) == 0
        result = sweep_silences.lambda_handler({}, FakeLambdaContext())
    finally:
        sweep_silences.install(None)
    assert result["paged"] == 1 and result["failed"] == 0
    [later] = [i for i in receiver.all_incidents if i.dedup_key == entry.key]
    assert later.is_open and later.severity == "critical"
    assert DynamoOwedIndex(prod.table, prod.dynamodb).owed() == []  # sparse: gone once delivered


def test_the_time_index_exists_as_the_stack_defines_it(prod: LocalEnvironment):
    table = prod.dynamodb.describe_table(TableName=prod.table)["Table"]
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == TIME_INDEX and index["Projection"]["ProjectionType"] == "INCLUDE"


def test_shadow_report_compares_the_namespaces(
    prod: LocalEnvironment, config: Path, capsys: pytest.CaptureFixture[str]
):
    route(asff(severity="MEDIUM"), asff(severity="HIGH"))
    assert prod.receiver is not None and len(prod.receiver.all_incidents) == 2  # live: one notify, one page
    code = main(cli(prod, config, "shadow-report", "--since", "7d"))
    out = printed(capsys)
    assert code == 1  # findings differ
    assert "live paged 1, notified 1 · shadow would have paged 2, notified 0 · 1 finding(s) differ" in out
    assert "notify (medium-guardduty-threats)" in out and "page (page-medium-guardduty-trial)" in out
    assert main(cli(prod, config, "shadow-report", "--output", "json")) == 1
    report = json.loads(printed(capsys))
    assert [d["shadow"]["rule"] for d in report["differences"]] == [TRIAL["name"]]
