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
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from findings_router.config import Policy, load_policy_dir, policy_path

from findings_router_local.aws_local import LambdaContext, SqsEventSource, local_aws_environment, moto_server
from findings_router_local.pagerduty_receiver import Incident, PagerDutyReceiver, render_incidents
from findings_router_local.tables import clip, render_table
from infra.definitions import (
    function_environment,
    queue_settings,
    resource_names,
    state_table_definition,
    state_table_ttl_specification,
)

CORPUS = Path(__file__).parent / "corpus" / "iot-platform-day.jsonl"
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

    @property
    def routed(self) -> list[dict[str, Any]]:
        return [r for r in self.logs if r.get("message") == "finding routed"]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.logs if r.get("level") == "ERROR"]

    def counts(self) -> Counter[str]:
        return Counter(r["decision"] for r in self.routed)


@contextlib.contextmanager
def _router_logs_captured(captured: _CapturedLogs) -> Iterator[None]:
    from findings_router import handler

    stream_handler = handler.logger.registered_handler
    original = stream_handler.setStream(captured)  # type: ignore[attr-defined]
    try:
        # Powertools prints EMF metrics to stdout at the end of every invocation; keep them out of the demo.
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        stream_handler.setStream(original)  # type: ignore[attr-defined]


def run_environment(
    policy: Policy, config_dir: Path, events_url: str, corpus: list[dict[str, Any]], endpoint: str
) -> EnvironmentRun:
    """Create this environment's resources in moto and route the corpus through them."""
    names = resource_names(policy)
    env = function_environment(policy, names.state_table)
    env["POLICY_FILE"] = str(policy_path(config_dir, policy.environment))  # the repo's file, not /var/task's
    env["EVENTS_URL"] = events_url
    with local_aws_environment(endpoint, env):
        return _route_corpus(policy, corpus)


def _route_corpus(policy: Policy, corpus: list[dict[str, Any]]) -> EnvironmentRun:
    import boto3
    from aws_lambda_powertools.utilities import parameters
    from findings_router import handler

    names = resource_names(policy)
    settings = queue_settings(policy)
    # Typed as Any: the stubs' literal key types do not accept the plain dicts infra.definitions returns.
    dynamodb: Any = boto3.client("dynamodb")
    sqs: Any = boto3.client("sqs")
    secrets: Any = boto3.client("secretsmanager")
    dynamodb.create_table(**state_table_definition(names.state_table))
    dynamodb.update_time_to_live(TableName=names.state_table, TimeToLiveSpecification=state_table_ttl_specification())
    dlq_url = sqs.create_queue(QueueName=names.dead_letter_queue, Attributes=settings.dead_letter_queue_attributes())[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = settings.queue_attributes(dlq_arn)
    attributes["VisibilityTimeout"] = "0"  # locally, a failed message is retried at once instead of minutes later
    queue_url = sqs.create_queue(QueueName=names.queue, Attributes=attributes)["QueueUrl"]
    secrets.create_secret(
        Name=names.routing_key_secret, SecretString=json.dumps({"routing_key": demo_routing_key(policy.environment)})
    )

    run = EnvironmentRun(
        policy, len(corpus), sum(len(e.get("detail", {}).get("findings", [])) for e in corpus if isinstance(e, dict))
    )
    captured = _CapturedLogs()
    started = time.monotonic()
    with _router_logs_captured(captured):
        handler.reset_runtime()
        parameters.clear_caches()
        source = SqsEventSource(
            sqs,
            queue_url,
            handler.lambda_handler,
            batch_size=settings.batch_size,
            context_factory=lambda: LambdaContext(
                function_name=names.function,
                memory_limit_in_mb=policy.function.memory_mb,
                timeout_seconds=policy.function.timeout_seconds,
                clock=time.monotonic,
                started=time.monotonic(),
            ),
        )
        # Security Hub sends these over a day; deliver them in waves of one batch so a later update of a finding
        # (escalation, PASSED, archived) is routed after the earlier one, as it would be.
        for start in range(0, len(corpus), settings.batch_size):
            wave = corpus[start : start + settings.batch_size]
            sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "MessageBody": json.dumps(ev)} for i, ev in enumerate(wave)],
            )
            run.invocations += source.drain().invocations
        handler.reset_runtime()
    run.seconds = time.monotonic() - started
    run.logs = captured.records()
    run.dead_letters = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages", []
    )
    return run


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


def report(run: EnvironmentRun, out: TextIO, incidents_known: bool) -> None:
    p = run.policy
    counts = run.counts()
    out.write(f"\n{'=' * 100}\n{p.environment}: {p.description}\n{'=' * 100}\n")
    out.write(
        f"{run.events} events ({run.findings} findings) → SQS → {run.invocations} router invocations "
        f"in {run.seconds:.1f}s\n"
    )
    summary = " · ".join(f"{counts.get(k, 0)} {k}" for k in OUTCOMES)
    out.write(f"decisions: {summary} · {len(run.dead_letters)} dead-lettered\n\n")
    out.write(
        render_table(("decision", "severity", "product", "account", "reason", "finding"), _decision_rows(run)) + "\n"
    )
    if run.dead_letters:
        out.write("\ndead-letter queue (each failure was logged with its reason on every receive):\n")
        reasons = {(f.get("reason"), f.get("error")) for f in run.failures}
        for reason, error in sorted(reasons, key=str):
            out.write(f"  - {reason}: {clip(str(error), 110)}\n")
    if incidents_known:
        out.write(f"\nincidents as the on-call receiver saw them ({len(run.incidents)}):\n")
        out.write(render_incidents(run.incidents) + "\n")


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


def run_demo(config_dir: Path, events_url: str | None = None, out: TextIO | None = None) -> int:
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
        receiver: PagerDutyReceiver | None = None
        if events_url is None:
            receiver = stack.enter_context(PagerDutyReceiver())
            events_url = receiver.url
        out.write(f"moto: {endpoint}   on-call endpoint: {events_url}\n")
        for policy in order:
            run = run_environment(policy, config_dir, events_url, corpus, endpoint)
            if receiver is not None:
                key = demo_routing_key(policy.environment)
                run.incidents = [i for i in receiver.all_incidents if i.routing_key == key]
            run.delivered_events = sum(r.get("deliveries", 0) for r in run.routed)
            report(run, out, receiver is not None)
            runs.append(run)
    out.write(f"\n{'=' * 100}\nall environments, same findings:\n{comparison(runs)}\n")
    out.write(
        "\nSame input, different policy: prod pages what matters, stg only CRITICAL, dev never pages. Re-sent findings\n"
        "are duplicates (no second page); a raised severity pages again; PASSED/archived findings resolve once; the\n"
        "malformed event is retried and dead-lettered without holding up its batch. moto and the receiver are stopped.\n"
    )
    return 0
