"""Jira Service Management (JSM) Ops alert requests (pure): a finding's alert, a storm's, a meta-alert, a close.

Contract (developer.atlassian.com JSM Ops "integration events" API; field limits as documented for the Opsgenie Alert
API it succeeds, shared/reference/contracts.md §5 and contracts-2.md §3.1):

* create: ``POST {base}/jsm/ops/integration/v2/alerts``, ``Authorization: GenieKey <api key>``, JSON body with
  ``message`` (required, ≤130 characters), ``alias`` (the dedup key, ≤512), ``description`` (≤15000), ``tags``
  (≤20 × ≤50), ``details`` (a map of *string* values, ≤8000 characters in all), ``entity`` (≤512), ``source`` (≤100),
  ``priority`` (P1–P5), ``user`` (≤100), ``note`` (≤25000);
* close: ``POST {base}/jsm/ops/integration/v2/alerts/{alias}/close?identifierType=alias`` with ``{source, user, note}``;
* both answer 202 ``{result, took, requestId}``: the request is processed asynchronously.

While an alert with the same alias is open, a create only increments its count; after a close, the same alias opens
a new alert. The alias is the incident key (`Notification.key`), so every send of one incident lands on one alert and
the close finds it; the JSM outgoing webhook names the alias back (`alert.alias`) for acknowledgements.

Priority: the finding's severity gives the base (CRITICAL→P1, HIGH→P2, MEDIUM→P3, LOW→P4, INFORMATIONAL→P5); the
router's urgency then keeps it in its band, as PagerDuty's severities do (notify/pagerduty/events.py): a page (high
urgency) is never below P2, a notification (low urgency) never above P3. So a team whose JSM alert policy pages on
P1–P2 is woken for exactly what the router decided to page (a MEDIUM-label finding with a CVSS 9.8 paged by the
`critical-cvss-any-label` rule goes out as P2), and a low-urgency notification of a CRITICAL finding is a P3:

    severity       high urgency (page)   low urgency (notify)
    CRITICAL       P1                    P3
    HIGH           P2                    P3
    MEDIUM         P2                    P3
    LOW            P2                    P4
    INFORMATIONAL  P2                    P5

Meta-alerts (findings-router itself) are P1 when urgent, else P3, like PagerDuty's `meta_severity`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from findings_router.domain.model import Finding, Severity
from findings_router.domain.notifications import FoldedResources, MetaAlert, Notification, NotifyContext, StormInfo
from findings_router.notify.links import console_url, vulnerability_facts

ALERTS_PATH = "/jsm/ops/integration/v2/alerts"
MESSAGE_MAX = 130
ALIAS_MAX = 512
DESCRIPTION_MAX = 15000
ENTITY_MAX = 512
SOURCE_MAX = 100
USER_MAX = 100
NOTE_MAX = 25000
TAGS_MAX = 20
TAG_MAX = 50
DETAILS_MAX_CHARS = 8000  # keys and values together: the conservative reading of "8000 characters"
DETAIL_VALUE_MAX = 1000
FINDING_TEXT_MAX = 6000  # of the finding's own description inside the alert description
MAX_RESOURCES_LISTED = 20
DETAILS_RESOURCES = 5  # a folded episode's affected resources in `details` (the description lists more)
USER = "findings-router"  # who JSM shows as having created and closed the alert (`alert.username` in webhooks)
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")

BASE_PRIORITY: dict[Severity, str] = {
    Severity.CRITICAL: "P1",
    Severity.HIGH: "P2",
    Severity.MEDIUM: "P3",
    Severity.LOW: "P4",
    Severity.INFORMATIONAL: "P5",
}


def jsm_priority(severity: Severity, urgency: str) -> str:
    """The alert priority of a finding of `severity` sent with `urgency` (the table in the module docstring)."""
    base = BASE_PRIORITY[severity]
    return min(base, "P2") if urgency == "high" else max(base, "P3")


def meta_priority(urgency: str) -> str:
    """A router in trouble may be losing findings: as urgent as the worst page, unless only a notification is wanted."""
    return "P1" if urgency == "high" else "P3"


def close_path(alias: str) -> str:
    """The close request's path and query for the alert of `alias` (percent-encoded: an alias may hold `/`, `?`…)."""
    return f"{ALERTS_PATH}/{quote(alias, safe='')}/close?identifierType=alias"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _source(context: NotifyContext) -> str:
    return _truncate(f"findings-router-{context.environment}", SOURCE_MAX)


