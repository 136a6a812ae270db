"""`findings-router explain`: why does this policy page, notify or drop these findings? (Like Alertmanager's
`amtool config routes test`.)

For each finding in the files (any shape `replay` reads: EventBridge events, `get-findings` output, bare findings,
JSON arrays or JSON lines; `-` is standard input): the scope check, every suppression and rule in order up to the one
that decided (condition by condition), `default_action` when nothing matched, the custom action when it applies,
the dedup key, and the PagerDuty Events v2 body that would be sent. The policy's own matching code decides
(`CompiledPolicy.explain`, the router's scope and custom action checks, `decide` and `build_event`), so the
explanation is what the router does. Makes no AWS call and sends nothing; the routing key is never read.

With `--silences FILE` (what `silence list --output json` prints), every silence is checked against the finding with
the same matching code (`CompiledSilences.explain`), and a page or notification one holds back says "silenced by <id>
until …". A policy with shadow decisions (`mode: shadow`, rules with `shadow: true`) also shows the shadow decision.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO, cast

from findings_router.adapters.memory import InMemoryDedupStore
from findings_router.adapters.silences import StaticSilences
from findings_router.domain.episodes import decide
from findings_router.domain.model import Finding, FindingError
from findings_router.domain.normalize import normalize_document
from findings_router.domain.notifications import NotifyContext, resolve
from findings_router.domain.policy import CompiledPolicy, PolicyDecision, Step
from findings_router.domain.silences import CompiledSilences, Silence, SilenceCheck
from findings_router.notify.pagerduty.events import build_event
from findings_router.notify.recording import RecordingNotifier
from findings_router.service.route import FindingsRouter
from findings_router.settings.schema import Policy
from findings_router_local.replay import read_documents
from findings_router_local.tables import clip

STDIN = "-"
OUTPUTS = ("text", "json")


def routing_key_placeholder(policy: Policy) -> str:
    """What the explanation shows instead of the routing key (which stays in Secrets Manager, unread)."""
    return f"<from Secrets Manager: {policy.notifier.routing_key_secret}>"


class _StdinFile:
    """Standard input where `read_documents` expects a file (it reads `read_text()` and names it by `str()`)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def read_text(self, encoding: str = "utf-8") -> str:
        del encoding  # the stream is already text
        return self.stream.read()

    def __str__(self) -> str:
        return "<stdin>"


