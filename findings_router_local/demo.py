"""`findings-router demo`: the real router, end to end, on a laptop.

Starts moto's server and a local PagerDuty (Events v2) receiver on 127.0.0.1, creates in moto the table, queues and
secret each environment's stack would create (from infra/definitions.py, the same definitions the CDK constructs
use), then feeds a bundled day of Security Hub events through SQS to the real router handler, invoked as Lambda's
event source mapping invokes it. Prints, per environment policy, what happened and what the on-call receiver saw.
Everything it starts is stopped before it returns.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.adapters.state_table import item_to_state
from findings_router.domain.acks import sign
from findings_router.domain.episodes import DedupState
from findings_router.domain.keys import KEY_PREFIX
from findings_router.settings.load import load_policy_dir, policy_path
from findings_router.settings.schema import Policy
from findings_router_local.aws_local import LambdaContext, SqsEventSource, local_aws_environment, moto_server
from findings_router_local.function_url import FunctionUrlServer
from findings_router_local.pagerduty_receiver import (
    Fault,
    Incident,
    PagerDutyReceiver,
    incident_webhook,
    render_incidents,
)
from findings_router_local.tables import clip, render_table
from infra.contract import (
    function_environment,
    resource_names,
    state_table_definition,
    state_table_ttl_specification,
)
from infra.derived import queue_settings

CORPUS = Path(__file__).parent / "corpus" / "iot-platform-day.jsonl"
DEMO_SIGNING_SECRET = "demo-webhook-signing-secret"  # noqa: S105  (a local stand-in, never a real secret)
OUTCOMES = ("page", "notify", "resolve", "duplicate", "drop")


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def demo_routing_key(environment: str) -> str:
    """A per-environment stand-in integration key (32 alphanumerics, as PagerDuty's are)."""
    return ("demo" + "".join(c for c in environment if c.isalnum())).ljust(32, "0")[:32]


class _CapturedLogs:
    """Collects the router's JSON log lines (what CloudWatch Logs would hold) instead of printing them."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def write(self, text: str) -> int:
        return self.buffer.write(text)

    def flush(self) -> None:
        pass

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.buffer.getvalue().splitlines() if line.startswith("{")]


@dataclass
class EnvironmentRun:
    policy: Policy
    events: int
    findings: int
    invocations: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[Any] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    delivered_events: int = 0
    seconds: float = 0.0
    operator: list[tuple[str, str, str, Any, str]] = field(default_factory=list)
    states: list[DedupState] = field(default_factory=list)
    securityhub: RecordingSecurityHub | None = None
    echoes: int = 0
    echo_pages: int = 0
    scenarios: list[FieldScenario] = field(default_factory=list)

    @property
    def routed(self) -> list[dict[str, Any]]:
        return [r for r in self.logs if r.get("message") == "finding routed"]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.logs if r.get("level") == "ERROR"]

    @property
    def retries(self) -> int:
        return sum(int(r.get("retries", 0)) for r in self.logs if r.get("message") == "delivery retries")

    @property
    def returned_to_queue(self) -> int:
        return sum(1 for r in self.failures if r.get("reason") == "delivery failed")

    def counts(self) -> Counter[str]:
        return Counter(r["decision"] for r in self.routed)


@contextlib.contextmanager
def _router_logs_captured(captured: _CapturedLogs) -> Iterator[None]:
    from findings_router.entrypoints import route_findings as handler

    # The entry point's Powertools handler, and the one library modules (service/, notify/, adapters/) log through.
    library = logging.getLogger("findings_router")
    handlers = {id(h): h for h in (handler.logger.registered_handler, *library.handlers) if hasattr(h, "setStream")}
    originals = [(h, h.setStream(captured)) for h in handlers.values()]
    level = handler.logger.log_level
    handler.logger.setLevel("DEBUG")  # the demo shows every decision, duplicates included
    try:
        # Powertools prints EMF metrics to stdout at the end of every invocation; keep them out of the demo.
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for h, original in originals:
            h.setStream(original)
        handler.logger.setLevel(level)


CORPUS_ACCOUNT = "111122223333"  # the platform account the bundled day was recorded in
SANDBOX_ACCOUNT = "999988887777"  # belongs to no environment: its findings page nobody
FOREIGN_ACTION_ID = "RemediateWithASR"  # another tool's custom action (e.g. Automated Security Response)


def rehome(corpus: list[dict[str, Any]], policy: Policy) -> list[dict[str, Any]]:
    """The bundled day, as it happens in this environment's own (first) account."""
    if policy.all_accounts or policy.accounts[0] == CORPUS_ACCOUNT:
        return corpus
    return [json.loads(json.dumps(ev).replace(CORPUS_ACCOUNT, policy.accounts[0])) for ev in corpus]


@dataclass(frozen=True)
class FieldScenario:
    """What real organizations send that the day's corpus does not: delivered in order, one wave after another."""

    name: str
    expectation: str
    waves: tuple[tuple[dict[str, Any], ...], ...]
    finding_id: str
    ignored_as: str | None = None  # the one-screen summary's phrase, when the scenario should wake nobody


def field_scenarios(policy: Policy, corpus: list[dict[str, Any]]) -> list[FieldScenario]:
    base = next(
        f
        for ev in corpus
        if ev.get("detail-type") == "Security Hub Findings - Imported"
        for f in ev["detail"]["findings"]
        if f.get("ProductName") == "GuardDuty" and f.get("RecordState") == "ACTIVE"
    )
    account = CORPUS_ACCOUNT if policy.all_accounts else policy.accounts[0]

    def finding(name: str, severity: str, *, in_account: str = account, **changes: Any) -> dict[str, Any]:
        f = json.loads(json.dumps(base).replace(str(base["AwsAccountId"]), in_account))
        f["Id"] = f["Id"].rsplit("/", 1)[0] + f"/field-{name}"
        f.update(Severity={"Label": severity}, Workflow={"Status": "NEW"}, RecordState="ACTIVE", **changes)
        return f

    def later(f: dict[str, Any], minutes: int, **changes: Any) -> dict[str, Any]:
        import datetime as dt

        at = dt.datetime.fromisoformat(f["UpdatedAt"].replace("Z", "+00:00")) + dt.timedelta(minutes=minutes)
        return {**f, "UpdatedAt": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), **changes}

    def action(f: dict[str, Any], action_id: str, name: str) -> dict[str, Any]:
        arn = f"arn:aws:securityhub:{f['Region']}:{account}:action/custom/{action_id}"
        ev = _imported_event(f)
        ev.update({"detail-type": "Security Hub Findings - Custom Action", "resources": [arn]})
        ev["detail"].update(actionName=name, actionDescription=f"{name} (custom action)")
        return ev

    foreign = finding("foreign-action", "CRITICAL")
    ours = finding("our-action", "LOW")
    sample = finding(
        "sample",
        "HIGH",
        Sample=True,
        ProductFields={**base.get("ProductFields", {}), "aws/guardduty/service/additionalInfo/sample": "true"},
    )
    sandbox = finding("sandbox-account", "CRITICAL", in_account=SANDBOX_ACCOUNT)
    fixed = finding("resolved-first", "HIGH")
    archived = finding("archived-then-stale-copy", "CRITICAL")
    scenarios = [
        FieldScenario(
            "another tool's custom action",
            "ignored: only this environment's own action reaches on-call",
            ((action(foreign, FOREIGN_ACTION_ID, "Remediate with ASR"),),),
            foreign["Id"],
            "another tool's custom action",
        ),
        FieldScenario(
            "a sample finding (create-sample-findings)",
            "ignored unless a rule asks for samples",
            ((_imported_event(sample),),),
            sample["Id"],
            "a sample finding",
        ),
        FieldScenario(
            f"a CRITICAL finding of account {SANDBOX_ACCOUNT}",
            "dropped: outside this environment's accounts",
            ((_imported_event(sandbox),),),
            sandbox["Id"],
            f"account {SANDBOX_ACCOUNT}",
        ),
        FieldScenario(
            "RESOLVED by a person, then the older active copy",
            "pages nobody: the resolution is remembered",
            ((_imported_event(later(fixed, 0, Workflow={"Status": "RESOLVED"})),), (_imported_event(fixed),)),
            fixed["Id"],
            "an older copy after a resolution",
        ),
        FieldScenario(
            "paged, archived, then a stale copy redelivered",
            "one page, one resolve, no second episode",
            (
                (_imported_event(archived),),
                (_imported_event(later(archived, 5, RecordState="ARCHIVED")),),
                (_imported_event(archived),),
            ),
            archived["Id"],
        ),
    ]
    if policy.custom_action is not None:
        scenarios.insert(
            1,
            FieldScenario(
                f"this environment's own custom action ({policy.custom_action.id}) on a LOW finding",
                f"{policy.custom_action.mode}: an operator asked for it",
                ((action(ours, policy.custom_action.id, policy.custom_action.id),),),
                ours["Id"],
            ),
        )
    return scenarios