def _tag(text: str) -> str:
    """JSM tags are short single words: whitespace becomes `-`, at most 50 characters."""
    return _truncate("-".join(text.split()), TAG_MAX)


def _tags(*values: str) -> list[str]:
    tags: list[str] = []
    for value in values:
        tag = _tag(value)
        if tag and tag not in tags:
            tags.append(tag)
    return tags[:TAGS_MAX]


def close_request(n: Notification, context: NotifyContext) -> tuple[str, dict[str, Any]]:
    """The path and body closing the alert of `n.key` (a no-op at JSM when none is open)."""
    reason = context.reason or "the incident was resolved"
    note = f"Closed by findings-router ({context.environment}): {reason}"
    return close_path(n.key), {"source": _source(context), "user": USER, "note": _truncate(note, NOTE_MAX)}


def build_request(n: Notification, context: NotifyContext) -> tuple[str, dict[str, Any]]:
    """The path (under the base URL) and JSON body of the request for one notification."""
    if n.kind == "resolve":
        return close_request(n, context)
    if n.meta is not None and n.meta.kind == "alarm":
        return ALERTS_PATH, _alarm_alert(n, n.meta, context)
    if n.meta is not None and n.meta.kind == "digest":
        return ALERTS_PATH, _digest_alert(n, n.meta, context)
    finding = context.finding
    if finding is None:
        raise ValueError(f"a trigger of {n.key} needs the finding it is about")
    if n.storm is not None:
        return ALERTS_PATH, _storm_alert(n, n.storm, finding, context)
    return ALERTS_PATH, _finding_alert(n, finding, context)


def _alert(
    n: Notification,
    context: NotifyContext,
    *,
    message: str,
    description: str,
    priority: str,
    entity: str,
    details: dict[str, str],
    tags: list[str],
) -> dict[str, Any]:
    """The create body every trigger shares."""
    return {
        "message": _truncate(message, MESSAGE_MAX),
        "alias": n.key,
        "description": _truncate(description, DESCRIPTION_MAX),
        "priority": priority,
        "entity": _truncate(entity, ENTITY_MAX),
        "source": _source(context),
        "user": USER,
        "tags": tags,
        "details": fit_details(details),
    }


# ------------------------------------------------------------------------------------------ a finding


def _finding_alert(n: Notification, finding: Finding, context: NotifyContext) -> dict[str, Any]:
    prefix = f"[{context.environment}] "
    escalated = n.escalated_from is not None and n.escalated_from is not n.severity
    if escalated:
        assert n.escalated_from is not None
        prefix += f"[ESCALATED {n.escalated_from.value}→{n.severity.value}] "
    cvss = f" ({finding.max_cvss:.1f} CVSS)" if finding.max_cvss is not None else ""
    message = f"{prefix}{n.severity.value}{cvss} {finding.product_name}: {finding.title}"
    folded = context.folded
    link = console_url(finding)
    tags = _tags(
        "findings-router",
        f"environment:{context.environment}",
        f"severity:{n.severity.value}",
        f"product:{finding.product_name}",
        f"account:{finding.account}",
        "kind:finding",
        *(["escalated"] if escalated else []),
        *([f"control:{finding.control_id}"] if finding.control_id else []),
        *([f"vulnerability:{folded.vulnerability}"] if folded is not None else []),
    )
    return _alert(
        n,
        context,
        message=message,
        description=finding_description(finding, context, link),
        priority=jsm_priority(n.severity, n.urgency),
        entity=finding.primary_resource_id,
        details=finding_details(finding, context, link),
        tags=tags,
    )


def finding_description(finding: Finding, context: NotifyContext, link: str) -> str:
    """Everything an operator woken at night needs, as the alert's text (the finding's own words first)."""
    lines = [
        finding.title,
        "",
        _truncate(finding.description, FINDING_TEXT_MAX),
        "",
        f"Severity: {finding.severity.value} ({finding.severity_score:g})"
        + (f", max CVSS {finding.max_cvss:.1f}" if finding.max_cvss is not None else ""),
        f"Product: {f'{finding.company_name} {finding.product_name}'.strip()}",
        f"Account / region: {finding.account} / {finding.region}",
        f"Resources ({len(finding.resources)}):",
        *(f"  - {r.type} {_truncate(r.id, 300)}" for r in finding.resources[:MAX_RESOURCES_LISTED]),
    ]
    if len(finding.resources) > MAX_RESOURCES_LISTED:
        lines.append(f"  … and {len(finding.resources) - MAX_RESOURCES_LISTED} more (see Security Hub)")
    if finding.control_id:
        lines.append(f"Control: {finding.control_id}")
    if finding.cve_ids:
        lines.append(f"CVEs: {', '.join(finding.cve_ids[:20])}")
    if context.folded is not None:
        lines += _folded_lines(finding, context.folded)
    if finding.remediation_text or finding.remediation_url:
        remedy = " ".join(x for x in (finding.remediation_text, finding.remediation_url) if x)
        lines.append(f"Remediation: {_truncate(remedy, 1000)}")
    lines += [
        f"Security Hub: {link}",
        *([f"{finding.product_name} console: {finding.source_url}"] if finding.source_url else []),
        "",
        f"Decision: {context.reason} (environment {context.environment}, episode {context.episode})",
        f"Finding id: {finding.id}",
    ]
    return "\n".join(lines)