def _iso(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _decision(d: PolicyDecision) -> dict[str, str]:
    return {"action": d.action, "urgency": d.urgency, "reason": d.reason}


def _step(step: Step) -> dict[str, Any]:
    return {
        "kind": step.kind,
        "name": step.name,
        "status": step.status,
        "matched": step.matched,
        "action": step.action,
        "urgency": step.urgency,
        "expires": step.expires.isoformat() if step.expires else None,
        "conditions": [dataclasses.asdict(c) for c in step.conditions],
    }


def _silence_check(check: SilenceCheck) -> dict[str, Any]:
    s = check.silence
    return {
        "id": s.id,
        "matchers": s.matchers,
        "state": check.state,
        "starts_at": s.to_dict()["starts_at"],
        "ends_at": s.until,
        "created_by": s.created_by,
        "comment": s.comment,
        "matched": check.matched,
        "holds": check.silences,
        "conditions": [dataclasses.asdict(c) for c in check.conditions],
    }


class Explainer:
    """Explains findings against one policy at one moment, with the router's own code. `silences`: checked too."""

    def __init__(self, policy: Policy, now: dt.datetime, silences: tuple[Silence, ...] = ()) -> None:
        self.policy = policy
        # In `mode: shadow` every decision is a shadow decision: the shadow view (every rule) is what is recorded.
        self.compiled = CompiledPolicy(policy, shadow=policy.mode == "shadow")
        self.shadow = CompiledPolicy(policy, shadow=True) if policy.mode == "live" and policy.has_shadow else None
        self.silences = CompiledSilences(tuple(silences))
        # Only its pure checks are used (scope, custom action, dedup key): nothing is routed, stored or sent.
        self.router = FindingsRouter(
            self.compiled,
            InMemoryDedupStore(),
            RecordingNotifier(),
            silences=StaticSilences(silences) if silences else None,
        )
        self.now = now
        self.routing_key = routing_key_placeholder(policy)

    def explain(self, finding: Finding, where: str) -> dict[str, Any]:
        """One finding's explanation as a JSON-ready record (the text output renders the same record)."""
        policy = self.policy
        record: dict[str, Any] = {
            "where": where,
            "finding": {
                "id": finding.id,
                "format": finding.format.value,
                "product": finding.product_name,
                "severity": finding.severity.value,
                "account": finding.account,
                "region": finding.region,
                "title": finding.title,
                "sample": finding.sample,
                "resolved": finding.is_resolved,
                "workflow_status": finding.workflow_status,
                "record_state": finding.record_state,
                "compliance_status": finding.compliance_status,
                "custom_action": finding.custom_action,
            },
            "environment": policy.environment,
            "evaluated_at": _iso(self.now),
        }
        foreign = self.router.policy.out_of_scope(finding)
        if foreign is not None:
            record["scope"] = {"in_scope": False, "detail": foreign}
            record["decision"] = _decision(PolicyDecision("drop", "low", foreign))
            record["sends"] = []
            record["sends_note"] = "out of scope: nothing is sent, no state, no write-back"
            return record
        record["scope"] = {"in_scope": True, "detail": self._in_scope(finding)}

        explanation = self.compiled.explain(finding, self.now)
        record["steps"] = [_step(s) for s in explanation.steps]
        record["not_reached"] = list(explanation.not_reached)
        record["default_action"] = policy.default_action if explanation.decided_by is None else None
        record["policy_decision"] = _decision(explanation.decision)
        record["custom_action"] = self._custom_action(finding)
        final = self.router.policy.decision_for(finding, self.now)
        record["decision"] = _decision(final)
        if finding.is_resolved:
            # Resolutions bypass the policy (domain.episodes.decide): they resolve an open episode whatever the rules say.
            record["decision"] = {
                "action": "resolve",
                "urgency": "low",
                "reason": "Security Hub reports it gone (archived, PASSED, RESOLVED or SUPPRESSED): resolves an "
                f"open episode of this key, whatever the rules say (they would {final.action}: {final.reason})",
            }
        key = self.router.key_for(finding)
        record["dedup_key"] = key
        vulnerability = self.router.folded_vulnerability(finding)
        if vulnerability is not None:
            mode = policy.dedup.fold_vulnerabilities
            record["folded"] = {
                "vulnerability": vulnerability,
                "fold": mode,
                "detail": f"dedup.fold_vulnerabilities {mode}: every finding of {vulnerability} in account "
                f"{finding.account}{'' if mode == 'cve_account' else ' on this resource'} is one episode",
            }
        record["sends"], record["sends_note"] = self._sends(finding, final, key)
        self._silenced(finding, record)
        if self.shadow is not None:
            shadow = self.shadow.decision_for(finding, self.now)
            record["shadow"] = {**_decision(shadow), "rule": shadow.rule}
        if self.policy.mode == "shadow":
            record["mode"] = "shadow"
            record["sends_note"] = (
                f"mode shadow: nothing is sent; recorded under the shadow state ({record['sends_note']})"
            )
            record["sends"] = []
        return record

    def _silenced(self, finding: Finding, record: dict[str, Any]) -> None:
        """Every silence against the finding; the one that holds a page or notification back, if any."""
        if not self.silences.silences:
            return
        record["silences"] = [_silence_check(c) for c in self.silences.explain(finding, self.now)]
        decision = record["decision"]
        if decision["action"] not in ("page", "notify"):
            if finding.is_resolved:
                record["silences_note"] = "silences never hold a resolve back"
            return
        holding = self.silences.matching(finding, self.now)
        if holding is None:
            if finding.custom_action is not None:
                record["silences_note"] = "sent by hand with the custom action: never silenced"
            return
        record["silenced_by"] = {"id": holding.id, "until": holding.until}
        decision["reason"] += f"; silenced by {holding.id} until {holding.until}"
        record["sends_note"] = (
            f"silenced by {holding.id} until {holding.until}: nothing is sent now; the episode is tracked and owes "
            f"the {decision['action']}, sent when the silence ends if the finding is still active and still pages"
        )
        record["sends"] = []

    def _in_scope(self, finding: Finding) -> str:
        policy = self.policy
        if policy.all_accounts:
            detail = f'account {finding.account}: every account belongs to {policy.environment} (accounts: ["*"])'
        else:
            detail = f"account {finding.account} is one of {policy.environment}'s accounts"
        if finding.custom_action is not None and policy.custom_action is not None:
            detail += f"; custom action {finding.custom_action_arn} is {policy.environment}'s own"
        return detail

    def _custom_action(self, finding: Finding) -> dict[str, Any] | None:
        ours = self.policy.custom_action
        if finding.custom_action is None or ours is None:
            return None
        applies = ours.mode != "policy" and not finding.is_resolved
        if applies:
            detail = f"sent by hand with {ours.id} (mode {ours.mode}): {ours.mode}, whatever the rules say"
        elif ours.mode == "policy":
            detail = f"sent by hand with {ours.id} (mode policy): the rules decide, as for any finding"
        else:
            detail = f"sent by hand with {ours.id} (mode {ours.mode}), but resolved: the custom action sends nothing"
        return {"id": ours.id, "name": finding.custom_action, "mode": ours.mode, "applies": applies, "detail": detail}

    def _sends(self, finding: Finding, final: PolicyDecision, key: str) -> tuple[list[dict[str, Any]], str]:
        """The Events v2 bodies the router would send for this finding seen for the first time (no dedup state)."""
        policy = self.policy
        vulnerability = self.router.folded_vulnerability(finding)
        decision = decide(
            finding,
            final,
            None,
            key,
            self.now,
            policy.dedup,
            policy.function.timeout_seconds,
            folded=vulnerability is not None,
        )
        if finding.is_resolved:
            # Resolutions are handled before the policy's decision: an open incident of this key (and its
            # escalations) is resolved, whatever the rules say; with none open, nothing is sent.
            ctx = NotifyContext(policy.environment, finding, key, decision.reason, 0)
            body = build_event(resolve(key, finding.severity), ctx, self.routing_key)
            note = (
                f"resolved in Security Hub, so nothing is triggered whatever the decision; POST {policy.notifier.events_url} "
                "only if an incident is open for this dedup key, to resolve it"
            )
            return [body], note
        if not decision.notifications:
            return [], f"{decision.outcome}: nothing is sent"
        ctx = self.router.context(finding, key, decision.reason, decision.new_state, (), vulnerability)
        if decision.new_state is None:
            ctx = dataclasses.replace(ctx, episode=1)
        bodies = [build_event(n, ctx, self.routing_key) for n in decision.notifications]
        note = (
            f"{decision.outcome} as a new problem, POST {policy.notifier.events_url} (a repeat of an open problem "
            "sends nothing more; a rise in severity escalates; a storm of new problems is grouped)"
        )
        return bodies, note


# ------------------------------------------------------------------------------------------ text


def _mark(matched: bool) -> str:
    return "✓" if matched else "✗"


def _step_lines(step: dict[str, Any]) -> list[str]:
    what = f"{step['kind']} {step['name']}"
    if step["kind"] == "rule":
        what += f" ({step['action']}{', ' + step['urgency'] + ' urgency' if step['action'] == 'page' else ''})"
    if step["status"] == "expired":
        would = "would have matched" if step["matched"] else "would not have matched anyway"
        head = f"{what}: expired {step['expires']}, no longer applies ({would})"
    elif step["status"] == "decided":
        head = f"{what}: MATCHED, decides"
    else:
        head = f"{what}: no match"
    lines = [head]
    if not step["conditions"]:
        lines.append(f"  {_mark(True)} (no match conditions: every finding)")
    lines.extend(f"  {_mark(c['matched'])} {c['field']}: {c['detail']}" for c in step["conditions"])
    return lines


def _silence_lines(check: dict[str, Any]) -> list[str]:
    what = f"silence {check['id']} ({check['matchers']}, {check['state']} until {check['ends_at']}, by {check['created_by']})"
    if check["holds"]:
        head = f"{what}: MATCHED, holds it back"
    elif check["matched"]:
        head = f"{what}: would match, but is {check['state']}"
    else:
        head = f"{what}: no match"
    return [head, *(f"  {_mark(c['matched'])} {c['field']}: {c['detail']}" for c in check["conditions"])]


def render_text(record: dict[str, Any]) -> str:
    f = record["finding"]
    flags = [f["format"]]
    if f["sample"]:
        flags.append("sample finding")
    if f["resolved"]:
        states = {"workflow_status": "workflow", "record_state": "record", "compliance_status": "compliance"}
        flags.append("resolved in Security Hub: " + ", ".join(f"{v} {f[k]}" for k, v in states.items() if f[k]))
    if f["custom_action"]:
        flags.append(f"custom action {f['custom_action']!r}")
    lines = [
        f"finding {f['id']}",
        f"  from {record['where']}",
        f"  {f['product']} {f['severity']} in {f['account']}/{f['region']} ({', '.join(flags)})",
        f"  title: {clip(f['title'], 200)}",
        f"policy {record['environment']} at {record['evaluated_at']}",
    ]
    scope = record["scope"]
    lines.append(f"scope: {'in scope' if scope['in_scope'] else 'OUT OF SCOPE'}: {scope['detail']}")
    if scope["in_scope"]:
        for step in record["steps"]:
            lines.extend(_step_lines(step))
        if record["not_reached"]:
            lines.append(f"not evaluated (the first match decides): {', '.join(record['not_reached'])}")
        if record["default_action"] is not None:
            lines.append(f"no suppression or rule decided: default_action {record['default_action']}")
        custom = record["custom_action"]
        if custom is not None:
            lines.append(f"custom action {custom['id']}: {custom['detail']}")
    d = record["decision"]
    urgency = f", {d['urgency']} urgency" if d["action"] == "page" else ""
    for check in record.get("silences", []):
        lines.extend(_silence_lines(check))
    if record.get("silences_note"):
        lines.append(f"silences: {record['silences_note']}")
    lines.append(f"decision: {d['action'].upper()}{urgency} — {d['reason']}")
    if record.get("shadow"):
        shadow = record["shadow"]
        lines.append(f"shadow decision (recorded apart, never sent): {shadow['action'].upper()} — {shadow['reason']}")
    if "dedup_key" in record:
        lines.append(f"dedup key: {record['dedup_key']}")
    if record.get("folded"):
        lines.append(f"folded: {record['folded']['detail']}")
    if record["sends"]:
        lines.append(f"sends: {record['sends_note']}:")
        for body in record["sends"]:
            lines.extend("  " + line for line in json.dumps(body, indent=2, ensure_ascii=False).splitlines())
    else:
        lines.append(f"sends: nothing ({record['sends_note']})")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ the command


def _documents(path: Path | str, stdin: TextIO) -> list[tuple[str, Any]]:
    """(position, parsed JSON or the error of that line) of one input; raises when the whole input is unusable."""
    source = cast(Path, _StdinFile(stdin)) if str(path) == STDIN else Path(path)
    return list(read_documents(source))


def _findings(where: str, doc: Any, problems: list[str]) -> Iterator[Finding]:
    if isinstance(doc, Exception):
        problems.append(f"{where}: {doc}")
        return
    try:
        normalized = normalize_document(doc)
    except FindingError as exc:
        problems.append(f"{where}: {exc}")
        return
    problems.extend(f"{where}: {error}" for error in normalized.errors)
    yield from normalized.findings


def explain_command(
    policy: Policy,
    paths: list[Path | str],
    *,
    output: str = "text",
    out: TextIO,
    err: TextIO,
    now: dt.datetime | None = None,
    stdin: TextIO | None = None,
    silences: list[Silence] | tuple[Silence, ...] = (),
) -> int:
    """Explain every finding of `paths` (`-`: standard input) to `out`, as text blocks or JSON lines. Inputs that
    cannot be read or parsed are reported on `err` (file and position) and the others still explained.
    Exit status: 0, or 2 when some input could not be explained."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    explainer = Explainer(policy, now or dt.datetime.now(dt.UTC), tuple(silences))
    failed = False
    first = True
    for path in paths:
        problems: list[str] = []
        try:
            documents = _documents(path, stdin or sys.stdin)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            documents = []
            problems.append(f"{'<stdin>' if str(path) == STDIN else path}: {exc}")
        for where, doc in documents:
            for finding in _findings(where, doc, problems):
                record = explainer.explain(finding, where)
                if output == "json":
                    out.write(json.dumps(record) + "\n")
                else:
                    out.write(("" if first else "\n") + render_text(record) + "\n")
                first = False
        for problem in problems:
            err.write(f"error: {problem}\n")
        failed = failed or bool(problems)
    return 2 if failed else 0