def run_environment(
    policy: Policy,
    config_dir: Path,
    events_url: str,
    corpus: list[dict[str, Any]],
    endpoint: str,
    receiver: PagerDutyReceiver | None,
    workdir: Path,
) -> EnvironmentRun:
    """Create this environment's resources in moto, route the corpus, then let an operator act on incidents."""
    names = resource_names(policy)
    # The queue URL is known once moto made the queue (create_resources sets it); the key is listed here so the
    # variable is restored afterwards.
    env = function_environment(policy, names.state_table, dead_letter_queue_url="")
    env["POLICY_FILE"] = str(_local_policy_file(config_dir, policy, workdir))
    env["EVENTS_URL"] = events_url
    with local_aws_environment(endpoint, env):
        demo = EnvironmentDemo(policy, rehome(corpus, policy))
        demo.create_resources()
        captured = _CapturedLogs()
        with _router_logs_captured(captured):
            demo.route_corpus()
            demo.route_field_scenarios()
            if receiver is not None:
                demo.take_incidents(receiver)
                demo.operator_loop(receiver)
                demo.security_hub_echoes(receiver)
        demo.finish(captured)
        return demo.run


def _local_policy_file(config_dir: Path, policy: Policy, workdir: Path) -> Path:
    """The environment's policy as deployed, but unpaced: the local receiver has no PagerDuty rate limit."""
    import yaml

    data = yaml.safe_load(policy_path(config_dir, policy.environment).read_text())
    data["pacing"] = {"events_per_minute": 10_000}
    path = workdir / f"{policy.environment}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class EnvironmentDemo:
    """One environment's stack, in moto, driven as Lambda and PagerDuty would drive it."""

    def __init__(self, policy: Policy, corpus: list[dict[str, Any]]) -> None:
        import boto3

        self.policy = policy
        self.corpus = corpus
        self.names = resource_names(policy)
        self.settings = queue_settings(policy)
        # Typed as Any: the stubs' literal key types do not accept the plain dicts infra.definitions returns.
        self.dynamodb: Any = boto3.client("dynamodb")
        self.sqs: Any = boto3.client("sqs")
        self.secrets: Any = boto3.client("secretsmanager")
        # moto does not implement BatchUpdateFindings: the write-back lands in the recording twin.
        self.securityhub = RecordingSecurityHub()
        findings = sum(len(e.get("detail", {}).get("findings", [])) for e in corpus if isinstance(e, dict))
        self.run = EnvironmentRun(policy, len(corpus), findings)
        self.queue_url = self.dlq_url = ""

    def create_resources(self) -> None:
        names, settings = self.names, self.settings
        self.dynamodb.create_table(**state_table_definition(names.state_table))
        self.dynamodb.update_time_to_live(
            TableName=names.state_table, TimeToLiveSpecification=state_table_ttl_specification()
        )
        self.dlq_url = self.sqs.create_queue(
            QueueName=names.dead_letter_queue, Attributes=settings.dead_letter_queue_attributes()
        )["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes = settings.queue_attributes(dlq_arn)
        attributes["VisibilityTimeout"] = "0"  # locally, a failed message is retried at once, not minutes later
        self.queue_url = self.sqs.create_queue(QueueName=names.queue, Attributes=attributes)["QueueUrl"]
        os.environ["DEAD_LETTER_QUEUE_URL"] = self.dlq_url  # as the stack sets it
        self.secrets.create_secret(
            Name=names.routing_key_secret,
            SecretString=json.dumps({"routing_key": demo_routing_key(self.policy.environment)}),
        )
        if self.policy.acknowledgements.signing_secret:
            self.secrets.create_secret(
                Name=self.policy.acknowledgements.signing_secret, SecretString=DEMO_SIGNING_SECRET
            )

    def _runtimes(self) -> None:
        """Fresh handler runtimes for this environment, with Security Hub as the recording twin."""
        from aws_lambda_powertools.utilities import parameters

        from findings_router.bootstrap import RuntimeEnv, build_ack_receiver, build_router
        from findings_router.entrypoints import receive_acks as ack_handler
        from findings_router.entrypoints import route_findings as handler

        parameters.clear_caches()
        env = RuntimeEnv.from_environ()
        handler.install(build_router(env, securityhub=self.securityhub))
        if self.policy.acknowledgements.mode != "none":
            ack_handler.install(build_ack_receiver(env, securityhub=self.securityhub))

    def _context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.names.function,
            memory_limit_in_mb=self.policy.function.memory_mb,
            timeout_seconds=self.policy.function.timeout_seconds,
            clock=time.monotonic,
            started=time.monotonic(),
        )

    def deliver(self, events: list[dict[str, Any]]) -> None:
        """Through SQS to the router, in waves of one batch, draining between waves."""
        from findings_router.entrypoints import route_findings as handler

        source = SqsEventSource(
            self.sqs,
            self.queue_url,
            handler.lambda_handler,
            batch_size=self.settings.batch_size,
            context_factory=self._context,
        )
        for start in range(0, len(events), self.settings.batch_size):
            wave = events[start : start + self.settings.batch_size]
            self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": json.dumps(ev)} for i, ev in enumerate(wave)],
            )
            self.run.invocations += source.drain().invocations

    def take_incidents(self, receiver: PagerDutyReceiver) -> None:
        """The incidents the on-call receiver holds for this environment's routing key, so far."""
        key = demo_routing_key(self.policy.environment)
        self.run.incidents = [i for i in receiver.all_incidents if i.routing_key == key]

    def route_corpus(self) -> None:
        self._runtimes()
        started = time.monotonic()
        # Security Hub sends these over a day; waves keep a later update of a finding (escalation, PASSED,
        # archived) after the earlier one, as it would be.
        self.deliver(self.corpus)
        self.run.seconds = time.monotonic() - started

    def route_field_scenarios(self) -> None:
        """Each scenario's waves in order (SQS has none; the demo makes the order the point)."""
        self.run.scenarios = field_scenarios(self.policy, self.corpus)
        for scenario in self.run.scenarios:
            for wave in scenario.waves:
                self.deliver(list(wave))

    def operator_loop(self, receiver: PagerDutyReceiver) -> None:
        """The on-call operator acknowledges one incident and resolves another in the PagerDuty app; PagerDuty
        sends the webhooks to the ack receiver. Someone also tries a forged one."""
        mode = self.policy.acknowledgements.mode
        # Open pages whose problem has a single incident (no escalation sibling), for a clear before/after.
        bases = [i.dedup_key.split("~")[0] for i in self.run.incidents]
        pages = [
            i
            for i in self.run.incidents
            if i.is_open and i.severity in ("critical", "error") and bases.count(i.dedup_key.split("~")[0]) == 1
        ]
        if mode == "none" or len(pages) < 2:
            return
        from findings_router.entrypoints import receive_acks as ack_handler

        actions = [(pages[0], "acknowledge", "Ada Lovelace (L2 on call)"), (pages[1], "resolve", "Grace Hopper (L2)")]
        if mode == "function_url":
            with FunctionUrlServer(ack_handler.function_url_handler, self.names.ack_function) as server:
                url = server.url + ack_handler.WEBHOOK_PATH
                for incident, action, agent in actions:
                    body = receiver.operator_action(incident, action, agent)
                    status, outcome = _post_signed(url, body, DEMO_SIGNING_SECRET)
                    self.run.operator.append((f"{action} #{incident.number}", agent, "signed webhook", status, outcome))
                forged = incident_webhook(pages[-1], "incident.resolved", "mallory")  # not from PagerDuty
                status, outcome = _post_signed(url, forged, "guessed-secret")
                self.run.operator.append((f"resolve #{pages[-1].number}", "mallory", "FORGED webhook", status, outcome))
        else:  # PagerDuty's EventBridge integration: V2 messages on the partner event bus
            for incident, action, agent in actions:
                body = receiver.operator_action(incident, action, agent)
                result = ack_handler.eventbridge_handler(_as_partner_event(body, self.policy), self._context())
                self.run.operator.append(
                    (f"{action} #{incident.number}", agent, "EventBridge partner bus", "-", str(result.get("outcome")))
                )

    def security_hub_echoes(self, receiver: PagerDutyReceiver) -> None:
        """Every write-back makes Security Hub re-emit the finding: feed those echoes back through the router."""
        by_id = {f["Id"]: f for e in self.corpus for f in e.get("detail", {}).get("findings", []) if "Id" in f}
        echoes = []
        for update in self.securityhub.updates:
            for ref in update.refs:
                if ref.id in by_id:
                    finding = dict(by_id[ref.id])
                    finding["Note"] = {"Text": update.note, "UpdatedBy": "findings-router"}
                    if update.workflow:
                        finding["Workflow"] = {"Status": update.workflow}
                    echoes.append(_imported_event(finding))
        before = len(self.run.incidents)
        self.deliver(echoes)
        self.take_incidents(receiver)
        self.run.echoes = len(echoes)
        self.run.echo_pages = len(self.run.incidents) - before

    def finish(self, captured: _CapturedLogs) -> None:
        from findings_router.entrypoints import receive_acks as ack_handler
        from findings_router.entrypoints import route_findings as handler

        handler.reset_runtime()
        ack_handler.reset_runtime()
        self.run.logs = captured.records()
        self.run.dead_letters = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        items = self.dynamodb.scan(TableName=self.names.state_table)["Items"]
        # Dedup items only: storm counters ("…#count") and idempotency records share the table.
        self.run.states = [
            item_to_state(i) for i in items if i["pk"]["S"].startswith(KEY_PREFIX) and "#" not in i["pk"]["S"]
        ]
        self.run.securityhub = self.securityhub


