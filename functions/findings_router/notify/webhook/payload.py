"""The body of the signed generic webhook, schema version 1 (pure). docs/webhook-schema.md is its reference.

    {"type": "finding.triggered", "version": "1", "timestamp": "2026-11-27T10:00:00Z", "data": {...}}

`type` is one of `TYPES`: a finding's incident (pages, notifications and escalations alike), a storm's, findings-router's
own meta-alerts (`meta.storm`, `meta.alarm`), and `incident.resolved` for every resolve (by incident key; the finding
is included when the router has it at hand). Receivers keep one record per `data.incident_key`: a trigger opens or
refreshes it, `incident.resolved` closes it. The whole body stays under 20 KB (Standard Webhooks' advice): long texts
are cut first, then lists, then the finding is reduced to what identifies it (`data.truncated` then says so).
"""

from __future__ import annotations

import json
import time
from typing import Any

from findings_router.domain.model import Finding
from findings_router.domain.notifications import FoldedResources, Notification, NotifyContext
from findings_router.notify.links import console_url, resources_phrase
from findings_router.notify.links import finding_links as links_of

SCHEMA_VERSION = "1"
MAX_BODY_BYTES = 20 * 1024
TYPES = ("finding.triggered", "storm.triggered", "meta.storm", "meta.alarm", "incident.resolved")
SUMMARY_MAX = 1024
TEXT_MAX = 1024
DIGEST_TEXT_MAX = 12 * 1024
DESCRIPTION_MAX = 4000
URL_MAX = 4096
MAX_RESOURCES = 20
MAX_TAGS = 20
MAX_LIST = 20


