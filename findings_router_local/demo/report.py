"""What the demo prints: per environment a brief (about ten lines) or, verbose, every table; then the comparison of
the environments and one page as the on-call engineer reads it."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.domain.episodes import DedupState
from findings_router.settings.schema import Policy
from findings_router_local.demo.corpus import FieldScenario
from findings_router_local.fakes.pagerduty import Incident, render_incidents
from findings_router_local.tables import clip, render_table

if TYPE_CHECKING:
    from findings_router_local.canary_local import CanaryRound
    from findings_router_local.demo.silences import SilenceRound
    from findings_router_local.fakes.jsm import Alert

OUTCOMES = ("page", "notify", "resolve", "duplicate", "drop")


@dataclass
class EnvironmentRun:
    """What one environment's run left: the router's log lines, dead letters, incidents, operators' actions, dedup
    states and Security Hub write-backs, as the report reads them."""

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
    canary: CanaryRound | None = None  # the environment's canary round (canary enabled)
    jsm_alerts: list[Alert] = field(default_factory=list)  # at the JSM stand-in (a jsm notifier)
    webhooks: dict[str, int] = field(default_factory=dict)  # webhook notifier → deliveries verified and accepted
    silence: SilenceRound | None = None  # production: the silence round (demo/silences.py)
    shadow: str | None = None  # production: what the shadow trial rule would have changed, in one line

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
    _write_targets(run, out)
    _write_canary(run, out)
    _write_silence_and_shadow(run, out)


def _write_silence_and_shadow(run: EnvironmentRun, out: TextIO) -> None:
    """Production's silence round and shadow trial, a line each."""
    if run.silence is not None:
        out.write(f"  {'silence':<10} {run.silence.describe()}\n")
    if run.shadow is not None:
        out.write(f"  {'shadow':<10} {run.shadow}\n")


def _write_targets(run: EnvironmentRun, out: TextIO) -> None:
    """What the other on-call targets got (routing per rule): JSM alerts, signed webhook deliveries."""
    if run.jsm_alerts:
        alerts = run.jsm_alerts
        closed = sum(1 for a in alerts if a.status == "closed")
        acknowledged = sum(1 for a in alerts if a.acknowledged and a.status == "open")
        first = alerts[0]
        out.write(
            f"  {'JSM':<10} {len(alerts)} alerts ({acknowledged} acknowledged, {closed} closed), e.g. "
            f"#{first.tiny_id} {first.priority} {clip(first.message, 70)}\n"
        )
    for name, deliveries in sorted(run.webhooks.items()):
        out.write(f"  {'webhook':<10} {name}: {deliveries} signed deliveries, each verified by the receiver\n")


def _write_canary(run: EnvironmentRun, out: TextIO) -> None:
    """The canary's round trip, hop by hop (its own service: never counted among the incidents above)."""
    canary = run.canary
    if canary is None:
        return
    if not canary.completed:
        out.write(f"  {'canary':<10} DID NOT COMPLETE: paged={canary.paged}, last hop {canary.webhook}\n")
        return
    out.write(f"  {'canary':<10} {canary.describe()}\n")


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
    if run.silence is not None or run.shadow is not None:
        out.write("\nsilences and shadow decisions (production):\n")
        _write_silence_and_shadow(run, out)


def comparison(runs: list[EnvironmentRun]) -> str:
    rows = []
    for run in runs:
        counts = run.counts()
        rows.append(
            [
                run.policy.environment,
                *(str(counts.get(k, 0)) for k in OUTCOMES),
                str(len(run.dead_letters)),
                str(len(run.incidents) + len(run.jsm_alerts))
                if run.incidents or run.jsm_alerts or run.delivered_events == 0
                else "?",
            ]
        )
    return render_table(("env", *OUTCOMES, "dead-lettered", "incidents"), rows)


def example_page(runs: list[EnvironmentRun]) -> tuple[EnvironmentRun, Incident] | None:
    """The most severe page of the strictest environment: what a woken operator reads first."""
    for run in reversed(runs):
        pages = [i for i in run.incidents if i.severity == "critical" and "ESCALATED" not in i.summary]
        if pages:
            return run, pages[0]
    return None


def introduction(events: int, environments: int) -> str:
    return (
        f"findings-router demo: {events} Security Hub events from a day on an IoT platform, routed by the real\n"
        f"handler through moto (DynamoDB, SQS, Secrets Manager) under {environments} environment policies.\n"
    )


def conclusion(runs: list[EnvironmentRun], out: TextIO, *, verbose: bool) -> None:
    """The environments side by side; then (brief) one page as on-call reads it and what next, or (verbose) what the
    tables showed."""
    out.write(f"\nall environments, same findings:\n{comparison(runs)}\n")
    if verbose:
        out.write(
            "\nSame day, different policy: prod pages what matters, stg only CRITICAL, dev never pages. Each environment\n"
            "sees the day in its own account and ignores the others' findings. Re-sent findings are duplicates (no second\n"
            "page); a raised severity pages again; PASSED/archived findings resolve once; an older copy arriving after a\n"
            "resolution pages nobody; other tools' custom actions and sample findings wake nobody; the malformed event is\n"
            "retried and dead-lettered without holding up its batch. moto and the receiver are stopped.\n"
        )
        return
    page = example_page(runs)
    if page is not None:
        run, incident = page
        out.write(f"\none page as the on-call engineer sees it in PagerDuty ({run.policy.environment}):\n")
        out.write(render_page(incident) + "\n")
    out.write(
        f"\nSame day, {len(runs)} policies: each environment pages only its own accounts' findings, once per problem, and\n"
        "resolves them once; echoes, older copies, other tools' actions and samples wake nobody.\n"
    )


def what_next(out: TextIO) -> None:
    """The demo's last lines: what to run next."""
    out.write(
        "\nwhat next:\n"
        "  findings-router demo --verbose                      every decision, incident, state and write-back\n"
        "  findings-router replay --env prod last-week.json    your own findings (aws securityhub get-findings)\n"
        "  findings-router explain --env prod finding.json     why a finding pages, or does not\n"
        "  findings-router cve CVE-… --since 24h --output csv  follow a CVE's fixes; exit 1 while affected (docs/psirt.md)\n"
        "  findings-router silence add --all --duration 2h …   stop paging now, lose nothing (docs/runbook.md)\n"
        "  make synth; make deploy-baseline deploy ENV=prod    deploy (docs/baseline.md, docs/deploy.md)\n"
    )
