"""PagerDuty Events API v2: building events (pure) and delivering them (`PagerDutyNotifier`).

Contract (PagerDuty developer docs, api-schema events-v2): POST JSON to /v2/enqueue with routing_key,
event_action (trigger|acknowledge|resolve), dedup_key (≤255 chars), payload {summary ≤1024, source, severity
critical|error|warning|info, timestamp, component, group, class, custom_details}, links, client, client_url.
202 accepted; 400 invalid (never retry); 429 and 5xx retry with backoff.

Urgency: the Events API has no urgency field. Pages go out as `critical`/`error`, notifications as
`warning`/`info`; the PagerDuty service is set to "urgency based on alert severity" (docs/deploy.md) so the first
pair pages (high urgency) and the second does not wake anyone (low urgency).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from findings_router.domain.alarms import AlarmChange
from findings_router.domain.keys import meta_dedup_key
from findings_router.domain.model import Finding, Severity
from findings_router.domain.notifications import Send


def meta_event(change: AlarmChange, environment: str, routing_key: str, mode: str = "page") -> dict[str, Any] | None:
    """The Events v2 body for an alarm change; None for states that do not page or resolve, or mode `off`."""
    if mode == "off":
        return None
    key = meta_dedup_key(change.arn)
    if change.state == "OK":
        return resolve_event(routing_key, key)
    if change.state != "ALARM":
        return None
    summary = f"[{environment}] findings-router itself: {change.name} in ALARM: {change.reason}"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": _truncate(summary, SUMMARY_MAX),
            "source": f"findings-router-{environment}",
            # A router in trouble may be losing findings: as urgent as the worst finding (unless the
            # environment only wants a low-urgency notification, e.g. development).
            "severity": "critical" if mode == "page" else "warning",
            "component": "findings-router",
            "group": change.account or environment,
            "class": "meta-alert",
            "custom_details": {
                "alarm": change.name,
                "description": change.description,
                "reason": change.reason,
                "account": change.account,
                "region": change.region,
                "changed_at": change.changed_at,
                "runbook": "docs/runbook.md#alarms",
            },
        },
        "client": "findings-router",
    }


logger = logging.getLogger(__name__)


SUMMARY_MAX = 1024


SOURCE_MAX = 255


DESCRIPTION_MAX = 1500


MAX_RESOURCES_IN_DETAILS = 10


CLIENT = "findings-router"


@dataclass(frozen=True, slots=True)
class NotifyContext:
    environment: str
    dedup_key: str
    reason: str
    episode: int


def pd_severity(severity: Severity, urgency: str) -> str:
    if urgency == "high":
        return "critical" if severity is Severity.CRITICAL else "error"
    return "warning" if severity in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM) else "info"


def console_url(finding: Finding) -> str:
    """A Security Hub console link filtered to this very finding (not only to its control)."""
    region = finding.region
    base = f"https://{region}.console.aws.amazon.com/securityhub"
    if finding.format == "ocsf":
        search = "finding_info.uid=" + quote(f"\\operator\\:EQUALS\\:{finding.id}", safe="")
        return f"{base}/v2/home?region={region}#/findings?search={quote(search, safe='')}"
    search = "Id=" + quote(f"\\operator\\:EQUALS\\:{finding.id}", safe="")
    return f"{base}/home?region={region}#/findings?search={quote(search, safe='')}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def resolve_event(routing_key: str, dedup_key: str) -> dict[str, Any]:
    """The Events v2 body that resolves the alert of `dedup_key` (a no-op at PagerDuty when none is open)."""
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}


def build_event(send: Send, finding: Finding, ctx: NotifyContext, routing_key: str) -> dict[str, Any]:
    """The Events v2 body for one `Send`. Everything an operator woken at night needs is in the page itself."""
    if send.event_action == "resolve":
        return resolve_event(routing_key, send.incident_key)
    if send.storm is not None:
        return build_storm_event(send, finding, ctx, routing_key)

    resource = finding.primary_resource_id
    prefix = f"[{ctx.environment}] "
    if send.escalated_from is not None and send.escalated_from is not send.severity:
        prefix += f"[ESCALATED {send.escalated_from.value}→{send.severity.value}] "
    extra = f" ({finding.max_cvss:.1f} CVSS)" if finding.max_cvss is not None else ""
    summary = (
        f"{prefix}{send.severity.value}{extra} {finding.product_name}: {finding.title} "
        f"on {resource} in {finding.account}/{finding.region}"
    )
    link = console_url(finding)
    links = [{"href": link, "text": "This finding in Security Hub"}]
    if finding.control_id:
        links.append(
            {
                "href": f"https://{finding.region}.console.aws.amazon.com/securityhub/home?region={finding.region}"
                f"#/controls/{quote(finding.control_id, safe='')}",
                "text": f"Control {finding.control_id}",
            }
        )
    if finding.remediation_url:
        links.append({"href": finding.remediation_url, "text": "Remediation"})
    if finding.source_url:
        links.append({"href": finding.source_url, "text": f"{finding.product_name} console"})

    details: dict[str, Any] = {
        "environment": ctx.environment,
        "decision": ctx.reason,
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
        "dedup_key": ctx.dedup_key,
        "episode": ctx.episode,
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

    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": send.incident_key,
        "payload": {
            "summary": _truncate(summary, SUMMARY_MAX),
            "source": _truncate(resource, SOURCE_MAX),
            "severity": pd_severity(send.severity, send.urgency),
            "component": _truncate(finding.resources[0].type if finding.resources else "AwsAccount", 255),
            "group": finding.account,
            "class": _truncate(
                finding.control_id or (finding.types[0] if finding.types else finding.product_name), 255
            ),
            "custom_details": details,
        },
        "links": links,
        "client": CLIENT,
        "client_url": link,
    }
    timestamp = finding.last_observed_at or finding.updated_at
    if timestamp:
        body["payload"]["timestamp"] = timestamp
    return body


def build_storm_event(send: Send, finding: Finding, ctx: NotifyContext, routing_key: str) -> dict[str, Any]:
    """One incident for a flood of findings of one group, or the router's own storm meta-alert."""
    storm = send.storm
    assert storm is not None
    if storm.meta:
        summary = (
            f"[{ctx.environment}] findings-router is in a finding storm: {storm.group} passed its threshold; "
            "findings are being grouped per storm incident"
        )
        severity, klass = ("critical" if send.urgency == "high" else "warning"), "meta-alert"
    else:
        summary = (
            f"[{ctx.environment}] STORM: {storm.count}+ new {finding.severity.value} findings in {storm.window_minutes} min "
            f"for {storm.group} (e.g. {finding.title})"
        )
        severity, klass = pd_severity(send.severity, send.urgency), "storm"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": send.incident_key,
        "payload": {
            "summary": _truncate(summary, SUMMARY_MAX),
            "source": f"findings-router-{ctx.environment}",
            "severity": severity,
            "component": "findings-router",
            "group": finding.account,
            "class": klass,
            "custom_details": {
                "environment": ctx.environment,
                "group": storm.group,
                "new_problems_in_window": storm.count,
                "window_minutes": storm.window_minutes,
                "sample_resources": list(storm.samples),
                "example_finding_id": finding.id,
                "example_title": finding.title,
                "example_console": console_url(finding),
                "note": "Every finding of the group is still tracked and deduplicated individually; "
                "resolve this incident when the flood is handled.",
            },
        },
        "links": [{"href": console_url(finding), "text": "An example finding in Security Hub"}],
        "client": CLIENT,
    }
