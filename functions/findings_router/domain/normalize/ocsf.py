"""One OCSF finding (new Security Hub, ``Findings Imported V2``: Detection 2004, Compliance 2003, Vulnerability 2002)
→ `Finding`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from findings_router.domain.model import Finding, FindingError, FindingFormat, Resource, Severity
from findings_router.domain.normalize._build import constructor
from findings_router.domain.normalize._json import (
    ACCOUNT_ID,
    NO_VULNERABILITIES,
    Vulnerability,
    VulnerabilityFacts,
    account,
    as_list,
    as_mapping,
    epss,
    fix_word,
    number,
    region_from_arn,
    require,
    str_or_none,
    vulnerability_facts,
    yes_no,
)
from findings_router.domain.normalize.asff import LABEL_SCORE

# Finding(...) and Resource(...), made faster (normalize/_build.py).
_new_finding = constructor(Finding)
_new_resource = constructor(Resource)

# OCSF severity_id: 0 Unknown, 1 Informational, 2 Low, 3 Medium, 4 High, 5 Critical, 6 Fatal, 99 Other.
_OCSF_SEVERITY = {
    1: Severity.INFORMATIONAL,
    2: Severity.LOW,
    3: Severity.MEDIUM,
    4: Severity.HIGH,
    5: Severity.CRITICAL,
    6: Severity.CRITICAL,
}


_OCSF_SEVERITY_NAMES = {
    "informational": Severity.INFORMATIONAL,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
}


# OCSF finding status_id: 1 New, 2 In Progress, 3 Suppressed, 4 Resolved, 5 Archived.
_OCSF_WORKFLOW = {1: "NEW", 2: "NOTIFIED", 3: "SUPPRESSED", 4: "RESOLVED"}


# OCSF compliance status_id: 1 Pass, 2 Warning, 3 Fail.
_OCSF_COMPLIANCE_ID = {1: "PASSED", 2: "WARNING", 3: "FAILED"}


_OCSF_COMPLIANCE_NAME = {
    "pass": "PASSED",
    "passed": "PASSED",
    "warning": "WARNING",
    "fail": "FAILED",
    "failed": "FAILED",
}


_OCSF_ACTIVITY_CLOSE = 3


# The OCSF resource types of a whole account (ASFF's is AwsAccount, with Id "AWS::::Account:<id>").
_ACCOUNT_RESOURCE_TYPES = frozenset({"AWS::::Account", "AwsAccount"})


def _time(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(f"{key}_dt")
    if isinstance(value, str) and value:
        return value
    epoch_ms = number(obj.get(key))
    if epoch_ms is None:
        return None
    try:
        return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):  # outside datetime's range: not a usable time
        return None


def _severity(finding: Mapping[str, Any], finding_id: str) -> Severity:
    sev_id = finding.get("severity_id")
    if isinstance(sev_id, int) and sev_id in _OCSF_SEVERITY:
        return _OCSF_SEVERITY[sev_id]
    name = finding.get("severity")
    if isinstance(name, str) and name.lower() in _OCSF_SEVERITY_NAMES:
        return _OCSF_SEVERITY_NAMES[name.lower()]
    if sev_id is None and name is None:
        raise FindingError("missing required field", finding_id=finding_id, field="severity_id")
    # Unknown (0) / Other (99) with no usable name: the provider gave no rating; treat as informational so that
    # policy rules decide explicitly (e.g. on CVSS) rather than paging on a guess.
    return Severity.INFORMATIONAL


def _resource(res: Any, finding_id: str, path: str) -> tuple[str, Resource]:
    """One OCSF resource object → (its raw uid, `Resource`)."""
    res = as_mapping(res, finding_id, path)
    raw_tags = res.get("tags") or []
    tags: list[tuple[str, str]] = []
    if isinstance(raw_tags, Mapping):
        tags = [(str(k), str(v)) for k, v in raw_tags.items()]
    elif isinstance(raw_tags, list):
        tags = [
            (str(t.get("name")), str(t.get("value", "")))
            for t in raw_tags
            if isinstance(t, Mapping) and t.get("name") is not None
        ]
    uid = str(require(res, "uid", finding_id, f"{path}.uid"))
    alt = res.get("uid_alt")
    resource_type = str(res.get("type") or "Other")
    if isinstance(alt, str) and alt.startswith("arn:"):
        # The new Security Hub puts the bare id (i-0abc) in uid and the ARN in uid_alt; ASFF uses the ARN.
        resource_id = alt
    elif resource_type in _ACCOUNT_RESOURCE_TYPES and ACCOUNT_ID.fullmatch(uid):
        # A whole account is the bare id in OCSF but "AWS::::Account:<id>" in ASFF (and in `primary_resource_id`).
        resource_id = f"AWS::::Account:{uid}"
    else:
        resource_id = uid
    return uid, _new_resource(resource_type, resource_id, str_or_none(res.get("region")), tuple(tags))


def _resources(finding: Mapping[str, Any], finding_id: str) -> tuple[Resource, ...]:
    """`resources[]` and the singular `resource`, deduplicated by id (raw uid or the id we keep).

    OCSF 1.1/1.2 Compliance and Vulnerability Findings have a single `resource`; 1.3 deprecated it for the
    `resources` list that Detection Findings always had (ocsf-schema events/findings/*.json). A producer may send
    either or both. The list comes first: it is the current attribute, so its first entry is the primary resource.
    """
    entries: list[tuple[str, Any]] = [
        (f"resources[{i}]", res) for i, res in enumerate(as_list(finding.get("resources"), finding_id, "resources"))
    ]
    if finding.get("resource") is not None:
        entries.append(("resource", finding["resource"]))
    resources: list[Resource] = []
    seen: set[str] = set()
    for path, res in entries:
        uid, resource = _resource(res, finding_id, path)
        if uid in seen or resource.id in seen:
            continue
        seen.update((uid, resource.id))
        resources.append(resource)
    return tuple(resources)


def _vulnerabilities(finding: Mapping[str, Any], finding_id: str) -> VulnerabilityFacts:
    """What `vulnerabilities[]` says: cve.uid, cve.cvss[].base_score, is_exploit_available, fix_coverage
    (COMPLETE|PARTIAL|NONE, which wins) else is_fix_available, cve.epss.score (a string in Security Hub's OCSF)."""
    vulns = finding.get("vulnerabilities")
    if vulns is None:  # most findings: no allocation
        return NO_VULNERABILITIES
    rows: list[Vulnerability] = []
    for i, vuln in enumerate(as_list(vulns, finding_id, "vulnerabilities")):
        vuln = as_mapping(vuln, finding_id, f"vulnerabilities[{i}]")
        cve = as_mapping(vuln.get("cve"), finding_id, f"vulnerabilities[{i}].cve")
        cvss = as_list(cve.get("cvss"), finding_id, f"vulnerabilities[{i}].cve.cvss")
        fix = fix_word(vuln.get("fix_coverage"))
        if fix is None:
            fixable = yes_no(vuln.get("is_fix_available"))
            fix = None if fixable is None else "YES" if fixable else "NO"
        score = cve.get("epss")
        rows.append(
            (
                cve.get("uid"),
                [c.get("base_score") if isinstance(c, Mapping) else None for c in cvss],
                yes_no(vuln.get("is_exploit_available")),
                fix,
                epss(score.get("score")) if isinstance(score, Mapping) else None,
            )
        )
    return vulnerability_facts(rows)


def _compliance_status(compliance: Mapping[str, Any]) -> str | None:
    comp_id = compliance.get("status_id")
    if isinstance(comp_id, int) and comp_id in _OCSF_COMPLIANCE_ID:
        return _OCSF_COMPLIANCE_ID[comp_id]
    if isinstance(compliance.get("status"), str):
        return _OCSF_COMPLIANCE_NAME.get(compliance["status"].lower())
    return None


def identity_product_arn(product_uid: str) -> str:
    """The new Security Hub names products ``…::productv2/…``; CSPM names the same product ``…::product/…``.

    Folding both onto one spelling lets a finding that arrives through both pipelines deduplicate.
    """
    return product_uid.replace(":productv2/", ":product/", 1)


def normalize_ocsf(finding: Any, *, event_region: str | None = None) -> Finding:
    """One OCSF finding (new Security Hub, ``Findings Imported V2``) → `Finding`."""
    if not isinstance(finding, Mapping):
        raise FindingError(f"finding must be an object, got {type(finding).__name__}")
    info = finding.get("finding_info")
    metadata = finding.get("metadata")
    metadata_uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
    if not isinstance(info, Mapping) or not info.get("uid"):
        raise FindingError("missing required field", finding_id=str_or_none(metadata_uid), field="finding_info.uid")
    finding_id = str(info["uid"])
    metadata = as_mapping(metadata, finding_id, "metadata")
    product = as_mapping(require(metadata, "product", finding_id, "metadata.product"), finding_id, "metadata.product")
    product_uid = str(product.get("uid") or "")
    if not product_uid:
        raise FindingError("missing required field", finding_id=finding_id, field="metadata.product.uid")
    cloud = as_mapping(require(finding, "cloud", finding_id), finding_id, "cloud")
    account_obj = as_mapping(require(cloud, "account", finding_id, "cloud.account"), finding_id, "cloud.account")
    account_id = account(require(account_obj, "uid", finding_id, "cloud.account.uid"), finding_id, "cloud.account.uid")
    title = str(require(info, "title", finding_id, "finding_info.title"))
    severity = _severity(finding, finding_id)
    vulns = _vulnerabilities(finding, finding_id)
    compliance = as_mapping(finding.get("compliance"), finding_id, "compliance")
    remediation = as_mapping(finding.get("remediation"), finding_id, "remediation")
    analytic = as_mapping(info.get("analytic"), finding_id, "finding_info.analytic")

    control_id = str_or_none(compliance.get("control"))
    generator_id = (
        f"security-control/{control_id}" if control_id else str(analytic.get("uid") or analytic.get("name") or "")
    )
    status_id = finding.get("status_id")
    workflow = _OCSF_WORKFLOW.get(status_id) if isinstance(status_id, int) else None
    archived = status_id == 5 or finding.get("activity_id") == _OCSF_ACTIVITY_CLOSE
    refs = remediation.get("references")
    types = info.get("types") or ()
    return _new_finding(
        format=FindingFormat.OCSF,
        id=finding_id,
        product_arn=identity_product_arn(product_uid),
        product_name=str(product.get("name") or product_uid.rsplit("/", 1)[-1]),
        company_name=str(product.get("vendor_name") or ""),
        generator_id=generator_id,
        control_id=control_id,
        account=account_id,
        region=str(cloud.get("region") or event_region or region_from_arn(product_uid)),
        title=title,
        description=str(info.get("desc") or ""),
        severity=severity,
        severity_score=LABEL_SCORE[severity],
        types=tuple(str(t) for t in types) if isinstance(types, list) else (),
        resources=_resources(finding, finding_id),
        cve_ids=vulns.cve_ids,
        max_cvss=vulns.max_cvss,
        workflow_status=workflow,
        record_state="ARCHIVED" if archived else "ACTIVE",
        compliance_status=_compliance_status(compliance),
        first_observed_at=_time(info, "first_seen_time"),
        last_observed_at=_time(info, "last_seen_time"),
        updated_at=_time(info, "modified_time") or _time(finding, "time"),
        source_url=str_or_none(info.get("src_url")),
        remediation_text=str_or_none(remediation.get("desc")),
        remediation_url=refs[0] if isinstance(refs, list) and refs and isinstance(refs[0], str) else None,
        note=str_or_none(finding.get("comment")),
        exploit_available=vulns.exploit_available,
        fix_available=vulns.fix_available,
        max_epss=vulns.max_epss,
        # No sample flag: OCSF defines none, and neither the Security Hub OCSF docs nor the real V2 events seen show
        # GuardDuty's `additionalInfo.sample` (or ASFF `Sample`) in `finding_info`, `metadata`, `unmapped` or
        # `vendor_attributes`. So a sample that reaches us only as OCSF is not recognized; its ASFF copy is.
        raw=dict(finding),
    )
