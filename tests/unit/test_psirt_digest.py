"""The scheduled PSIRT digest: its period, its report, its one low-urgency notification per CVE list, the previous
digest resolved, retries that change nothing, and Inspector queried per region through the real request shapes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from findings_router.adapters.reports import InMemoryReports
from findings_router.bootstrap import RuntimeEnv, build_psirt_digest
from findings_router.domain.model import Severity
from findings_router.notify.recording import RecordingNotifier
from findings_router.psirt.model import AffectedResource
from findings_router.service.psirt_digest import (
    REPORT_PREFIX,
    DigestQuery,
    digest_key,
    digest_period,
    digest_query,
    inspector_fetch,
    report_key,
    run_digest,
    severities_from,
)
from findings_router.settings.schema import Policy
from tests.infra.conftest import dev_policy

NOW = dt.datetime(2026, 11, 27, 7, 3, 12, tzinfo=dt.UTC)
SCHEDULED = "2026-11-27T07:00:00Z"


def _policy(**digest: Any) -> Policy:
    settings = {"enabled": True, "notify": ["pagerduty"], **digest}
    return dev_policy("dev", psirt_digest=settings)


def _row(cve: str, resource: str, *, cvss: float = 10.0, exploit: bool = True, fixed: str | None = "2.17.1") -> Any:
    return AffectedResource(
        cve=cve,
        account="111122223333",
        region="eu-central-1",
        resource_type="AWS_ECR_CONTAINER_IMAGE",
        resource_id=resource,
        resource_label=resource.rsplit("/", 1)[-1],
        package="org.apache.logging.log4j:log4j-core",
        installed_version="2.14.1",
        fixed_version=fixed,
        cvss=cvss,
        cvss_version="3.1",
        cvss_source="NVD",
        inspector_score=cvss,
        epss=0.944,
        exploit_available=exploit,
        fix_available="YES" if fixed else "NO",
        severity="CRITICAL",
        first_observed="2026-11-27T01:00:00Z",
        last_observed="2026-11-27T06:00:00Z",
        status="ACTIVE",
        sources=frozenset({"inspector"}),
        finding_ids=(f"arn:aws:inspector2:eu-central-1:111122223333:finding/{abs(hash(resource))}",),
    )


LOG4SHELL = [
    _row("CVE-2021-44228", "arn:aws:ecr:eu-central-1:111122223333:repository/api/sha256:aa"),
    _row("CVE-2021-44228", "arn:aws:ecr:eu-central-1:111122223333:repository/ingest/sha256:bb", fixed=None),
    _row("CVE-2021-45046", "arn:aws:ecr:eu-central-1:111122223333:repository/api/sha256:aa", cvss=9.0),
]


class _Fetch:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows
        self.queries: list[DigestQuery] = []

    def __call__(self, query: DigestQuery) -> list[Any]:
        self.queries.append(query)
        return self.rows


def _run(policy: Policy, rows: list[Any], **kwargs: Any) -> tuple[Any, _Fetch, InMemoryReports, RecordingNotifier]:
    fetch, reports, notifier = _Fetch(rows), InMemoryReports("psirt-reports"), RecordingNotifier()
    options = {"now": NOW, "scheduled_time": SCHEDULED, "default_region": "eu-central-1", **kwargs}
    run = run_digest(policy, fetch, reports=reports, notifier=notifier, **options)
    return run, fetch, reports, notifier


def test_the_period_ends_when_eventbridge_scheduled_the_run_not_when_it_ran():
    start, end = digest_period(SCHEDULED, NOW, 24)
    assert end == dt.datetime(2026, 11, 27, 7, 0, tzinfo=dt.UTC)
    assert end - start == dt.timedelta(hours=24)
    # No usable time (a manual invocation): up to now, to the minute.
    assert digest_period(None, NOW, 6)[1] == dt.datetime(2026, 11, 27, 7, 3, tzinfo=dt.UTC)
    assert digest_period("yesterday", NOW, 6)[1] == dt.datetime(2026, 11, 27, 7, 3, tzinfo=dt.UTC)


def test_one_line_per_cve_in_the_report_and_one_low_urgency_notification():
    run, fetch, reports, notifier = _run(_policy(), LOG4SHELL)
    (query,) = fetch.queries
    assert (query.severities, query.include_exploitable) == (("CRITICAL",), True)
    assert query.accounts == tuple(_policy().accounts)
    assert query.regions == ("eu-central-1",)
    assert (run.cves, run.resources) == (2, 3)

    key = report_key("dev", run.end)
    assert run.report == f"s3://psirt-reports/{key}"
    lines = reports.objects[key].splitlines()
    assert lines[0].startswith("cve,")
    assert [line.split(",")[0] for line in lines[1:]] == ["CVE-2021-44228", "CVE-2021-45046"]

    trigger, resolve = notifier.sent
    notification, context = trigger
    assert (notification.kind, notification.urgency, notification.severity) == (
        "trigger",
        "low",
        Severity.INFORMATIONAL,
    )
    assert context.targets == ("pagerduty",)
    assert notification.meta is not None and notification.meta.kind == "digest"
    assert "2 CVEs" in notification.meta.reason and "CVE-2021-44228" in notification.meta.reason
    assert f"Full report: s3://psirt-reports/{key}" in notification.meta.description
    event = notifier.events[0]
    assert event["payload"]["severity"] == "info"
    assert "CVE-2021-44228" in event["payload"]["summary"]
    # The previous digest is replaced: its incident resolved.
    assert resolve[0].kind == "resolve"
    assert resolve[0].key == digest_key("dev", run.end - dt.timedelta(hours=24))


def test_a_retried_run_writes_the_same_report_and_sends_the_same_key():
    policy = _policy()
    first, _, reports, notifier = _run(policy, LOG4SHELL)
    again = run_digest(
        policy,
        _Fetch(LOG4SHELL),
        reports=reports,
        notifier=notifier,
        now=NOW + dt.timedelta(minutes=4),
        scheduled_time=SCHEDULED,
        default_region="eu-central-1",
    )
    assert again.report == first.report and len(reports.objects) == 1
    assert again.notification_key == first.notification_key
    triggers = [n.key for n, _ in notifier.sent if n.kind == "trigger"]
    assert triggers == [first.notification_key, first.notification_key]


def test_a_quiet_period_sends_nothing_new_but_still_reports_and_retires_the_previous_digest():
    run, _, reports, notifier = _run(_policy(), [])
    assert run.cves == 0 and run.notification_key is None
    assert reports.objects[report_key("dev", run.end)].splitlines() == [
        reports.objects[report_key("dev", run.end)].splitlines()[0]
    ]
    assert [n.kind for n, _ in notifier.sent] == ["resolve"]


def test_report_only_digest_notifies_nobody():
    run, _, reports, notifier = _run(_policy(notify=None), LOG4SHELL)
    assert run.notification_key is None and not notifier.sent
    assert reports.objects


def test_fixed_rows_are_no_new_cves():
    fixed = [*LOG4SHELL[:1]]
    fixed = [
        AffectedResource(
            **{
                **fixed[0].to_dict(),
                "sources": fixed[0].sources,
                "finding_ids": fixed[0].finding_ids,
                "change": "fixed",
            }
        )
    ]
    run, _, _, notifier = _run(_policy(), fixed)
    assert run.cves == 0
    assert [n.kind for n, _ in notifier.sent] == ["resolve"]


def test_what_to_ask_inspector_follows_the_policy():
    assert severities_from(Severity.HIGH) == ("HIGH", "CRITICAL")
    start, end = digest_period(SCHEDULED, NOW, 24)
    every_account = dev_policy(
        "dev", accounts=["*"], psirt_digest={"enabled": True, "regions": ["eu-west-1", "us-east-1"]}
    )
    query = digest_query(every_account, start, end, "eu-central-1")
    assert query.accounts is None
    assert query.regions == ("eu-west-1", "us-east-1")


def test_report_keys_are_per_environment_and_day_under_the_one_prefix_the_function_may_write():
    assert report_key("prod", NOW).startswith(f"{REPORT_PREFIX}/prod/2026/11/27/")


def test_inspector_is_asked_in_every_region_with_the_real_request_shapes():
    clients: dict[str, Any] = {}
    stubbers = []
    for region in ("eu-west-1", "us-east-1"):
        client = boto3.client(
            "inspector2",
            region_name=region,
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        stubber = Stubber(client)
        # One query on severity and one on a known exploit per region; the same finding from both is kept once.
        finding = _inspector_finding(region)
        stubber.add_response("list_findings", {"findings": [finding]}, {"filterCriteria": ANY, "maxResults": ANY})
        stubber.add_response("list_findings", {"findings": [finding]}, {"filterCriteria": ANY, "maxResults": ANY})
        stubber.activate()
        clients[region] = client
        stubbers.append(stubber)
    start, end = digest_period(SCHEDULED, NOW, 24)
    query = DigestQuery(start, end, ("CRITICAL",), True, ("111122223333",), ("eu-west-1", "us-east-1"))
    rows = inspector_fetch(clients.__getitem__)(query)
    assert sorted(r.region for r in rows) == ["eu-west-1", "us-east-1"]
    assert {r.cve for r in rows} == {"CVE-2021-44228"}
    for stubber in stubbers:
        stubber.assert_no_pending_responses()


def _inspector_finding(region: str) -> dict[str, Any]:
    return {
        "findingArn": f"arn:aws:inspector2:{region}:111122223333:finding/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "awsAccountId": "111122223333",
        "type": "PACKAGE_VULNERABILITY",
        "description": "Apache Log4j2 JNDI features do not protect against attacker controlled LDAP endpoints.",
        "title": "CVE-2021-44228 - org.apache.logging.log4j:log4j-core",
        "remediation": {"recommendation": {"text": "Upgrade log4j-core to 2.17.1"}},
        "severity": "CRITICAL",
        "firstObservedAt": dt.datetime(2026, 11, 27, 1, tzinfo=dt.UTC),
        "lastObservedAt": dt.datetime(2026, 11, 27, 6, tzinfo=dt.UTC),
        "status": "ACTIVE",
        "resources": [
            {
                "type": "AWS_LAMBDA_FUNCTION",
                "id": f"arn:aws:lambda:{region}:111122223333:function:ingest",
                "region": region,
                "partition": "aws",
            }
        ],
        "packageVulnerabilityDetails": {
            "vulnerabilityId": "CVE-2021-44228",
            "source": "NVD",
            "cvss": [
                {
                    "baseScore": 10.0,
                    "scoringVector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
                    "version": "3.1",
                    "source": "NVD",
                }
            ],
            "vulnerablePackages": [
                {
                    "name": "org.apache.logging.log4j:log4j-core",
                    "version": "2.14.1",
                    "fixedInVersion": "2.17.1",
                    "packageManager": "JAR",
                }
            ],
        },
        "fixAvailable": "YES",
        "exploitAvailable": "YES",
        "epss": {"score": 0.94358},
        "inspectorScore": 10.0,
    }


def test_without_its_bucket_the_function_says_what_is_missing():
    policy = _policy()
    env = RuntimeEnv(policy_file="unused", region="eu-central-1")
    with pytest.raises(ValueError, match="REPORT_BUCKET"):
        build_psirt_digest(env, policy=policy, fetch=_Fetch([]))


def _digest_notification() -> tuple[Any, Any]:
    _, _, _, notifier = _run(_policy(), LOG4SHELL)
    return notifier.sent[0]


def test_every_on_call_service_gets_the_digest_within_its_published_contract():
    from findings_router.notify.jsm.alerts import build_request
    from findings_router.notify.webhook.chat import slack_body, teams_body
    from findings_router.notify.webhook.payload import build_body
    from findings_router_local.fakes.jsm.contract import create_errors
    from findings_router_local.fakes.webhook.contract import validate_body, validate_slack, validate_teams

    notification, context = _digest_notification()
    path, alert = build_request(notification, context)
    assert path.endswith("/alerts") and not create_errors(alert)
    assert alert["priority"] == "P5" and alert["alias"] == notification.key
    assert any(line.startswith("CVE-2021-44228") for line in alert["description"].splitlines())

    body = build_body(notification, context, NOW.timestamp())
    assert not validate_body(body)
    assert body["type"] == "meta.digest"
    assert "CVE-2021-45046" in body["data"]["meta"]["description"]

    slack = slack_body(notification, context)
    assert not validate_slack(slack) and "CVE-2021-45046" in slack["text"]
    assert not validate_teams(teams_body(notification, context))


def test_the_scheduled_function_runs_one_digest_and_says_what_it_did(capsys):
    from findings_router.bootstrap import PsirtDigestRuntime
    from findings_router.entrypoints import psirt_digest
    from findings_router_local.aws_local import LambdaContext

    fetch, reports, notifier = _Fetch(LOG4SHELL), InMemoryReports(), RecordingNotifier()
    psirt_digest.install(PsirtDigestRuntime(_policy(), fetch, reports, notifier, "eu-central-1"))
    try:
        result = psirt_digest.lambda_handler(
            {"source": "aws.events", "detail-type": "Scheduled Event", "time": SCHEDULED}, LambdaContext()
        )
    finally:
        psirt_digest.install(None)
    assert result["cves"] == 2 and result["notified"] is True
    assert result["period_end"].startswith("2026-11-27T07:00")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (done,) = [r for r in records if r.get("message") == "psirt digest done"]
    assert (done["cves"], done["affected"], done["report"]) == (2, 3, result["report"])
    assert any(r.get("PsirtDigestCves") == [2.0] for r in records)