def _folded_lines(finding: Finding, folded: FoldedResources) -> list[str]:
    """A folded vulnerability episode: its affected resources known now, and the command that lists them all."""
    shown, _ = folded.listed(MAX_RESOURCES_LISTED)
    facts = vulnerability_facts(finding)
    return [
        *([f"Vulnerability {folded.vulnerability}: {facts}"] if facts else []),
        f"Affected resources of {folded.vulnerability} ({folded.count}; {folded.scope}; "
        f"{folded.open_text} finding(s) open):",
        *(f"  - {_truncate(r, 300)}" for r in shown),
        *([f"  … {folded.more(MAX_RESOURCES_LISTED)}"] if folded.more(MAX_RESOURCES_LISTED) else []),
        f"All affected resources: {folded.command}",
    ]


def finding_details(finding: Finding, context: NotifyContext, link: str) -> dict[str, str]:
    """The alert's custom properties: strings only (JSM's `details` is a string map)."""
    details: dict[str, str] = {
        "environment": context.environment,
        "decision": context.reason,
        "severity": f"{finding.severity.value} ({finding.severity_score:g})",
        "account": finding.account,
        "region": finding.region,
        "finding_id": finding.id,
        "dedup_key": context.dedup_key,
        "episode": str(context.episode),
        "product": f"{finding.company_name} {finding.product_name}".strip(),
        "security_hub_console": link,
        "resource_count": str(len(finding.resources)),
        "resources": "; ".join(r.id for r in finding.resources[:10]),
        "types": "; ".join(finding.types),
        "product_arn": finding.product_arn,
        "generator_id": finding.generator_id,
    }
    if finding.control_id:
        details["control_id"] = finding.control_id
    if finding.cve_ids:
        details["cve_ids"] = ", ".join(finding.cve_ids[:20])
    if finding.max_cvss is not None:
        details["max_cvss"] = f"{finding.max_cvss:g}"
    if finding.remediation_url:
        details["remediation_url"] = finding.remediation_url
    for name in ("first_observed_at", "last_observed_at", "compliance_status", "workflow_status"):
        value = getattr(finding, name)
        if value:
            details[name] = str(value)
    folded = context.folded
    if folded is not None:
        # A few (each value holds 1000 characters); the description lists more.
        shown, more = folded.listed(DETAILS_RESOURCES)
        details["vulnerability"] = folded.vulnerability
        details["affected_resource_count"] = str(folded.count)
        details["affected_resources"] = "; ".join(shown)
        if more:
            details["affected_more"] = folded.more(DETAILS_RESOURCES)
        details["all_affected_resources"] = folded.command
    return details


# ------------------------------------------------------------------------------------------ storms and meta-alerts