def _post_signed(url: str, body: dict[str, Any], secret: str) -> tuple[int, str]:
    import requests

    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-PagerDuty-Signature": sign(raw, secret.encode()),
        "X-Webhook-Id": body["event"]["id"],
        "User-Agent": "PagerDuty-Webhook/V3.0",
    }
    response = requests.post(url, data=raw, headers=headers, timeout=10)
    outcome = response.json().get("outcome") or response.json().get("error", "")
    return response.status_code, str(outcome)


def _as_partner_event(webhook: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """The same action as PagerDuty's EventBridge integration delivers it (a V2 message)."""
    event = webhook["event"]
    data = event["data"]
    v2_name = {"incident.acknowledged": "incident.acknowledge", "incident.resolved": "incident.resolve"}[
        event["event_type"]
    ]
    return {
        "version": "0",
        "id": event["id"],
        "detail-type": "PagerDuty Webhook",
        "source": policy.acknowledgements.partner_event_source or "aws.partner/pagerduty.com/demo",
        "account": "111122223333",
        "time": event["occurred_at"],
        "region": "eu-central-1",
        "resources": [],
        "detail": {
            "event": v2_name,
            "id": event["id"],
            "created_on": event["occurred_at"],
            "log_entries": [{"created_at": event["occurred_at"], "agent": event["agent"]}],
            "incident": {
                "id": data["id"],
                "incident_number": data["number"],
                "html_url": data["html_url"],
                "incident_key": data["incident_key"],
                "status": data["status"],
                "title": data["title"],
                "alerts": [{"alert_key": data["incident_key"]}],
            },
        },
    }


def _imported_event(finding: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"echo-{abs(hash((finding['Id'], finding.get('Note', {}).get('Text')))):x}",
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": finding.get("AwsAccountId", "111122223333"),
        "time": "2026-11-21T18:00:00Z",
        "region": finding.get("Region", "eu-central-1"),
        "resources": [],
        "detail": {"findings": [finding]},
    }


def _decision_rows(run: EnvironmentRun) -> list[list[str]]:
    return [
        [
            r["decision"],
            r["severity"],
            clip(r["product"], 14),
            r["account"],
            clip(r["reason"], 58),
            clip(r["finding_id"].rsplit("/", 1)[-1], 20),
        ]
        for r in run.routed
    ]


def scenario_decisions(run: EnvironmentRun, scenario: FieldScenario) -> list[dict[str, Any]]:
    return [r for r in run.routed if r.get("finding_id") == scenario.finding_id]


def _scenario_rows(run: EnvironmentRun) -> list[list[str]]:
    rows = []
    for scenario in run.scenarios:
        decisions = scenario_decisions(run, scenario)
        rows.append(
            [
                clip(scenario.name, 48),
                " → ".join(r["decision"] for r in decisions) or "-",
                clip(scenario.expectation, 44),
                clip(decisions[-1]["reason"], 60) if decisions else "-",
            ]
        )
    return rows


def _ignored_summary(run: EnvironmentRun) -> list[str]:
    """The field scenarios meant to wake nobody that indeed did not, as short phrases."""
    out = []
    for scenario in run.scenarios:
        decisions = [r["decision"] for r in scenario_decisions(run, scenario)]
        if scenario.ignored_as and decisions and set(decisions) <= {"drop", "duplicate"}:
            out.append(scenario.ignored_as)
    return out


def brief(run: EnvironmentRun, out: TextIO, incidents_known: bool) -> None:
    """One environment in about ten lines: the counts, then the decisions worth a look."""
    p = run.policy
    counts = run.counts()
    accounts = ", ".join(p.accounts)
    out.write(f"\n{p.environment} ({accounts}): {p.description}\n")
    summary = " · ".join(f"{counts.get(k, 0)} {k}" for k in OUTCOMES)
    dead = f" · {len(run.dead_letters)} dead-lettered" if run.dead_letters else ""
    out.write(f"  {run.findings} findings in {run.events} events → {summary}{dead}\n")
    if run.retries or run.returned_to_queue:
        out.write(
            f"  the on-call endpoint failed {run.retries} time(s): retried with backoff; {run.returned_to_queue} "
            "message(s) went back to SQS and were delivered on a later receive\n"
        )
    if incidents_known:
        first = next((i for i in run.incidents if "~" not in i.dedup_key), None)
        escalated = next((i for i in run.incidents if "ESCALATED" in i.summary), None)
        out.write(
            f"  {'incidents':<10} {len(run.incidents)}"
            + (f", e.g. #{first.number} {clip(first.summary, 84)}" if first else "")
            + "\n"
        )
        if escalated is not None:
            out.write(f"  {'escalated':<10} #{escalated.number} {clip(escalated.summary, 96)}\n")
    resolves = [r for r in run.routed if r["decision"] == "resolve"]
    if resolves:
        why = Counter(r["reason"].split(";")[0] for r in resolves)
        out.write(
            f"  {'resolved':<10} {len(resolves)} by Security Hub: "
            + ", ".join(f"{n}× {k}" for k, n in why.items())
            + "\n"
        )
    ignored = _ignored_summary(run)
    if ignored:
        out.write(f"  {'ignored':<10} " + " · ".join(ignored) + "\n")
    for reason, error in sorted(
        {(f.get("reason"), f.get("error")) for f in run.failures if f.get("reason") != "delivery failed"}, key=str
    ):
        out.write(f"  {'DLQ':<10} {reason}: {clip(str(error), 90)}\n")
    for action, agent, via, status, outcome in run.operator:
        out.write(f"  {'operator':<10} {action} by {agent}, {via}: {status} {outcome}\n")
    if run.securityhub is not None and run.securityhub.updates:
        out.write(
            f"  {'Sec. Hub':<10} {len(run.securityhub.updates)} notes/workflow updates; {run.echoes} echo events routed "
            f"again → {run.echo_pages} new pages\n"
        )


# In the app they are one click away; the demo's one screen shows what an operator reads first.
PAGE_DETAILS_SKIPPED = frozenset(
    {"product_arn", "generator_id", "resource_count", "security_hub_console", "types", "finding_id", "description"}
)


def render_page(incident: Incident, width: int = 110) -> str:
    """One incident as the on-call engineer reads it in PagerDuty: summary, severity, links, custom details."""
    lines = [
        f"  {clip(incident.summary, width)}",
        f"  severity {incident.severity} ({'high' if incident.severity in ('critical', 'error') else 'low'} urgency)"
        f" · source {clip(incident.source, 60)} · incident #{incident.number}",
    ]
    for link in incident.links:
        if isinstance(link, dict):
            lines.append(f"  link: {link.get('text')}: {clip(str(link.get('href')), width - 20)}")
    for key, value in incident.custom_details.items():
        if key in PAGE_DETAILS_SKIPPED:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"  {key}: {clip(text, width - len(key) - 4)}")
    return "\n".join(lines)


