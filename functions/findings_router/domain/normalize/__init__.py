"""Normalize Security Hub events (ASFF and OCSF) into `Finding`s, once, at the edge.

Formats (AWS docs "EventBridge event formats for Security Hub CSPM", "ASFF syntax",
"EventBridge event formats for Security Hub" (V2/OCSF)):

* ``Security Hub Findings - Imported`` / ``Security Hub Findings - Custom Action``: ``detail.findings`` is a list of
  ASFF findings (one per event today, up to 100 historically; we iterate).
* ``Findings Imported V2``: ``detail.findings`` is a list of OCSF findings (Detection 2004, Compliance 2003,
  Vulnerability 2002).
* ``Security Hub Insight Results`` carries no findings and is ignored.

Unknown extra fields are ignored. A missing required field, or an account id that is not 12 digits, raises
`FindingError` naming the field and finding id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from findings_router.domain.model import Finding, FindingError, FindingFormat, Resource, Severity

ASFF_DETAIL_TYPES = frozenset({"Security Hub Findings - Imported", "Security Hub Findings - Custom Action"})


OCSF_DETAIL_TYPES = frozenset({"Findings Imported V2"})


IGNORED_DETAIL_TYPES = frozenset({"Security Hub Insight Results"})


SECURITYHUB_SOURCE = "aws.securityhub"


_LABELS = {s.value: s for s in Severity}


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


_LABEL_SCORE = {
    Severity.INFORMATIONAL: 0.0,
    Severity.LOW: 1.0,
    Severity.MEDIUM: 40.0,
    Severity.HIGH: 70.0,
    Severity.CRITICAL: 90.0,
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


# An AWS account id is exactly 12 ASCII digits (API reference AwsSecurityFinding.AwsAccountId: "Length Constraints: 12";
# the new Security Hub's cloud.account.uid is the same id). [0-9], not \d: \d also matches other scripts' digits.
_ACCOUNT_ID = re.compile(r"[0-9]{12}")


# The OCSF resource types of a whole account (ASFF's is AwsAccount, with Id "AWS::::Account:<id>").
_ACCOUNT_RESOURCE_TYPES = frozenset({"AWS::::Account", "AwsAccount"})


# GuardDuty's own sample flag as Security Hub flattens it into ASFF ProductFields (see `_asff_sample`).
_GUARDDUTY_SAMPLE_KEY = "aws/guardduty/service/additionalInfo/sample"


_GUARDDUTY_ADDITIONAL_INFO_KEY = "aws/guardduty/service/additionalInfo/value"


_CUSTOM_ACTION_MARKER = ":action/custom/"


@dataclass
class NormalizedEvent:
    """What one EventBridge event (or exported document) yields: findings, per-finding errors, or nothing."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[FindingError] = field(default_factory=list)
    ignored_reason: str | None = None