def _cut(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_str(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iso_timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def event_type(n: Notification) -> str:
    if n.kind == "resolve":
        return "incident.resolved"
    if n.meta is not None:
        return f"meta.{n.meta.kind}"  # meta.alarm, meta.storm, meta.digest
    if n.storm is not None:
        return "storm.triggered"
    return "finding.triggered"


def summary(n: Notification, context: NotifyContext) -> str:
    """One line for people: what PagerDuty would show as the incident's title."""
    env, finding = context.environment, context.finding
    if n.kind == "resolve":
        about = f": {finding.title}" if finding is not None else ""
        return _cut_str(f"[{env}] resolved {n.key}{about}", SUMMARY_MAX)
    if n.meta is not None and n.meta.kind == "alarm":
        return _cut_str(f"[{env}] findings-router itself: {n.meta.name} in ALARM: {n.meta.reason}", SUMMARY_MAX)
    if n.meta is not None and n.meta.kind == "digest":
        return _cut_str(n.meta.reason, SUMMARY_MAX)
    if finding is None:
        raise ValueError(f"a trigger of {n.key} needs the finding it is about")
    if n.storm is not None:
        if n.meta is not None:
            text = f"[{env}] findings-router is in a finding storm: {n.storm.group} passed its threshold"
        else:
            text = (
                f"[{env}] STORM: {n.storm.count}+ new {finding.severity.value} findings in "
                f"{n.storm.window_minutes} min for {n.storm.group} (e.g. {finding.title})"
            )
        return _cut_str(text, SUMMARY_MAX)
    prefix = f"[{env}] "
    if n.escalated_from is not None and n.escalated_from is not n.severity:
        prefix += f"[ESCALATED {n.escalated_from.value}→{n.severity.value}] "
    cvss = f" ({finding.max_cvss:.1f} CVSS)" if finding.max_cvss is not None else ""
    text = (
        f"{prefix}{n.severity.value}{cvss} {finding.product_name}: {finding.title} "
        f"on {resources_phrase(finding, context.folded)} in {finding.account}/{finding.region}"
    )
    return _cut_str(text, SUMMARY_MAX)


def finding_links(finding: Finding) -> list[dict[str, str]]:
    return [{"href": _cut_str(x["href"], URL_MAX), "text": _cut_str(x["text"], 256)} for x in links_of(finding)]


def finding_data(finding: Finding) -> dict[str, Any]:
    """The normalized finding, as receivers get it (long texts and lists already capped)."""
    return {
        "id": finding.id,
        "format": finding.format.value,
        "product": _cut_str(finding.product_name, TEXT_MAX),
        "company": _cut_str(finding.company_name, TEXT_MAX),
        "product_arn": _cut_str(finding.product_arn, TEXT_MAX),
        "generator_id": _cut_str(finding.generator_id, TEXT_MAX),
        "control_id": _cut(finding.control_id, TEXT_MAX),
        "account": finding.account,
        "region": finding.region,
        "title": _cut_str(finding.title, TEXT_MAX),
        "description": _cut_str(finding.description, DESCRIPTION_MAX),
        "severity": finding.severity.value,
        "severity_score": finding.severity_score,
        "types": [_cut_str(t, TEXT_MAX) for t in finding.types[:MAX_LIST]],
        "resources": [
            {
                "type": _cut_str(r.type, TEXT_MAX),
                "id": _cut_str(r.id, TEXT_MAX),
                "region": r.region,
                "tags": {_cut_str(k, 128): _cut_str(v, 256) for k, v in r.tags[:MAX_TAGS]},
            }
            for r in finding.resources[:MAX_RESOURCES]
        ],
        "resource_count": len(finding.resources),
        "cve_ids": [_cut_str(c, 64) for c in finding.cve_ids[:50]],
        "max_cvss": finding.max_cvss,
        "workflow_status": finding.workflow_status,
        "record_state": finding.record_state,
        "compliance_status": finding.compliance_status,
        "first_observed_at": finding.first_observed_at,
        "last_observed_at": finding.last_observed_at,
        "updated_at": finding.updated_at,
        "source_url": _cut(finding.source_url, URL_MAX),
        "remediation": {
            "text": _cut(finding.remediation_text, TEXT_MAX),
            "url": _cut(finding.remediation_url, URL_MAX),
        },
        "console_url": console_url(finding),
        "sample": finding.sample,
    }


def affected_data(folded: FoldedResources, finding: Finding | None) -> dict[str, Any]:
    """`data.affected`: a folded vulnerability episode (dedup.fold_vulnerabilities) and its affected resources as
    known when the notification was sent (only in the triggers of such an episode)."""
    shown, more = folded.listed(MAX_RESOURCES)
    return {
        "vulnerability": _cut_str(folded.vulnerability, 128),
        "fold": folded.fold,
        "resources": [_cut_str(r, TEXT_MAX) for r in shown],
        "count": folded.count,
        "more": more,
        "open_findings": folded.open_findings,
        "findings_capped": folded.findings_capped,
        "command": _cut_str(folded.command, TEXT_MAX),
        "exploit_available": finding.exploit_available if finding is not None else None,
        "fix_available": finding.fix_available if finding is not None else None,
        "max_epss": finding.max_epss if finding is not None else None,
    }


def build_body(n: Notification, context: NotifyContext, sent_at: float) -> dict[str, Any]:
    """The webhook body of one notification, decided at `sent_at` (unix seconds), within `MAX_BODY_BYTES`."""
    finding = context.finding
    data: dict[str, Any] = {
        "environment": context.environment,
        "incident_key": n.key,
        "dedup_key": context.dedup_key,
        "kind": n.kind,
        "severity": n.severity.value,
        "urgency": n.urgency,
        "escalated_from": n.escalated_from.value if n.escalated_from is not None else None,
        "decision": _cut_str(context.reason, TEXT_MAX),
        "episode": context.episode,
        "summary": summary(n, context),
        "finding": finding_data(finding) if finding is not None else None,
        "storm": None,
        "meta": None,
        "links": finding_links(finding) if finding is not None else [],
        "truncated": None,
    }
    if n.storm is not None:
        s = n.storm
        data["storm"] = {
            "key": s.key,
            "group": _cut_str(s.group, TEXT_MAX),
            "count": s.count,
            "window_minutes": s.window_minutes,
            "samples": [_cut_str(x, TEXT_MAX) for x in s.samples[:MAX_LIST]],
        }
    if context.folded is not None and n.kind == "trigger" and n.storm is None and n.meta is None:
        data["affected"] = affected_data(context.folded, finding)
    if n.meta is not None:
        m = n.meta
        data["meta"] = {
            "kind": m.kind,
            "name": _cut_str(m.name, TEXT_MAX),
            "reason": _cut_str(m.reason, TEXT_MAX),
            # A digest's body is its content (one line per CVE, capped at 25): it gets the room of a whole body.
            "description": _cut_str(m.description, DIGEST_TEXT_MAX if m.kind == "digest" else TEXT_MAX),
            "account": m.account,
            "region": m.region,
            "changed_at": m.changed_at,
            "runbook": "docs/runbook.md#alarms" if m.kind == "alarm" else None,
        }
    body = {"type": event_type(n), "version": SCHEMA_VERSION, "timestamp": iso_timestamp(sent_at), "data": data}
    return fit(body)


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON, ASCII only (any text survives any receiver's decoder)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def fit(body: dict[str, Any], limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """`body` within `limit` bytes: long texts and lists first, then the finding down to what identifies it."""
    if len(encode(body)) <= limit:
        return body
    data = body["data"]
    data["truncated"] = f"cut to fit the {limit // 1024} KB body limit; the full finding is in Security Hub"
    finding = data["finding"]
    if finding is not None:
        finding["description"] = _cut_str(finding["description"], 1000)
        finding["resources"] = [
            {"type": r["type"][:255], "id": r["id"][:255], "region": r["region"], "tags": {}}
            for r in finding["resources"][:5]
        ]
        finding["types"] = [t[:255] for t in finding["types"][:5]]
        finding["cve_ids"] = finding["cve_ids"][:10]
        finding["remediation"]["text"] = _cut(finding["remediation"]["text"], 500)
    if data["storm"] is not None:
        data["storm"]["samples"] = [x[:255] for x in data["storm"]["samples"][:5]]
    if data.get("affected") is not None:
        affected = data["affected"]
        affected["more"] += max(len(affected["resources"]) - 5, 0)
        affected["resources"] = [x[:255] for x in affected["resources"][:5]]
    if len(encode(body)) <= limit:
        return body
    if finding is not None:
        data["finding"] = {
            "id": _cut_str(finding["id"], TEXT_MAX),
            "account": _cut_str(finding["account"], 64),
            "region": _cut_str(finding["region"], 64),
            "product": _cut_str(finding["product"], 256),
            "title": _cut_str(finding["title"], 256),
            "severity": finding["severity"],
            "severity_score": finding["severity_score"],
            "resource_count": finding["resource_count"],
            "console_url": _cut_str(finding["console_url"], URL_MAX),
        }
        data["links"] = data["links"][:1]
    data["summary"] = _cut_str(data["summary"], 512)
    if data["meta"] is not None:
        data["meta"] = {k: _cut(v, 512) if isinstance(v, str) else v for k, v in data["meta"].items()}
    return body
