"""Links every on-call integration puts on a finding's page: the finding in the Security Hub console (filtered to
this very finding), its control, its remediation and the product's own console. And what every integration says
about a folded vulnerability episode's affected resources (`folded_details`, `resources_phrase`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from findings_router.domain.model import Finding
from findings_router.domain.notifications import FoldedResources


def console_url(finding: Finding) -> str:
    """A Security Hub console link filtered to this very finding (not only to its control)."""
    region = finding.region
    base = f"https://{region}.console.aws.amazon.com/securityhub"
    if finding.format == "ocsf":
        search = "finding_info.uid=" + quote(f"\\operator\\:EQUALS\\:{finding.id}", safe="")
        return f"{base}/v2/home?region={region}#/findings?search={quote(search, safe='')}"
    search = "Id=" + quote(f"\\operator\\:EQUALS\\:{finding.id}", safe="")
    return f"{base}/home?region={region}#/findings?search={quote(search, safe='')}"


def finding_links(finding: Finding) -> list[dict[str, str]]:
    """`href` and `text` of each link, the console's first."""
    links = [{"href": console_url(finding), "text": "This finding in Security Hub"}]
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
    return links


def resources_phrase(finding: Finding, folded: FoldedResources | None) -> str:
    """Where the problem is, for a one-line summary: the finding's primary resource, and for a folded vulnerability
    episode with several affected resources, how many more (`arn:… and 12 more resources`)."""
    resource = finding.primary_resource_id
    if folded is None or folded.count <= 1:
        return resource
    others = folded.count - 1
    return f"{resource} and {others} more resource{'s' if others > 1 else ''}"


def vulnerability_facts(finding: Finding) -> str:
    """What the finding's vulnerabilities say, for people: `exploit available, fix available: YES, EPSS 0.94358`
    ("" when they say nothing)."""
    facts = []
    if finding.exploit_available is not None:
        facts.append("exploit available" if finding.exploit_available else "no known exploit")
    if finding.fix_available is not None:
        facts.append(f"fix available: {finding.fix_available}")
    if finding.max_epss is not None:
        facts.append(f"EPSS {finding.max_epss:g}")
    return ", ".join(facts)


def folded_details(finding: Finding, folded: FoldedResources, limit: int) -> dict[str, Any]:
    """A folded vulnerability episode as JSON-ready details (PagerDuty custom_details; JSM and webhooks render the
    same facts): the vulnerability with what the finding says of it and how the episode folds, the affected resources
    known now (at most `limit`, then "and N more: <command>"), how many, and the command that lists them all."""
    shown, more = folded.listed(limit)
    facts = vulnerability_facts(finding)
    findings = f"{folded.open_text} finding{'' if folded.open_findings == 1 else 's'} open"
    return {
        "vulnerability": f"{folded.vulnerability}{f': {facts}' if facts else ''}; {folded.scope}, {findings}",
        "affected_resource_count": folded.count,
        "affected_resources": [*shown, *([folded.more(limit)] if more else [])],
        "all_affected_resources": folded.command,
    }