def _storm_alert(n: Notification, storm: StormInfo, finding: Finding, context: NotifyContext) -> dict[str, Any]:
    """One alert for a flood of findings of one group, or the router's own storm meta-alert."""
    env = context.environment
    if n.meta is not None:
        message = f"[{env}] findings-router is in a finding storm: {storm.group}"
        priority, kind = meta_priority(n.urgency), "kind:meta-alert"
        intro = (
            f"findings-router ({env}) passed its storm threshold for {storm.group}: findings of the group are being "
            "grouped per storm incident."
        )
    else:
        message = f"[{env}] STORM: {storm.count}+ new {finding.severity.value} findings in {storm.window_minutes} min"
        message += f" for {storm.group}"
        priority, kind = jsm_priority(n.severity, n.urgency), "kind:storm"
        intro = (
            f"{storm.count}+ new {finding.severity.value} findings in {storm.window_minutes} minutes for "
            f"{storm.group} (e.g. {finding.title})."
        )
    link = console_url(finding)
    description = "\n".join(
        [
            intro,
            "",
            "Sample resources:",
            *(f"  - {_truncate(s, 300)}" for s in storm.samples[:MAX_RESOURCES_LISTED]),
            "",
            f"Example finding: {finding.title}",
            f"Security Hub: {link}",
            "",
            "Every finding of the group is still tracked and deduplicated individually; close this alert when the "
            "flood is handled.",
        ]
    )
    details = {
        "environment": env,
        "group": storm.group,
        "new_problems_in_window": str(storm.count),
        "window_minutes": str(storm.window_minutes),
        "sample_resources": "; ".join(storm.samples),
        "example_finding_id": finding.id,
        "example_title": finding.title,
        "example_console": link,
    }
    tags = _tags("findings-router", f"environment:{env}", kind, f"severity:{finding.severity.value}")
    return _alert(
        n,
        context,
        message=message,
        description=description,
        priority=priority,
        entity=storm.group,
        details=details,
        tags=tags,
    )


def _alarm_alert(n: Notification, alarm: MetaAlert, context: NotifyContext) -> dict[str, Any]:
    """One of findings-router's own CloudWatch alarms in ALARM."""
    env = context.environment
    description = "\n".join(
        [
            f"findings-router ({env}) alarm {alarm.name} is in ALARM.",
            "",
            f"Reason: {alarm.reason}",
            *([f"Description: {alarm.description}"] if alarm.description else []),
            f"Account / region: {alarm.account} / {alarm.region}",
            f"Changed at: {alarm.changed_at}",
            "Runbook: docs/runbook.md#alarms",
        ]
    )
    details = {
        "alarm": alarm.name,
        "reason": alarm.reason,
        "description": alarm.description,
        "account": alarm.account,
        "region": alarm.region,
        "changed_at": alarm.changed_at,
        "environment": env,
        "runbook": "docs/runbook.md#alarms",
    }
    return _alert(
        n,
        context,
        message=f"[{env}] findings-router itself: {alarm.name} in ALARM: {alarm.reason}",
        description=description,
        priority=meta_priority(n.urgency),
        entity=f"findings-router-{env}",
        details=details,
        tags=_tags("findings-router", f"environment:{env}", "kind:meta-alert"),
    )


def _digest_alert(n: Notification, digest: MetaAlert, context: NotifyContext) -> dict[str, Any]:
    """A scheduled report (the PSIRT digest): its summary as the message, its body as the description."""
    env = context.environment
    return _alert(
        n,
        context,
        message=digest.reason,
        description=digest.description,
        priority=jsm_priority(n.severity, n.urgency),
        entity=f"findings-router-{env}",
        details={"environment": env, "report": digest.name, "period_end": digest.changed_at},
        tags=_tags("findings-router", f"environment:{env}", f"kind:{digest.name}"),
    )


# ------------------------------------------------------------------------------------------ limits


def details_chars(details: dict[str, str]) -> int:
    """How much of JSM's 8000-character `details` budget a map uses (keys and values)."""
    return sum(len(k) + len(v) for k, v in details.items())


# Kept to the end: what identifies the finding and the decision.
ESSENTIAL_DETAILS = (
    *("environment", "decision", "severity", "account", "region", "finding_id", "dedup_key", "episode"),
    *("vulnerability", "affected_resource_count", "all_affected_resources"),  # a folded vulnerability episode's
)


def fit_details(details: dict[str, str]) -> dict[str, str]:
    """`details` within JSM's limits: every value a string of at most 1000 characters, and the whole map within
    8000 characters (the last, least important entries go first; the essentials stay)."""
    fitted = {k: _truncate(str(v), DETAIL_VALUE_MAX) for k, v in details.items()}
    if details_chars(fitted) <= DETAILS_MAX_CHARS:
        return fitted
    fitted["truncated"] = "details cut to fit JSM's 8000-character limit; see the description and Security Hub"
    for name in reversed(list(fitted)):
        if details_chars(fitted) <= DETAILS_MAX_CHARS:
            break
        if name not in ESSENTIAL_DETAILS and name != "truncated":
            del fitted[name]
    while details_chars(fitted) > DETAILS_MAX_CHARS:  # essentials alone too long: share the budget out
        longest = max(fitted, key=lambda k: len(fitted[k]))
        fitted[longest] = _truncate(fitted[longest], max(1, len(fitted[longest]) // 2))
    return fitted