def report(run: EnvironmentRun, out: TextIO, incidents_known: bool) -> None:
    p = run.policy
    counts = run.counts()
    out.write(f"\n{'=' * 100}\n{p.environment}: {p.description}\n{'=' * 100}\n")
    out.write(
        f"{run.events} events ({run.findings} findings) → SQS → {run.invocations} router invocations "
        f"in {run.seconds:.1f}s\n"
    )
    summary = " · ".join(f"{counts.get(k, 0)} {k}" for k in OUTCOMES)
    out.write(f"decisions: {summary} · {len(run.dead_letters)} dead-lettered\n")
    if run.retries or run.returned_to_queue:
        out.write(
            f"the on-call endpoint failed {run.retries} time(s): retried with backoff; {run.returned_to_queue} "
            "message(s) went back to SQS and were delivered on a later receive\n"
        )
    out.write("\n")
    out.write(
        render_table(("decision", "severity", "product", "account", "reason", "finding"), _decision_rows(run)) + "\n"
    )
    if run.dead_letters:
        out.write("\ndead-letter queue (each failure was logged with its reason on every receive):\n")
        reasons = {(f.get("reason"), f.get("error")) for f in run.failures}
        for reason, error in sorted(reasons, key=str):
            out.write(f"  - {reason}: {clip(str(error), 110)}\n")
    if run.scenarios:
        out.write("\nin the field (each delivered in the order shown; decisions as the router logged them):\n")
        out.write(render_table(("scenario", "decisions", "expected", "reason of the last"), _scenario_rows(run)) + "\n")
    if incidents_known:
        out.write(f"\nincidents as the on-call receiver saw them ({len(run.incidents)}):\n")
        out.write(render_incidents(run.incidents) + "\n")
    if run.operator:
        out.write("\nthe operator acts in PagerDuty; PagerDuty tells the ack receiver:\n")
        rows = [[action, agent, via, str(status), outcome] for action, agent, via, status, outcome in run.operator]
        out.write(render_table(("action", "by", "delivered as", "HTTP", "outcome"), rows) + "\n")
    if run.states:
        out.write("\ndedup state (DynamoDB), episodes an operator touched or that were resolved:\n")
        rows = [
            [
                s.key[:16] + "…",
                s.status,
                str(s.episode),
                s.severity.value,
                s.acknowledged_by or "-",
                s.resolved_by or "-",
                clip(s.title, 50),
            ]
            for s in run.states
            if s.acknowledged_by or s.resolved_by
        ]
        out.write(
            render_table(
                ("dedup_key", "status", "episode", "severity", "acknowledged by", "resolved by", "title"), rows
            )
            + "\n"
        )
    if run.securityhub is not None and run.securityhub.updates:
        out.write(f"\nSecurity Hub write-back (BatchUpdateFindings, {len(run.securityhub.updates)} calls), last 6:\n")
        rows = [
            [clip(u.refs[0].id.rsplit("/", 1)[-1], 22), u.workflow or "-", clip(u.note, 96)]
            for u in run.securityhub.updates[-6:]
        ]
        out.write(render_table(("finding", "workflow", "note"), rows) + "\n")
        out.write(
            f"Security Hub re-emits every updated finding: {run.echoes} echo events routed again → "
            f"{run.echo_pages} new pages (no loop).\n"
        )


