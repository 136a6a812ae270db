"""PagerDuty Events API v2 payloads (pure): a finding's page, a storm incident, a meta-alert, a resolve.

Contract (PagerDuty developer docs, api-schema events-v2): POST JSON to /v2/enqueue with routing_key,
event_action (trigger|acknowledge|resolve), dedup_key (≤255 chars), payload {summary ≤1024, source, severity
critical|error|warning|info, timestamp, component, group, class, custom_details}, links, client, client_url.
The whole event must stay under 512 KB; 202 accepted; 400 invalid (never retry); 429 and 5xx retry with backoff.

Urgency: the Events API has no urgency field. Pages go out as `critical`/`error`, notifications as
`warning`/`info`; the PagerDuty service is set to "urgency based on alert severity" (docs/deploy.md) so the first
pair pages (high urgency) and the second does not wake anyone (low urgency).
"""

from __future__ import annotations

import json
from typing import Any

from findings_router.domain.model import Finding, Severity
from findings_router.domain.notifications import MetaAlert, Notification, NotifyContext, StormInfo
from findings_router.notify.links import console_url, finding_links, folded_details, resources_phrase

SUMMARY_MAX = 1024
SOURCE_MAX = 255
DESCRIPTION_MAX = 1500
MAX_RESOURCES_IN_DETAILS = 10
# PagerDuty refuses an event above 512 KB with a 400, and a refused page is a lost page: stay under it.
MAX_EVENT_BYTES = 512 * 1024
CLIENT = "findings-router"


def pd_severity(severity: Severity, urgency: str) -> str:
    if urgency == "high":
        return "critical" if severity is Severity.CRITICAL else "error"
    return "warning" if severity in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM) else "info"


def meta_severity(urgency: str) -> str:
    """A router in trouble may be losing findings: as urgent as the worst finding (unless the environment only wants
    a low-urgency notification, e.g. development)."""
    return "critical" if urgency == "high" else "warning"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resolve_event(routing_key: str, dedup_key: str) -> dict[str, Any]:
    """The Events v2 body that resolves the alert of `dedup_key` (a no-op at PagerDuty when none is open)."""
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}


