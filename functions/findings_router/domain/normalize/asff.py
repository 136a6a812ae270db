"""One ASFF finding (``Security Hub Findings - Imported`` / ``- Custom Action``, ``get-findings``) → `Finding`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from findings_router.domain.model import Finding, FindingError, FindingFormat, Resource, Severity
from findings_router.domain.normalize._build import constructor
from findings_router.domain.normalize._json import (
    EMPTY,
    NO_VULNERABILITIES,
    Vulnerability,
    VulnerabilityFacts,
    account,
    as_list,
    as_mapping,
    epss,
    fix_word,
    flag,
    number,
    region_from_arn,
    require,
    str_or_none,
    vulnerability_facts,
    yes_no,
)

# Finding(...) and Resource(...), made faster (normalize/_build.py).
_new_finding = constructor(Finding)
_new_resource = constructor(Resource)

_LABELS = {s.value: s for s in Severity}


# The ASFF Normalized score of a label (also the `severity_score` of an OCSF finding, which has no such score).
LABEL_SCORE = {
    Severity.INFORMATIONAL: 0.0,
    Severity.LOW: 1.0,
    Severity.MEDIUM: 40.0,
    Severity.HIGH: 70.0,
    Severity.CRITICAL: 90.0,
}


# GuardDuty's own sample flag as Security Hub flattens it into ASFF ProductFields (see `_sample`).
_GUARDDUTY_SAMPLE_KEY = "aws/guardduty/service/additionalInfo/sample"


_GUARDDUTY_ADDITIONAL_INFO_KEY = "aws/guardduty/service/additionalInfo/value"


def _severity_of(sev: Mapping[str, Any], finding_id: str, path: str) -> tuple[Severity, float] | None:
    """Label (preferred) or Normalized of one ASFF Severity object; None when it has neither."""
    label = sev.get("Label")
    normalized = number(sev.get("Normalized"))
    if isinstance(label, str):
        severity = _LABELS.get(label.upper())
        if severity is None:
            raise FindingError(f"unknown severity label {label!r}", finding_id=finding_id, field=f"{path}.Label")
        return severity, normalized if normalized is not None else LABEL_SCORE[severity]
    if normalized is not None:
        return Severity.from_normalized(normalized), normalized
    return None


def _provider_fields(finding: Mapping[str, Any]) -> Mapping[str, Any]:
    value = finding.get("FindingProviderFields")
    return value if isinstance(value, Mapping) else {}


def _severity(finding: Mapping[str, Any], finding_id: str) -> tuple[Severity, float]:
    top = finding.get("Severity")
    if type(top) is dict:  # the usual case: a Label Security Hub spells as its enum
        label = top.get("Label")
        severity = _LABELS.get(label) if type(label) is str else None
        if severity is not None:
            normalized = top.get("Normalized")
            if normalized is None:
                return severity, LABEL_SCORE[severity]
            score = number(normalized)
            return severity, score if score is not None else LABEL_SCORE[severity]
    return _any_severity(finding, finding_id)


def _any_severity(finding: Mapping[str, Any], finding_id: str) -> tuple[Severity, float]:
    """The top-level Severity, else the provider's `FindingProviderFields.Severity`.

    Providers are told to send Severity (and Types) inside FindingProviderFields; Security Hub copies them to the top
    level, where a customer's BatchUpdateFindings override also lands, so the top level wins when it has a rating.
    Exported or partner findings may carry only the FindingProviderFields form. Of that object only Label (and a
    Normalized kept from history) is used: `Original` is the provider's own native string ("8", "High", "MODERATE"),
    on no fixed scale, even when it happens to spell an ASFF label, so it is never read as one.
    """
    top = finding.get("Severity")
    if top is not None and top != "":
        found = _severity_of(as_mapping(top, finding_id, "Severity"), finding_id, "Severity")
        if found is not None:
            return found
    provider = _provider_fields(finding).get("Severity")
    if provider is not None:
        path = "FindingProviderFields.Severity"
        found = _severity_of(as_mapping(provider, finding_id, path), finding_id, path)
        if found is not None:
            return found
    if top is None or top == "":
        raise FindingError("missing required field", finding_id=finding_id, field="Severity")
    raise FindingError("missing required field", finding_id=finding_id, field="Severity.Label")


def _types(finding: Mapping[str, Any]) -> tuple[str, ...]:
    """Top-level Types (which a customer may have overridden), else the provider's `FindingProviderFields.Types`."""
    types = finding.get("Types")
    if not (isinstance(types, list) and types):
        types = _provider_fields(finding).get("Types")
    if isinstance(types, list) and types:
        return tuple(map(str, types))
    return ()


