"""Drives the demo: one `LocalEnvironment` per environment policy, on one moto server and one PagerDuty receiver.

Per environment: the bundled day (in the environment's own account) through SQS to the real router handler, invoked
as Lambda's event source mapping invokes it; then the field scenarios, wave after wave; an operator acknowledges and
resolves incidents in PagerDuty, which tells the ack receiver; and every Security Hub write-back comes back as an
echo. `report.py` prints what each environment's run left. Everything started is stopped before `run_demo` returns.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from findings_router.adapters.state_table import item_to_state
from findings_router.settings.load import load_policy_dir, policy_path
from findings_router.settings.schema import Policy
from findings_router_local.aws_local import LambdaContext, SqsEventSource, moto_server
from findings_router_local.demo.corpus import field_scenarios, imported_event, load_corpus, rehome, silence_findings
from findings_router_local.demo.operator import as_partner_event, post_jsm, post_signed
from findings_router_local.demo.psirt import psirt_section
from findings_router_local.demo.report import EnvironmentRun, brief, conclusion, introduction, report, what_next
from findings_router_local.demo.silences import (
    SILENCE_AUTHOR,
    SILENCE_COMMENT,
    SilenceRound,
    describe_shadow,
    shadow_comparison,
    with_trial_rule,
)
from findings_router_local.environment import LocalEnvironment, shipped_policy_data
from findings_router_local.fakes.pagerduty import Fault, PagerDutyReceiver, incident_webhook
from findings_router_local.function_url import FunctionUrlServer


class _LocalClients:
    """`aws_access.AwsClients`' one method, over the demo's moto client (the CLI's silence functions take it)."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    def client(self, name: str) -> Any:
        assert name == "dynamodb"
        return self._dynamodb


DEMO_SIGNING_SECRET = "demo-webhook-signing-secret"  # noqa: S105  (a local stand-in, never a real secret)
# `--flaky`: PagerDuty has a bad few minutes at the start of every environment's day.
FLAKY = (Fault(500), Fault(429, retry_after="0"), Fault(502, close=True), Fault(503), Fault(500))
# Rounds of FLAKY per environment: few enough that an environment sending little through PagerDuty (staging pages
# through JSM) still gets its one message through within its receives (ingestion.max_receive_count).
FLAKY_ROUNDS = 2


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


@contextlib.contextmanager
def _router_logs_captured(captured: _CapturedLogs) -> Iterator[None]:
    from findings_router.entrypoints import receive_acks as ack_handler
    from findings_router.entrypoints import route_findings as handler
    from findings_router.entrypoints import sweep_silences

    # The entry points' Powertools handlers, and the one library modules (service/, notify/, adapters/) log through.
    library = logging.getLogger("findings_router")
    ours = (handler.logger.registered_handler, sweep_silences.logger.registered_handler, *library.handlers)
    handlers = {id(h): h for h in ours if hasattr(h, "setStream")}
    originals = [(h, h.setStream(captured)) for h in handlers.values()]
    # The ack receiver's lines are not shown: the operators' actions are reported from its answers.
    ack_log = ack_handler.logger.registered_handler
    if hasattr(ack_log, "setStream") and id(ack_log) not in handlers:
        originals.append((ack_log, ack_log.setStream(io.StringIO())))
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


def run_environment(
    policy: Policy,
    config_dir: Path,
    corpus: list[dict[str, Any]],
    *,
    endpoint: str,
    receiver: PagerDutyReceiver | None,
    events_url: str | None = None,
    target_urls: dict[str, str] | None = None,
) -> EnvironmentRun:
    """This environment's stack in moto (on the shared server), the corpus routed, then an operator at work.

    `receiver`: the shared on-call receiver, or None when events go to `events_url` (then nothing is known of the
    incidents, and nobody acts on them). Production also tries a trial rule in shadow (silences.TRIAL_RULE), and
    goes through a silence round after the day (its decisions logged apart: the day's counts stay comparable)."""
    shipped = policy_path(config_dir, policy.environment)
    source: Path | dict[str, Any] = with_trial_rule(shipped_policy_data(shipped)) if policy.production else shipped
    started = dt.datetime.now(dt.UTC)
    with LocalEnvironment(
        source,
        endpoint=endpoint,
        receiver=receiver,
        events_url=None if receiver is not None else events_url,
        routing_key=demo_routing_key(policy.environment),
        signing_secret=DEMO_SIGNING_SECRET,
        queue_attributes={"VisibilityTimeout": "0"},  # locally, a failed message is retried at once, not minutes later
        target_urls=target_urls,
    ) as local:
        demo = EnvironmentDemo(policy, rehome(corpus, policy), local)
        captured = _CapturedLogs()
        with _router_logs_captured(captured):
            demo.route_corpus()
            demo.route_field_scenarios()
            if receiver is not None:
                demo.take_incidents(receiver)
                demo.operator_loop(receiver)
                demo.jsm_operator_loop()
                demo.security_hub_echoes(receiver)
                demo.canary_round(receiver)
        demo.finish(captured)
        if policy.production:
            demo.run.shadow = describe_shadow(shadow_comparison(local, policy.environment, started))
            if receiver is not None:
                silenced = _CapturedLogs()
                with _router_logs_captured(silenced):
                    done = demo.silence_round(receiver)
                done.logs = silenced.records()
        return demo.run


class EnvironmentDemo:
    """One environment's stack, in moto, driven as Lambda and PagerDuty would drive it."""

    def __init__(self, policy: Policy, corpus: list[dict[str, Any]], local: LocalEnvironment) -> None:
        self.policy = policy  # as shipped (the run reports its accounts and description)
        self.corpus = corpus
        self.local = local
        self.names = local.names
        self.settings = local.queue_settings
        findings = sum(len(e.get("detail", {}).get("findings", [])) for e in corpus if isinstance(e, dict))
        self.run = EnvironmentRun(policy, len(corpus), findings)

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

        sqs, queue_url = self.local.sqs, self.local.queue_url
        source = SqsEventSource(
            sqs, queue_url, handler.lambda_handler, batch_size=self.settings.batch_size, context_factory=self._context
        )
        for start in range(0, len(events), self.settings.batch_size):
            wave = events[start : start + self.settings.batch_size]
            sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "MessageBody": json.dumps(ev)} for i, ev in enumerate(wave)],
            )
            self.run.invocations += source.drain().invocations

    def take_incidents(self, receiver: PagerDutyReceiver) -> None:
        """The incidents the on-call receiver holds for this environment's routing key, so far."""
        self.run.incidents = [i for i in receiver.all_incidents if i.routing_key == self.local.routing_key]

    def route_corpus(self) -> None:
        """Fresh runtimes (Security Hub is the recording twin), then the day."""
        self.local.new_router_runtime()
        if self.policy.acknowledgements.mode != "none":
            self.local.new_ack_runtime()
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
                    status, outcome = post_signed(url, body, DEMO_SIGNING_SECRET)
                    self.run.operator.append((f"{action} #{incident.number}", agent, "signed webhook", status, outcome))
                forged = incident_webhook(pages[-1], "incident.resolved", "mallory")  # not from PagerDuty
                status, outcome = post_signed(url, forged, "guessed-secret")
                self.run.operator.append((f"resolve #{pages[-1].number}", "mallory", "FORGED webhook", status, outcome))
        else:  # PagerDuty's EventBridge integration: V2 messages on the partner event bus
            for incident, action, agent in actions:
                body = receiver.operator_action(incident, action, agent)
                result = ack_handler.eventbridge_handler(as_partner_event(body, self.policy), self._context())
                self.run.operator.append(
                    (f"{action} #{incident.number}", agent, "EventBridge partner bus", "-", str(result.get("outcome")))
                )

    def jsm_operator_loop(self) -> None:
        """With JSM among the targets: an operator acknowledges one alert and closes another in JSM, whose outgoing
        webhook (unsigned: a token header) reaches the ack receiver's Function URL; someone tries it without."""
        from findings_router.entrypoints import receive_acks as ack_handler
        from findings_router_local.environment import LOCAL_JSM_TOKEN

        jsm = self.local.jsm
        if jsm is None or not self.policy.acknowledgements.jsm_token_secret:
            return
        alerts = [a for a in jsm.all_alerts if a.status == "open" and a.priority in ("P1", "P2")]
        if len(alerts) < 2:
            return
        actions = [
            (alerts[0], "Acknowledge", "ada.lovelace@example.com"),
            (alerts[1], "Close", "grace.hopper@example.com"),
        ]
        with FunctionUrlServer(ack_handler.function_url_handler, self.names.ack_function) as server:
            url = server.url + ack_handler.JSM_WEBHOOK_PATH
            for alert, action, user in actions:
                body = jsm.operator_action(alert, action, user)
                status, outcome = post_jsm(url, body, LOCAL_JSM_TOKEN)
                self.run.operator.append(
                    (f"{action.lower()} JSM #{alert.tiny_id}", user, "JSM webhook", status, outcome)
                )
            forged = jsm.operator_action(alerts[1], "Close", "mallory")
            status, outcome = post_jsm(url, forged, "guessed-token")
            self.run.operator.append(
                (f"close JSM #{alerts[1].tiny_id}", "mallory", "JSM webhook, no token", status, outcome)
            )

    def security_hub_echoes(self, receiver: PagerDutyReceiver) -> None:
        """Every write-back makes Security Hub re-emit the finding: feed those echoes back through the router."""
        by_id = {f["Id"]: f for e in self.corpus for f in e.get("detail", {}).get("findings", []) if "Id" in f}
        echoes = []
        for update in self.local.securityhub.updates:
            for ref in update.refs:
                if ref.id in by_id:
                    finding = dict(by_id[ref.id])
                    finding["Note"] = {"Text": update.note, "UpdatedBy": "findings-router"}
                    if update.workflow:
                        finding["Workflow"] = {"Status": update.workflow}
                    echoes.append(imported_event(finding))
        before = len(self.run.incidents)
        self.deliver(echoes)
        self.take_incidents(receiver)
        self.run.echoes = len(echoes)
        self.run.echo_pages = len(self.run.incidents) - before

    def canary_round(self, receiver: PagerDutyReceiver) -> None:
        """The environment's canary, if it has one: the synthetic finding imported into Security Hub (moto), through
        the queue and the router to the canary's own service, whose webhook comes back to the ack receiver."""
        if not self.local.policy.canary_enabled:
            return
        from findings_router_local.canary_local import run_canary_round

        self.run.canary = run_canary_round(
            self.local, receiver, self.deliver, signing_secret=DEMO_SIGNING_SECRET, context=self._context()
        )

    def silence_round(self, receiver: PagerDutyReceiver) -> SilenceRound:
        """`findings-router silence add --all`, a finding held back and another's resolve still sent, `silence
        expire`, and the sweep's handler paging what was held (a new container after each change: in AWS a change
        takes effect within a minute). Security Hub's write-back goes to a twin of its own: the day's is unchanged."""
        from findings_router.adapters.memory import RecordingSecurityHub
        from findings_router.bootstrap import RuntimeEnv, build_silence_sweep
        from findings_router.entrypoints import sweep_silences
        from findings_router_local.silence import AddRequest, add_silence, expire_silence, store_for

        local, policy = self.local, self.local.policy
        self.run.silence = done = SilenceRound()
        findings = silence_findings(self.policy, self.corpus)
        quiet = io.StringIO()  # the audit lines (the demo says it in one line)
        writeback = RecordingSecurityHub()
        store = store_for(_LocalClients(local.dynamodb), policy)
        local.new_router_runtime(securityhub=writeback)
        self.deliver([imported_event(findings.paged_before)])
        request = AddRequest([], True, "2h", None, None, SILENCE_COMMENT, SILENCE_AUTHOR)
        silence = add_silence(policy, store, request, dt.datetime.now(dt.UTC), quiet)
        done.silence_id = silence.id
        local.new_router_runtime(securityhub=writeback)
        self.deliver([imported_event(findings.new_during), imported_event(findings.archived_during)])
        expire_silence(policy, store, silence.id, SILENCE_AUTHOR, dt.datetime.now(dt.UTC), quiet)
        before = {i.number for i in receiver.all_incidents}
        env = RuntimeEnv.from_environ()
        sweep_silences.install(build_silence_sweep(env, policy=policy, securityhub=writeback))
        try:
            sweep_silences.lambda_handler({}, self._context())
        finally:
            sweep_silences.install(None)
        local.new_router_runtime()
        mine = [i for i in receiver.all_incidents if i.routing_key == local.routing_key]
        done.swept = sorted(i.number for i in mine if i.number not in before)
        done.resolved_during = any(
            findings.paged_before["Id"] in str(i.custom_details.get("finding_id")) and not i.is_open for i in mine
        )
        return done

    def finish(self, captured: _CapturedLogs) -> None:
        """What the run left: the log lines, the dead letters, the dedup states and the write-backs."""
        if self.local.jsm is not None:
            self.run.jsm_alerts = list(self.local.jsm.all_alerts)
        self.run.webhooks = {name: len(r.accepted) for name, r in self.local.webhooks.items()}
        self.run.logs = captured.records()
        self.run.dead_letters = self.local.dlq_messages()
        self.run.states = [item_to_state(i) for i in self.local.state_items()]
        self.run.securityhub = self.local.securityhub