def _trigger(n: Notification, routing_key: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The Events v2 envelope of every trigger (a finding's, a storm's, a meta-alert)."""
    payload["summary"] = _truncate(payload["summary"], SUMMARY_MAX)
    return {"routing_key": routing_key, "event_action": "trigger", "dedup_key": n.key, "payload": payload, **extra}


def _own(context: NotifyContext, summary: str, severity: str, group: str, klass: str) -> dict[str, Any]:
    """The payload fields of an incident about findings-router itself or its grouping (storms, meta-alerts)."""
    return {
        "summary": summary,
        "source": f"findings-router-{context.environment}",
        "severity": severity,
        "component": "findings-router",
        "group": group,
        "class": klass,
    }


def build_event(n: Notification, context: NotifyContext, routing_key: str) -> dict[str, Any]:
    """The Events v2 body for one notification. Everything an operator woken at night needs is in the page itself."""
    if n.kind == "resolve":
        return resolve_event(routing_key, n.key)
    if n.meta is not None and n.meta.kind == "alarm":
        return _alarm_event(n, n.meta, context, routing_key)
    if n.meta is not None and n.meta.kind == "digest":
        return _digest_event(n, n.meta, context, routing_key)
    finding = context.finding
    if finding is None:
        raise ValueError(f"a trigger of {n.key} needs the finding it is about")
    if n.storm is not None:
        return _storm_event(n, n.storm, finding, context, routing_key)
    return fit(_finding_event(n, finding, context, routing_key))


def _finding_event(n: Notification, finding: Finding, context: NotifyContext, routing_key: str) -> dict[str, Any]:
    resource = finding.primary_resource_id
    prefix = f"[{context.environment}] "
    if n.escalated_from is not None and n.escalated_from is not n.severity:
        prefix += f"[ESCALATED {n.escalated_from.value}→{n.severity.value}] "
    extra = f" ({finding.max_cvss:.1f} CVSS)" if finding.max_cvss is not None else ""
    summary = (
        f"{prefix}{n.severity.value}{extra} {finding.product_name}: {finding.title} "
        f"on {resources_phrase(finding, context.folded)} in {finding.account}/{finding.region}"
    )
    link = console_url(finding)
    links = finding_links(finding)
    details = _details(finding, context, link)

    payload: dict[str, Any] = {
        "summary": summary,
        "source": _truncate(resource, SOURCE_MAX),
        "severity": pd_severity(n.severity, n.urgency),
        "component": _truncate(finding.resources[0].type if finding.resources else "AwsAccount", 255),
        "group": finding.account,
        "class": _truncate(finding.control_id or (finding.types[0] if finding.types else finding.product_name), 255),
        "custom_details": details,
    }
    timestamp = finding.last_observed_at or finding.updated_at
    if timestamp:
        payload["timestamp"] = timestamp
    return _trigger(n, routing_key, payload, links=links, client=CLIENT, client_url=link)


def _details(finding: Finding, context: NotifyContext, link: str) -> dict[str, Any]:
    """Everything an operator woken at night needs, in the page itself."""
    details: dict[str, Any] = {
        "environment": context.environment,
        "decision": context.reason,
        "severity": f"{finding.severity.value} ({finding.severity_score:g})",
        "product": f"{finding.company_name} {finding.product_name}".strip(),
        "account": finding.account,
        "region": finding.region,
        "title": finding.title,
        "description": _truncate(finding.description, DESCRIPTION_MAX),
        "resources": [
            {"type": r.type, "id": r.id, **({"tags": dict(r.tags)} if r.tags else {})}
            for r in finding.resources[:MAX_RESOURCES_IN_DETAILS]
        ],
        "resource_count": len(finding.resources),
        "finding_id": finding.id,
        "product_arn": finding.product_arn,
        "generator_id": finding.generator_id,
        "types": list(finding.types),
        "security_hub_console": link,
        "dedup_key": context.dedup_key,
        "episode": context.episode,
    }
    if finding.control_id:
        details["control_id"] = finding.control_id
    if finding.cve_ids:
        details["cve_ids"] = list(finding.cve_ids[:20])
    if finding.max_cvss is not None:
        details["max_cvss"] = finding.max_cvss
    if finding.remediation_text or finding.remediation_url:
        details["remediation"] = " ".join(x for x in (finding.remediation_text, finding.remediation_url) if x)
    for name in ("first_observed_at", "last_observed_at", "compliance_status", "workflow_status"):
        value = getattr(finding, name)
        if value:
            details[name] = value
    if context.folded is not None:
        details.update(folded_details(finding, context.folded, MAX_RESOURCES_IN_DETAILS))
    return details


def _storm_event(
    n: Notification, storm: StormInfo, finding: Finding, context: NotifyContext, routing_key: str
) -> dict[str, Any]:
    """One incident for a flood of findings of one group, or the router's own storm meta-alert."""
    if n.meta is not None:
        summary = (
            f"[{context.environment}] findings-router is in a finding storm: {storm.group} passed its threshold; "
            "findings are being grouped per storm incident"
        )
        severity, klass = meta_severity(n.urgency), "meta-alert"
    else:
        summary = (
            f"[{context.environment}] STORM: {storm.count}+ new {finding.severity.value} findings in "
            f"{storm.window_minutes} min for {storm.group} (e.g. {finding.title})"
        )
        severity, klass = pd_severity(n.severity, n.urgency), "storm"
    payload = _own(context, summary, severity, finding.account, klass)
    payload["custom_details"] = {
        "environment": context.environment,
        "group": storm.group,
        "new_problems_in_window": storm.count,
        "window_minutes": storm.window_minutes,
        "sample_resources": list(storm.samples),
        "example_finding_id": finding.id,
        "example_title": finding.title,
        "example_console": console_url(finding),
        "note": "Every finding of the group is still tracked and deduplicated individually; "
        "resolve this incident when the flood is handled.",
    }
    links = [{"href": console_url(finding), "text": "An example finding in Security Hub"}]
    return _trigger(n, routing_key, payload, links=links, client=CLIENT)


def _alarm_event(n: Notification, alarm: MetaAlert, context: NotifyContext, routing_key: str) -> dict[str, Any]:
    """One of findings-router's own CloudWatch alarms in ALARM."""
    summary = f"[{context.environment}] findings-router itself: {alarm.name} in ALARM: {alarm.reason}"
    payload = _own(context, summary, meta_severity(n.urgency), alarm.account or context.environment, "meta-alert")
    payload["custom_details"] = {
        "alarm": alarm.name,
        "description": alarm.description,
        "reason": alarm.reason,
        "account": alarm.account,
        "region": alarm.region,
        "changed_at": alarm.changed_at,
        "runbook": "docs/runbook.md#alarms",
    }
    return _trigger(n, routing_key, payload, client=CLIENT)


def _digest_event(n: Notification, digest: MetaAlert, context: NotifyContext, routing_key: str) -> dict[str, Any]:
    """A scheduled report (the PSIRT digest): its summary line, and its body one line per entry."""
    payload = _own(context, digest.reason, pd_severity(n.severity, n.urgency), context.environment, digest.name)
    payload["custom_details"] = {
        "environment": context.environment,
        "report": digest.name,
        "period_end": digest.changed_at,
        "lines": digest.description.splitlines(),
    }
    # The body is capped (psirt.report.digest_text: 25 lines, then "and N more"): far below the event size limit.
    return _trigger(n, routing_key, payload, client=CLIENT)


def event_bytes(body: dict[str, Any]) -> int:
    return len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def fit(body: dict[str, Any], limit: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    """`body`, made to fit PagerDuty's size limit: resource tags go first, then the lists, then all details but
    the essentials (the page itself, its summary and links, always goes out)."""
    if event_bytes(body) <= limit:
        return body
    details = body["payload"]["custom_details"]
    details["resources"] = [{"type": r["type"], "id": r["id"][:SOURCE_MAX]} for r in details.get("resources", [])]
    if "affected_resources" in details:
        details["affected_resources"] = [str(v)[:SOURCE_MAX] for v in details["affected_resources"][:5]]
    for name in ("types", "cve_ids"):
        if name in details:
            details[name] = [str(v)[:SOURCE_MAX] for v in details[name][:5]]
    details["truncated"] = f"details cut to fit PagerDuty's {limit // 1024} KB event limit; see Security Hub"
    if event_bytes(body) <= limit:
        return body
    keep = (
        *("environment", "decision", "severity", "account", "region", "finding_id", "dedup_key", "episode"),
        *("vulnerability", "affected_resource_count", "all_affected_resources"),  # a folded vulnerability episode's
    )
    body["payload"]["custom_details"] = {k: details[k] for k in (*keep, "truncated") if k in details}
    return body