def _require(obj: Mapping[str, Any], key: str, finding_id: str | None, path: str | None = None) -> Any:
    value = obj.get(key)
    if value is None or value == "":
        raise FindingError("missing required field", finding_id=finding_id, field=path or key)
    return value


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _as_mapping(value: Any, finding_id: str | None, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FindingError(f"expected an object, got {type(value).__name__}", finding_id=finding_id, field=path)
    return value


def _as_list(value: Any, finding_id: str | None, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FindingError(f"expected a list, got {type(value).__name__}", finding_id=finding_id, field=path)
    return value


def _number(value: Any) -> float | None:
    """A finite number, or None: strings are parsed, and NaN, infinities and out-of-range integers are refused
    (they would make the PagerDuty body invalid JSON or overflow)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _account(value: Any, finding_id: str, path: str) -> str:
    """The account id at `path`: exactly 12 digits, else a malformed finding (missing is `_require`'s job)."""
    if isinstance(value, str) and _ACCOUNT_ID.fullmatch(value):
        return value
    shown = repr(value[:40]) if isinstance(value, str) else f"of type {type(value).__name__}"
    raise FindingError(f"malformed account id {shown} (expected 12 digits)", finding_id=finding_id, field=path)


def _flag(value: Any) -> bool:
    """A boolean flag that may arrive as JSON true or as the string "true" (ASFF ProductFields are all strings)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _fix_surrogates(text: str) -> str:
    # JSON may carry lone UTF-16 surrogates ("\ud800"); they cannot be encoded as UTF-8 (hashing, logs, HTTP).
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def clean_json_text(value: Any) -> Any:
    """Replace lone surrogates in every string of a decoded JSON value (cheap no-op when there are none)."""
    if isinstance(value, str):
        return _fix_surrogates(value) if any("\ud800" <= c <= "\udfff" for c in value) else value
    if isinstance(value, list):
        return [clean_json_text(v) for v in value]
    if isinstance(value, dict):
        return {clean_json_text(k): clean_json_text(v) for k, v in value.items()}
    return value


def loads(text: str | bytes) -> Any:
    """`json.loads` for untrusted input: every failure is a `FindingError`, and lone surrogates are replaced.

    json.loads also raises RecursionError (deep nesting) and ValueError (integers of more than 4300 digits)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError, TypeError) as exc:
        raise FindingError(f"not JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return clean_json_text(value) if _SURROGATE_ESCAPE.search(raw) else value


def _severity_of(sev: Mapping[str, Any], finding_id: str, path: str) -> tuple[Severity, float] | None:
    """Label (preferred) or Normalized of one ASFF Severity object; None when it has neither."""
    label = sev.get("Label")
    normalized = _number(sev.get("Normalized"))
    if isinstance(label, str):
        severity = _LABELS.get(label.upper())
        if severity is None:
            raise FindingError(f"unknown severity label {label!r}", finding_id=finding_id, field=f"{path}.Label")
        return severity, normalized if normalized is not None else _LABEL_SCORE[severity]
    if normalized is not None:
        return Severity.from_normalized(normalized), normalized
    return None


def _provider_fields(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    value = finding.get("FindingProviderFields")
    return value if isinstance(value, Mapping) else {}


def _asff_severity(finding: Mapping[str, Any], finding_id: str) -> tuple[Severity, float]:
    """The top-level Severity, else the provider's `FindingProviderFields.Severity`.

    Providers are told to send Severity (and Types) inside FindingProviderFields; Security Hub copies them to the top
    level, where a customer's BatchUpdateFindings override also lands, so the top level wins when it has a rating.
    Exported or partner findings may carry only the FindingProviderFields form. Of that object only Label (and a
    Normalized kept from history) is used: `Original` is the provider's own native string ("8", "High", "MODERATE"),
    on no fixed scale, even when it happens to spell an ASFF label, so it is never read as one.
    """
    top = finding.get("Severity")
    if top is not None and top != "":
        found = _severity_of(_as_mapping(top, finding_id, "Severity"), finding_id, "Severity")
        if found is not None:
            return found
    provider = _provider_fields(finding).get("Severity")
    if provider is not None:
        path = "FindingProviderFields.Severity"
        found = _severity_of(_as_mapping(provider, finding_id, path), finding_id, path)
        if found is not None:
            return found
    if top is None or top == "":
        raise FindingError("missing required field", finding_id=finding_id, field="Severity")
    raise FindingError("missing required field", finding_id=finding_id, field="Severity.Label")


def _asff_types(finding: Mapping[str, Any]) -> tuple[str, ...]:
    """Top-level Types (which a customer may have overridden), else the provider's `FindingProviderFields.Types`."""
    for types in (finding.get("Types"), _provider_fields(finding).get("Types")):
        if isinstance(types, list) and types:
            return tuple(str(t) for t in types)
    return ()


def _asff_sample(finding: Mapping[str, Any], product_fields: Mapping[str, Any]) -> bool:
    """A sample (test) finding, which must never page anyone as if it were real.

    * ASFF `Sample: true` (asff-top-level-attributes "Sample"; Macie's generated samples set it).
    * GuardDuty samples (console "Generate sample findings", `create-sample-findings`) carry `"sample": true` in the
      finding's `service.additionalInfo`; in ASFF Security Hub flattens that into ProductFields as
      `aws/guardduty/service/additionalInfo/sample` = "true", next to the whole object as a JSON string in
      `aws/guardduty/service/additionalInfo/value`. Both are read. Whether Security Hub also sets `Sample` on them
      is not documented.
    * Not the title: the "[SAMPLE]" prefix is shown by the GuardDuty console only, and Security Hub drops it.
    """
    if _flag(finding.get("Sample")) or _flag(product_fields.get(_GUARDDUTY_SAMPLE_KEY)):
        return True
    info = product_fields.get(_GUARDDUTY_ADDITIONAL_INFO_KEY)
    if not isinstance(info, str) or '"sample"' not in info:  # cheap test first: parse only when it can match
        return False
    try:
        parsed = json.loads(info)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, Mapping) and _flag(parsed.get("sample"))


def _asff_resources(finding: Mapping[str, Any], finding_id: str) -> tuple[Resource, ...]:
    resources = []
    for i, res in enumerate(_as_list(_require(finding, "Resources", finding_id), finding_id, "Resources")):
        res = _as_mapping(res, finding_id, f"Resources[{i}]")
        tags = res.get("Tags") or {}
        if not isinstance(tags, Mapping):
            raise FindingError("expected an object", finding_id=finding_id, field=f"Resources[{i}].Tags")
        resources.append(
            Resource(
                type=str(_require(res, "Type", finding_id, f"Resources[{i}].Type")),
                id=str(_require(res, "Id", finding_id, f"Resources[{i}].Id")),
                region=_str_or_none(res.get("Region")),
                tags=tuple((str(k), str(v)) for k, v in tags.items()),
            )
        )
    return tuple(resources)


def _asff_vulnerabilities(finding: Mapping[str, Any], finding_id: str) -> tuple[tuple[str, ...], float | None]:
    cves: list[str] = []
    max_cvss: float | None = None
    for i, vuln in enumerate(_as_list(finding.get("Vulnerabilities"), finding_id, "Vulnerabilities")):
        vuln = _as_mapping(vuln, finding_id, f"Vulnerabilities[{i}]")
        vid = vuln.get("Id")
        if isinstance(vid, str) and vid and vid not in cves:
            cves.append(vid)
        for cvss in _as_list(vuln.get("Cvss"), finding_id, f"Vulnerabilities[{i}].Cvss"):
            score = _number(cvss.get("BaseScore")) if isinstance(cvss, Mapping) else None
            if score is not None and (max_cvss is None or score > max_cvss):
                max_cvss = score
    return tuple(cves), max_cvss


def _region_from_arn(arn: str) -> str:
    parts = arn.split(":", 4)
    return parts[3] if len(parts) > 3 else ""


def normalize_asff(finding: Any, *, event_region: str | None = None) -> Finding:
    """One ASFF finding → `Finding`."""
    if not isinstance(finding, Mapping):
        raise FindingError(f"finding must be an object, got {type(finding).__name__}")
    raw_id = finding.get("Id")
    finding_id = raw_id if isinstance(raw_id, str) and raw_id else None
    if finding_id is None:
        raise FindingError("missing required field", field="Id")
    product_arn = str(_require(finding, "ProductArn", finding_id))
    account = _account(_require(finding, "AwsAccountId", finding_id), finding_id, "AwsAccountId")
    title = str(_require(finding, "Title", finding_id))
    severity, score = _asff_severity(finding, finding_id)
    resources = _asff_resources(finding, finding_id)
    cves, max_cvss = _asff_vulnerabilities(finding, finding_id)
    product_fields = _as_mapping(finding.get("ProductFields"), finding_id, "ProductFields")
    compliance = _as_mapping(finding.get("Compliance"), finding_id, "Compliance")
    workflow = _as_mapping(finding.get("Workflow"), finding_id, "Workflow")
    remediation = _as_mapping(
        _as_mapping(finding.get("Remediation"), finding_id, "Remediation").get("Recommendation"),
        finding_id,
        "Remediation.Recommendation",
    )
    note = _as_mapping(finding.get("Note"), finding_id, "Note")
    generator_id = str(finding.get("GeneratorId") or "")
    control_id = _str_or_none(compliance.get("SecurityControlId")) or _str_or_none(product_fields.get("ControlId"))
    if control_id is None and generator_id.startswith("security-control/"):
        control_id = generator_id.removeprefix("security-control/")
    return Finding(
        format=FindingFormat.ASFF,
        id=finding_id,
        product_arn=product_arn,
        product_name=str(
            finding.get("ProductName")
            or product_fields.get("aws/securityhub/ProductName")
            or product_arn.rsplit("/", 1)[-1]
        ),
        company_name=str(finding.get("CompanyName") or product_fields.get("aws/securityhub/CompanyName") or ""),
        generator_id=generator_id,
        control_id=control_id,
        account=account,
        region=str(finding.get("Region") or event_region or _region_from_arn(product_arn)),
        title=title,
        description=str(finding.get("Description") or ""),
        severity=severity,
        severity_score=score,
        types=_asff_types(finding),
        resources=resources,
        cve_ids=cves,
        max_cvss=max_cvss,
        workflow_status=_str_or_none(workflow.get("Status")) or _str_or_none(finding.get("WorkflowState")),
        record_state=_str_or_none(finding.get("RecordState")),
        compliance_status=_str_or_none(compliance.get("Status")),
        first_observed_at=_str_or_none(finding.get("FirstObservedAt")),
        last_observed_at=_str_or_none(finding.get("LastObservedAt")),
        updated_at=_str_or_none(finding.get("UpdatedAt")),
        source_url=_str_or_none(finding.get("SourceUrl")),
        remediation_text=_str_or_none(remediation.get("Text")),
        remediation_url=_str_or_none(remediation.get("Url")),
        note=_str_or_none(note.get("Text")),
        sample=_asff_sample(finding, product_fields),
        raw=dict(finding),
    )


def _ocsf_time(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(f"{key}_dt")
    if isinstance(value, str) and value:
        return value
    epoch_ms = _number(obj.get(key))
    if epoch_ms is None:
        return None
    try:
        return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):  # outside datetime's range: not a usable time
        return None


def _ocsf_severity(finding: Mapping[str, Any], finding_id: str) -> Severity:
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


def _ocsf_resource(res: Any, finding_id: str, path: str) -> tuple[str, Resource]:
    """One OCSF resource object → (its raw uid, `Resource`)."""
    res = _as_mapping(res, finding_id, path)
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
    uid = str(_require(res, "uid", finding_id, f"{path}.uid"))
    alt = res.get("uid_alt")
    resource_type = str(res.get("type") or "Other")
    if isinstance(alt, str) and alt.startswith("arn:"):
        # The new Security Hub puts the bare id (i-0abc) in uid and the ARN in uid_alt; ASFF uses the ARN.
        resource_id = alt
    elif resource_type in _ACCOUNT_RESOURCE_TYPES and _ACCOUNT_ID.fullmatch(uid):
        # A whole account is the bare id in OCSF but "AWS::::Account:<id>" in ASFF (and in `primary_resource_id`).
        resource_id = f"AWS::::Account:{uid}"
    else:
        resource_id = uid
    return uid, Resource(type=resource_type, id=resource_id, region=_str_or_none(res.get("region")), tags=tuple(tags))


def _ocsf_resources(finding: Mapping[str, Any], finding_id: str) -> tuple[Resource, ...]:
    """`resources[]` and the singular `resource`, deduplicated by id (raw uid or the id we keep).

    OCSF 1.1/1.2 Compliance and Vulnerability Findings have a single `resource`; 1.3 deprecated it for the
    `resources` list that Detection Findings always had (ocsf-schema events/findings/*.json). A producer may send
    either or both. The list comes first: it is the current attribute, so its first entry is the primary resource.
    """
    entries: list[tuple[str, Any]] = [
        (f"resources[{i}]", res) for i, res in enumerate(_as_list(finding.get("resources"), finding_id, "resources"))
    ]
    if finding.get("resource") is not None:
        entries.append(("resource", finding["resource"]))
    resources: list[Resource] = []
    seen: set[str] = set()
    for path, res in entries:
        uid, resource = _ocsf_resource(res, finding_id, path)
        if uid in seen or resource.id in seen:
            continue
        seen.update((uid, resource.id))
        resources.append(resource)
    return tuple(resources)


def _ocsf_vulnerabilities(finding: Mapping[str, Any], finding_id: str) -> tuple[tuple[str, ...], float | None]:
    cves: list[str] = []
    max_cvss: float | None = None
    for i, vuln in enumerate(_as_list(finding.get("vulnerabilities"), finding_id, "vulnerabilities")):
        vuln = _as_mapping(vuln, finding_id, f"vulnerabilities[{i}]")
        cve = _as_mapping(vuln.get("cve"), finding_id, f"vulnerabilities[{i}].cve")
        uid = cve.get("uid")
        if isinstance(uid, str) and uid and uid not in cves:
            cves.append(uid)
        for cvss in _as_list(cve.get("cvss"), finding_id, f"vulnerabilities[{i}].cve.cvss"):
            score = _number(cvss.get("base_score")) if isinstance(cvss, Mapping) else None
            if score is not None and (max_cvss is None or score > max_cvss):
                max_cvss = score
    return tuple(cves), max_cvss


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
        raise FindingError("missing required field", finding_id=_str_or_none(metadata_uid), field="finding_info.uid")
    finding_id = str(info["uid"])
    metadata = _as_mapping(metadata, finding_id, "metadata")
    product = _as_mapping(_require(metadata, "product", finding_id, "metadata.product"), finding_id, "metadata.product")
    product_uid = str(product.get("uid") or "")
    if not product_uid:
        raise FindingError("missing required field", finding_id=finding_id, field="metadata.product.uid")
    cloud = _as_mapping(_require(finding, "cloud", finding_id), finding_id, "cloud")
    account_obj = _as_mapping(_require(cloud, "account", finding_id, "cloud.account"), finding_id, "cloud.account")
    account = _account(_require(account_obj, "uid", finding_id, "cloud.account.uid"), finding_id, "cloud.account.uid")
    title = str(_require(info, "title", finding_id, "finding_info.title"))
    severity = _ocsf_severity(finding, finding_id)
    cves, max_cvss = _ocsf_vulnerabilities(finding, finding_id)
    compliance = _as_mapping(finding.get("compliance"), finding_id, "compliance")
    remediation = _as_mapping(finding.get("remediation"), finding_id, "remediation")
    analytic = _as_mapping(info.get("analytic"), finding_id, "finding_info.analytic")

    control_id = _str_or_none(compliance.get("control"))
    generator_id = (
        f"security-control/{control_id}" if control_id else str(analytic.get("uid") or analytic.get("name") or "")
    )
    compliance_status: str | None = None
    comp_id = compliance.get("status_id")
    if isinstance(comp_id, int) and comp_id in _OCSF_COMPLIANCE_ID:
        compliance_status = _OCSF_COMPLIANCE_ID[comp_id]
    elif isinstance(compliance.get("status"), str):
        compliance_status = _OCSF_COMPLIANCE_NAME.get(compliance["status"].lower())

    status_id = finding.get("status_id")
    workflow = _OCSF_WORKFLOW.get(status_id) if isinstance(status_id, int) else None
    archived = status_id == 5 or finding.get("activity_id") == _OCSF_ACTIVITY_CLOSE
    refs = remediation.get("references")
    types = info.get("types") or ()
    return Finding(
        format=FindingFormat.OCSF,
        id=finding_id,
        product_arn=identity_product_arn(product_uid),
        product_name=str(product.get("name") or product_uid.rsplit("/", 1)[-1]),
        company_name=str(product.get("vendor_name") or ""),
        generator_id=generator_id,
        control_id=control_id,
        account=account,
        region=str(cloud.get("region") or event_region or _region_from_arn(product_uid)),
        title=title,
        description=str(info.get("desc") or ""),
        severity=severity,
        severity_score=_LABEL_SCORE[severity],
        types=tuple(str(t) for t in types) if isinstance(types, list) else (),
        resources=_ocsf_resources(finding, finding_id),
        cve_ids=cves,
        max_cvss=max_cvss,
        workflow_status=workflow,
        record_state="ARCHIVED" if archived else "ACTIVE",
        compliance_status=compliance_status,
        first_observed_at=_ocsf_time(info, "first_seen_time"),
        last_observed_at=_ocsf_time(info, "last_seen_time"),
        updated_at=_ocsf_time(info, "modified_time") or _ocsf_time(finding, "time"),
        source_url=_str_or_none(info.get("src_url")),
        remediation_text=_str_or_none(remediation.get("desc")),
        remediation_url=refs[0] if isinstance(refs, list) and refs and isinstance(refs[0], str) else None,
        note=_str_or_none(finding.get("comment")),
        # No sample flag: OCSF defines none, and neither the Security Hub OCSF docs nor the real V2 events seen show
        # GuardDuty's `additionalInfo.sample` (or ASFF `Sample`) in `finding_info`, `metadata`, `unmapped` or
        # `vendor_attributes`. So a sample that reaches us only as OCSF is not recognized; its ASFF copy is.
        raw=dict(finding),
    )


def _normalize_many(findings: Iterable[Any], ocsf: bool, region: str | None) -> NormalizedEvent:
    out = NormalizedEvent()
    fn = normalize_ocsf if ocsf else normalize_asff
    for i, raw in enumerate(findings):
        try:
            out.findings.append(fn(raw, event_region=region))
        except FindingError as exc:
            if exc.field and not exc.finding_id:
                exc.field = f"detail.findings[{i}].{exc.field}"
                exc.args = (f"missing or invalid field {exc.field}",)
            out.errors.append(exc)
    return out


def normalize_event(event: Any) -> NormalizedEvent:
    """An EventBridge event from ``aws.securityhub`` → findings. Raises `FindingError` for a broken envelope."""
    if not isinstance(event, Mapping):
        raise FindingError(f"event must be a JSON object, got {type(event).__name__}")
    detail_type = event.get("detail-type")
    source = event.get("source")
    if not isinstance(detail_type, str):
        raise FindingError(f"detail-type must be a string, got {type(detail_type).__name__}", field="detail-type")
    if source != SECURITYHUB_SOURCE:
        raise FindingError(f"unexpected event source {source!r}", field="source")
    if detail_type in IGNORED_DETAIL_TYPES:
        return NormalizedEvent(ignored_reason=f"{detail_type} events carry no findings")
    if detail_type not in ASFF_DETAIL_TYPES and detail_type not in OCSF_DETAIL_TYPES:
        raise FindingError(f"unsupported detail-type {detail_type!r}", field="detail-type")
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise FindingError("missing required field", field="detail")
    findings = detail.get("findings")
    if not isinstance(findings, list):
        raise FindingError("missing or invalid field (expected a list)", field="detail.findings")
    region = event.get("region") if isinstance(event.get("region"), str) else None
    out = _normalize_many(findings, detail_type in OCSF_DETAIL_TYPES, region)
    if detail_type == "Security Hub Findings - Custom Action":
        # An operator sent these by hand from the console: remember it, the policy may treat them as page requests.
        action = str(detail.get("actionName") or "custom-action")
        arn = _custom_action_arn(event)
        out.findings = [dataclasses.replace(f, custom_action=action, custom_action_arn=arn) for f in out.findings]
    return out


def _custom_action_arn(event: Mapping[str, Any]) -> str | None:
    """The custom action's ARN (``arn:aws:securityhub:<region>:<account>:action/custom/<id>``), which Security Hub
    puts in the event's ``resources``; None when absent (the event still normalizes)."""
    resources = event.get("resources")
    if not isinstance(resources, list):
        return None
    for resource in resources:
        if isinstance(resource, str) and resource.startswith("arn:") and _CUSTOM_ACTION_MARKER in resource:
            return resource
    return None


def normalize_document(doc: Any) -> NormalizedEvent:
    """Any exported shape: an EventBridge event, ``get-findings`` output, a bare ASFF or OCSF finding, or a list."""
    if isinstance(doc, list):
        merged = NormalizedEvent()
        for item in doc:
            part = normalize_document(item)
            merged.findings.extend(part.findings)
            merged.errors.extend(part.errors)
        return merged
    if not isinstance(doc, Mapping):
        raise FindingError(f"expected a JSON object or list, got {type(doc).__name__}")
    if "detail-type" in doc:
        return normalize_event(doc)
    if "Findings" in doc:
        return _normalize_many(_as_list(doc["Findings"], None, "Findings"), False, None)
    if "finding_info" in doc or "class_uid" in doc:
        return _normalize_many([doc], True, None)
    if "ProductArn" in doc or "SchemaVersion" in doc:
        return _normalize_many([doc], False, None)
    raise FindingError(
        "not a Security Hub event, get-findings output or finding (no detail-type, Findings, ProductArn or finding_info)"
    )