def _sample(finding: Mapping[str, Any], product_fields: Mapping[str, Any]) -> bool:
    """A sample (test) finding, which must never page anyone as if it were real.

    * ASFF `Sample: true` (asff-top-level-attributes "Sample"; Macie's generated samples set it).
    * GuardDuty samples (console "Generate sample findings", `create-sample-findings`) carry `"sample": true` in the
      finding's `service.additionalInfo`; in ASFF Security Hub flattens that into ProductFields as
      `aws/guardduty/service/additionalInfo/sample` = "true", next to the whole object as a JSON string in
      `aws/guardduty/service/additionalInfo/value`. Both are read. Whether Security Hub also sets `Sample` on them
      is not documented.
    * Not the title: the "[SAMPLE]" prefix is shown by the GuardDuty console only, and Security Hub drops it.
    """
    if flag(finding.get("Sample")) or flag(product_fields.get(_GUARDDUTY_SAMPLE_KEY)):
        return True
    info = product_fields.get(_GUARDDUTY_ADDITIONAL_INFO_KEY)
    if not isinstance(info, str) or '"sample"' not in info:  # cheap test first: parse only when it can match
        return False
    try:
        parsed = json.loads(info)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, Mapping) and flag(parsed.get("sample"))


def _resources(finding: Mapping[str, Any], finding_id: str) -> tuple[Resource, ...]:
    resources = []
    for i, res in enumerate(as_list(require(finding, "Resources", finding_id), finding_id, "Resources")):
        if type(res) is not dict:
            res = as_mapping(res, finding_id, f"Resources[{i}]")
        tags = res.get("Tags") or EMPTY
        if not isinstance(tags, Mapping):
            raise FindingError("expected an object", finding_id=finding_id, field=f"Resources[{i}].Tags")
        kind, rid = res.get("Type"), res.get("Id")
        if kind is None or kind == "":
            require(res, "Type", finding_id, f"Resources[{i}].Type")  # raises, naming the field
        if rid is None or rid == "":
            require(res, "Id", finding_id, f"Resources[{i}].Id")
        region = res.get("Region")
        resources.append(
            _new_resource(
                kind if type(kind) is str else str(kind),
                rid if type(rid) is str else str(rid),
                region if type(region) is str and region else str_or_none(region),
                tuple(zip(map(str, tags), map(str, tags.values()), strict=True)) if tags else (),
            )
        )
    return tuple(resources)


def _vulnerabilities(finding: Mapping[str, Any], finding_id: str) -> VulnerabilityFacts:
    """What `Vulnerabilities[]` says: Id, Cvss[].BaseScore, ExploitAvailable (YES|NO), FixAvailable
    (YES|NO|PARTIAL), EpssScore (contracts-2 §1.4)."""
    vulns = finding.get("Vulnerabilities")
    if vulns is None:  # most findings: no allocation
        return NO_VULNERABILITIES
    rows: list[Vulnerability] = []
    for i, vuln in enumerate(as_list(vulns, finding_id, "Vulnerabilities")):
        vuln = as_mapping(vuln, finding_id, f"Vulnerabilities[{i}]")
        cvss = as_list(vuln.get("Cvss"), finding_id, f"Vulnerabilities[{i}].Cvss")
        rows.append(
            (
                vuln.get("Id"),
                [c.get("BaseScore") if isinstance(c, Mapping) else None for c in cvss],
                yes_no(vuln.get("ExploitAvailable")),
                fix_word(vuln.get("FixAvailable")),
                epss(vuln.get("EpssScore")),
            )
        )
    return vulnerability_facts(rows)