def comparison(runs: list[EnvironmentRun]) -> str:
    rows = []
    for run in runs:
        counts = run.counts()
        rows.append(
            [
                run.policy.environment,
                *(str(counts.get(k, 0)) for k in OUTCOMES),
                str(len(run.dead_letters)),
                str(len(run.incidents)) if run.incidents or run.delivered_events == 0 else "?",
            ]
        )
    return render_table(("env", *OUTCOMES, "dead-lettered", "incidents"), rows)


FLAKY = (Fault(500), Fault(429, retry_after="0"), Fault(502, close=True), Fault(503), Fault(500))


def run_demo(
    config_dir: Path,
    events_url: str | None = None,
    out: TextIO | None = None,
    *,
    flaky: bool = False,
    verbose: bool = False,
) -> int:
    """The demo; `verbose` prints every decision, incident, state and write-back per environment."""
    out = out or sys.stdout
    policies = load_policy_dir(config_dir)
    corpus = load_corpus()
    # Least strict first, production last.
    order = sorted(policies.values(), key=lambda p: (p.production, len(p.rules), p.environment))
    out.write(
        f"findings-router demo: {len(corpus)} Security Hub events from a day on an IoT platform, routed by the real\n"
        f"handler through moto (DynamoDB, SQS, Secrets Manager) under {len(order)} environment policies.\n"
    )
    runs: list[EnvironmentRun] = []
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="findings-router-demo-")))
        receiver: PagerDutyReceiver | None = None
        if events_url is None:
            receiver = stack.enter_context(PagerDutyReceiver())
            events_url = receiver.url
        out.write(f"moto: {endpoint}   on-call endpoint: {events_url}\n")
        for policy in order:
            if receiver is not None and flaky:
                # PagerDuty has a bad few minutes at the start of every environment's day.
                receiver.fail_next(*(FLAKY * 6))
            run = run_environment(policy, config_dir, events_url, corpus, endpoint, receiver, workdir)
            run.delivered_events = sum(r.get("deliveries", 0) for r in run.routed)
            (report if verbose else brief)(run, out, receiver is not None)
            runs.append(run)
    out.write(f"\nall environments, same findings:\n{comparison(runs)}\n")
    page = _example_page(runs)
    if page is not None and not verbose:
        run, incident = page
        out.write(f"\none page as the on-call engineer sees it in PagerDuty ({run.policy.environment}):\n")
        out.write(render_page(incident) + "\n")
    if not verbose:
        out.write(
            f"\nSame day, {len(runs)} policies: each environment pages only its own accounts' findings, once per problem, and\n"
            "resolves them once; echoes, older copies, other tools' actions and samples wake nobody.\n"
            "\nwhat next:\n"
            "  findings-router demo --verbose                      every decision, incident, state and write-back\n"
            "  findings-router replay --env prod last-week.json    your own findings (aws securityhub get-findings)\n"
            "  findings-router explain --env prod finding.json     why a finding pages, or does not\n"
            "  make synth; npx cdk deploy -c env=prod              deploy (docs/deploy.md)\n"
        )
        return 0
    out.write(
        "\nSame day, different policy: prod pages what matters, stg only CRITICAL, dev never pages. Each environment\n"
        "sees the day in its own account and ignores the others' findings. Re-sent findings are duplicates (no second\n"
        "page); a raised severity pages again; PASSED/archived findings resolve once; an older copy arriving after a\n"
        "resolution pages nobody; other tools' custom actions and sample findings wake nobody; the malformed event is\n"
        "retried and dead-lettered without holding up its batch. moto and the receiver are stopped.\n"
    )
    return 0


def _example_page(runs: list[EnvironmentRun]) -> tuple[EnvironmentRun, Incident] | None:
    """The most severe page of the strictest environment: what a woken operator reads first."""
    for run in reversed(runs):
        pages = [i for i in run.incidents if i.severity == "critical" and "ESCALATED" not in i.summary]
        if pages:
            return run, pages[0]
    return None
