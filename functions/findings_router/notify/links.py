"""Links every on-call integration puts on a finding's page: the finding in the Security Hub console (filtered to
this very finding), its control, its remediation and the product's own console."""

from __future__ import annotations

from urllib.parse import quote

from findings_router.domain.model import Finding


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