def _object(finding: Mapping[str, Any], key: str, finding_id: str) -> Mapping[str, Any]:
    value = finding.get(key)
    return value if type(value) is dict else as_mapping(value, finding_id, key)


def _text(value: Any) -> str | None:
    """`str_or_none`, with json.loads' own str tested first (inline: this runs a dozen times per finding)."""
    if type(value) is str:
        return value or None
    return str_or_none(value)


def normalize_asff(finding: Any, *, event_region: str | None = None) -> Finding:
    """One ASFF finding → `Finding`."""
    if type(finding) is not dict and not isinstance(finding, Mapping):
        raise FindingError(f"finding must be an object, got {type(finding).__name__}")
    get = finding.get
    raw_id = get("Id")
    finding_id = raw_id if isinstance(raw_id, str) and raw_id else None
    if finding_id is None:
        raise FindingError("missing required field", field="Id")
    product_arn = str(require(finding, "ProductArn", finding_id))
    account_id = account(require(finding, "AwsAccountId", finding_id), finding_id, "AwsAccountId")
    title = str(require(finding, "Title", finding_id))
    severity, score = _severity(finding, finding_id)
    resources = _resources(finding, finding_id)
    vulns = _vulnerabilities(finding, finding_id)
    product_fields = _object(finding, "ProductFields", finding_id)
    compliance = _object(finding, "Compliance", finding_id)
    workflow = _object(finding, "Workflow", finding_id)
    remediation = _object(finding, "Remediation", finding_id)
    if remediation:
        remediation = as_mapping(remediation.get("Recommendation"), finding_id, "Remediation.Recommendation")
    note = _object(finding, "Note", finding_id)
    generator_id = str(get("GeneratorId") or "")
    control_id = _text(compliance.get("SecurityControlId")) or _text(product_fields.get("ControlId"))
    if control_id is None and generator_id.startswith("security-control/"):
        control_id = generator_id.removeprefix("security-control/")
    return _new_finding(
        format=FindingFormat.ASFF,
        id=finding_id,
        product_arn=product_arn,
        product_name=str(
            get("ProductName") or product_fields.get("aws/securityhub/ProductName") or product_arn.rsplit("/", 1)[-1]
        ),
        company_name=str(get("CompanyName") or product_fields.get("aws/securityhub/CompanyName") or ""),
        generator_id=generator_id,
        control_id=control_id,
        account=account_id,
        region=str(get("Region") or event_region or region_from_arn(product_arn)),
        title=title,
        description=str(get("Description") or ""),
        severity=severity,
        severity_score=score,
        types=_types(finding),
        resources=resources,
        cve_ids=vulns.cve_ids,
        max_cvss=vulns.max_cvss,
        workflow_status=_text(workflow.get("Status")) or _text(get("WorkflowState")),
        record_state=_text(get("RecordState")),
        compliance_status=_text(compliance.get("Status")),
        first_observed_at=_text(get("FirstObservedAt")),
        last_observed_at=_text(get("LastObservedAt")),
        updated_at=_text(get("UpdatedAt")),
        source_url=_text(get("SourceUrl")),
        remediation_text=_text(remediation.get("Text")),
        remediation_url=_text(remediation.get("Url")),
        note=_text(note.get("Text")),
        sample=_sample(finding, product_fields),
        exploit_available=vulns.exploit_available,
        fix_available=vulns.fix_available,
        max_epss=vulns.max_epss,
        raw=dict(finding),
    )