def run_demo(
    config_dir: Path,
    events_url: str | None = None,
    out: TextIO | None = None,
    *,
    flaky: bool = False,
    verbose: bool = False,
    target_urls: dict[str, str] | None = None,
) -> int:
    """The demo; `verbose` prints every decision, incident, state and write-back per environment. `target_urls`:
    the policies' JSM and webhook notifiers by name to these URLs instead of their built-in stand-ins."""
    out = out or sys.stdout
    policies = load_policy_dir(config_dir)
    corpus = load_corpus()
    # Least strict first, production last.
    order = sorted(policies.values(), key=lambda p: (p.production, len(p.rules), p.environment))
    out.write(introduction(len(corpus), len(order)))
    runs: list[EnvironmentRun] = []
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        receiver: PagerDutyReceiver | None = None
        if events_url is None:
            receiver = stack.enter_context(PagerDutyReceiver())
        out.write(f"moto: {endpoint}   on-call endpoint: {receiver.url if receiver is not None else events_url}\n")
        for policy in order:
            if receiver is not None and flaky:
                receiver.fail_next(*(FLAKY * FLAKY_ROUNDS))
            run = run_environment(
                policy,
                config_dir,
                corpus,
                endpoint=endpoint,
                receiver=receiver,
                events_url=events_url,
                target_urls=target_urls or {},
            )
            run.delivered_events = sum(r.get("deliveries", 0) for r in run.routed)
            (report if verbose else brief)(run, out, receiver is not None)
            runs.append(run)
    conclusion(runs, out, verbose=verbose)
    psirt_section(config_dir, out)
    what_next(out)
    return 0
