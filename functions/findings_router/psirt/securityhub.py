"""Security Hub for a PSIRT report: `GetFindingsV2` (OCSF, has a CVE filter) and `GetFindings` (ASFF, has none).

* v2 (`POST /findingsv2`, IAM `securityhub:GetFindings`): `vulnerabilities.cve.uid EQUALS` each id, ORed with
  `vulnerabilities.related_vulnerabilities EQUALS` (Windows KB findings), ANDed with `status NOT_EQUALS Resolved`
  and, optionally, the accounts (`cloud.account.uid`). Up to 20 filters of a type per composite filter: 10 ids and
  20 accounts per request. EPSS is a string in OCSF.
* v1 (`POST /findings`, same IAM action), for accounts with Security Hub CSPM only: `AwsSecurityFindingFilters` has
  no vulnerability id key. Inspector's titles start with the CVE id, so the request asks for `Title PREFIX <id>`,
  `RecordState ACTIVE` and `Type PREFIX Software and Configuration Checks/Vulnerabilities`; the answer is then
  confirmed in code on `Vulnerabilities[].Id` / `RelatedVulnerabilities` (a title prefix also matches a longer id:
  CVE-2021-4422 is a prefix of CVE-2021-44228). Windows KB findings, titled by their KB id, are not found this way.

Parsers take whatever a real finding holds: an absent or odd field gives None, never an error. Pure: no SDK import.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from findings_router.psirt.inspector import CallStats, chunks
from findings_router.psirt.model import (
    SOURCE_SECURITYHUB_V1,
    SOURCE_SECURITYHUB_V2,
    AffectedResource,
    as_dict,
    as_float,
    as_list,
    as_text,
    function_name,
    iso_time,
    resource_type_name,
)

V2_MAX_FILTERS: Final = 20  # per filter type within one composite filter
V1_MAX_VALUES: Final = 20  # values per filter attribute
V2_IDS_PER_REQUEST: Final = V2_MAX_FILTERS // 2  # each id: cve.uid and related_vulnerabilities
PAGE_SIZE: Final = 100
GET_FINDINGS: Final = "securityhub:GetFindings"
GET_FINDINGS_V2: Final = "securityhub:GetFindingsV2"
VULNERABILITY_TYPE_PREFIX: Final = "Software and Configuration Checks/Vulnerabilities"


def _ocsf_string(field: str, value: str, comparison: str = "EQUALS") -> dict[str, Any]:
    return {"FieldName": field, "Filter": {"Value": value, "Comparison": comparison}}


# ------------------------------------------------------------------------------------------ v2 (OCSF)


def findings_v2_filters(
    vulnerability_ids: Sequence[str], *, accounts: Sequence[str] = (), include_resolved: bool = False
) -> dict[str, Any]:
    """`GetFindingsV2` `Filters` for ≤10 ids and ≤20 accounts (see the module docstring)."""
    if not 1 <= len(vulnerability_ids) <= V2_IDS_PER_REQUEST:
        raise ValueError(f"1 to {V2_IDS_PER_REQUEST} vulnerability ids per GetFindingsV2 request")
    if len(accounts) > V2_MAX_FILTERS:
        raise ValueError(f"at most {V2_MAX_FILTERS} accounts per GetFindingsV2 request")
    ids = [
        _ocsf_string(field, vid)
        for vid in vulnerability_ids
        for field in ("vulnerabilities.cve.uid", "vulnerabilities.related_vulnerabilities")
    ]
    composites: list[dict[str, Any]] = [{"Operator": "OR", "StringFilters": ids}]
    if not include_resolved:
        composites.append({"Operator": "AND", "StringFilters": [_ocsf_string("status", "Resolved", "NOT_EQUALS")]})
    if accounts:
        composites.append({"Operator": "OR", "StringFilters": [_ocsf_string("cloud.account.uid", a) for a in accounts]})
    return {"CompositeOperator": "AND", "CompositeFilters": composites}


def findings_v2_requests(vulnerability_ids: Sequence[str], *, accounts: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The `GetFindingsV2` requests (paginator arguments, without the page size) covering every id and account."""
    return [
        {"Filters": findings_v2_filters(ids, accounts=account_chunk)}
        for ids in chunks(list(vulnerability_ids), V2_IDS_PER_REQUEST)
        for account_chunk in chunks(list(accounts), V2_MAX_FILTERS)
    ]


def _fix_available(vulnerability: Mapping[str, Any]) -> str | None:
    coverage = as_text(vulnerability.get("fix_coverage"))
    if coverage is not None:
        upper = coverage.upper()
        if upper.startswith("PARTIAL"):
            return "PARTIAL"
        if upper in ("NONE", "NO"):
            return "NO"
        if upper in ("COMPREHENSIVE", "FULL", "YES"):
            return "YES"
    fix = vulnerability.get("is_fix_available")
    return ("YES" if fix else "NO") if isinstance(fix, bool) else None


def _best_cvss(entries: Sequence[Any], score: str, version: str, source: str) -> tuple[Any, Any, Any]:
    best: tuple[float, tuple[int, ...], Any, Any] | None = None
    for entry in entries:
        entry = as_dict(entry)
        base = as_float(entry.get(score))
        if base is None:
            continue
        raw_version = entry.get(version)
        key = tuple(int(p) if p.isdigit() else 0 for p in str(raw_version or "").split("."))
        if best is None or (base, key) > best[:2]:
            best = (base, key, as_text(raw_version), as_text(entry.get(source)))
    return (best[0], best[2], best[3]) if best is not None else (None, None, None)


def _ocsf_tags(resource: Mapping[str, Any]) -> dict[str, str]:
    tags = resource.get("tags")
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {
        str(t["name"]): str(t.get("value", ""))
        for t in as_list(tags)
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    }


def _ocsf_label(resource: Mapping[str, Any], kind: str, uid: str) -> str:
    image = as_dict(resource.get("image"))
    if image:
        repository = (
            as_text(image.get("repository_name")) or as_text(image.get("name")) or as_text(resource.get("name"))
        )
        tags = [t for t in as_list(image.get("tags")) if isinstance(t, str)] or (
            [image["tag"]] if as_text(image.get("tag")) else []
        )
        if repository:
            return f"{repository}:{','.join(tags)}" if tags else repository
    name = _ocsf_tags(resource).get("Name")
    if kind == "AWS_EC2_INSTANCE":
        instance = uid.rsplit("/", 1)[-1]
        return f"{instance} ({name})" if name else instance
    if kind == "AWS_LAMBDA_FUNCTION":
        function = as_dict(resource.get("cloud_function"))
        return as_text(function.get("name")) or as_text(resource.get("name")) or function_name(uid)
    return as_text(resource.get("name")) or uid


def affected_from_ocsf(finding: Mapping[str, Any], cves: Collection[str]) -> list[AffectedResource]:
    """Rows of one OCSF finding (`GetFindingsV2`): per vulnerability about one of `cves` (its `cve.uid`, or in its
    `related_vulnerabilities`) × resource × affected package."""
    info = as_dict(finding.get("finding_info"))
    cloud = as_dict(finding.get("cloud"))
    finding_account = as_text(as_dict(cloud.get("account")).get("uid"))
    finding_id = as_text(info.get("uid")) or as_text(as_dict(finding.get("metadata")).get("uid"))
    resources = [as_dict(r) for r in as_list(finding.get("resources"))]
    if not resources and isinstance(finding.get("resource"), dict):  # OCSF 1.1/1.2: a singular resource
        resources = [finding["resource"]]
    severity = as_text(finding.get("severity"))
    rows = []
    for vulnerability in as_list(finding.get("vulnerabilities")):
        vulnerability = as_dict(vulnerability)
        cve_record = as_dict(vulnerability.get("cve"))
        own = as_text(cve_record.get("uid"))
        related = [r for r in as_list(vulnerability.get("related_vulnerabilities")) if isinstance(r, str)]
        ids: list[str] = ([own] if own is not None and own in cves else []) + [
            r for r in related if r in cves and r != own
        ]
        if not ids:
            continue
        cvss, cvss_version, cvss_source = _best_cvss(
            as_list(cve_record.get("cvss")), "base_score", "version", "vendor_name"
        )
        exploit = vulnerability.get("is_exploit_available")
        packages = [as_dict(p) for p in as_list(vulnerability.get("affected_packages"))] or [{}]
        for resource in resources:
            uid = as_text(resource.get("uid")) or as_text(resource.get("uid_alt"))
            if uid is None:
                continue
            kind = resource_type_name(as_text(resource.get("type")))
            owner = as_text(as_dict(as_dict(resource.get("owner")).get("account")).get("uid"))
            in_use = as_dict(resource.get("image")).get("in_use_count")
            for package in packages:
                for cve in ids:
                    rows.append(
                        AffectedResource(
                            cve=cve,
                            account=finding_account or owner or "?",
                            region=as_text(resource.get("region")) or as_text(cloud.get("region")),
                            resource_type=kind,
                            resource_id=uid,
                            resource_label=_ocsf_label(resource, kind, uid),
                            package=as_text(package.get("name")),
                            installed_version=as_text(package.get("version")),
                            fixed_version=_no_fix_none(package.get("fixed_in_version")),
                            cvss=cvss,
                            cvss_version=cvss_version,
                            cvss_source=cvss_source,
                            inspector_score=None,
                            epss=as_float(as_dict(cve_record.get("epss")).get("score")),
                            exploit_available=exploit if isinstance(exploit, bool) else None,
                            fix_available=_fix_available(vulnerability),
                            severity=severity.upper() if severity else None,
                            first_observed=iso_time(info.get("first_seen_time_dt") or info.get("first_seen_time")),
                            last_observed=iso_time(info.get("last_seen_time_dt") or info.get("last_seen_time")),
                            updated=iso_time(info.get("modified_time_dt") or info.get("modified_time")),
                            status=as_text(finding.get("status")),
                            sources=frozenset({SOURCE_SECURITYHUB_V2}),
                            finding_ids=(finding_id,) if finding_id else (),
                            vulnerability_id=own,
                            in_use_count=in_use if isinstance(in_use, int) and not isinstance(in_use, bool) else None,
                        )
                    )
    return rows


def _no_fix_none(value: Any) -> str | None:
    text = as_text(value)
    return None if text is None or text.strip().upper() in ("NOTAVAILABLE", "NONE", "N/A") else text


# ------------------------------------------------------------------------------------------ v1 (ASFF)


def findings_v1_filters(vulnerability_ids: Sequence[str], *, accounts: Sequence[str] = ()) -> dict[str, Any]:
    """`GetFindings` `Filters` for ≤20 ids and ≤20 accounts: title prefix, active, vulnerability types."""
    if not 1 <= len(vulnerability_ids) <= V1_MAX_VALUES:
        raise ValueError(f"1 to {V1_MAX_VALUES} vulnerability ids per GetFindings request")
    if len(accounts) > V1_MAX_VALUES:
        raise ValueError(f"at most {V1_MAX_VALUES} accounts per GetFindings request")
    filters: dict[str, Any] = {
        "Title": [{"Value": vid, "Comparison": "PREFIX"} for vid in vulnerability_ids],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
        "Type": [{"Value": VULNERABILITY_TYPE_PREFIX, "Comparison": "PREFIX"}],
    }
    if accounts:
        filters["AwsAccountId"] = [{"Value": a, "Comparison": "EQUALS"} for a in accounts]
    return filters


def findings_v1_requests(vulnerability_ids: Sequence[str], *, accounts: Sequence[str] = ()) -> list[dict[str, Any]]:
    return [
        {"Filters": findings_v1_filters(ids, accounts=account_chunk)}
        for ids in chunks(list(vulnerability_ids), V1_MAX_VALUES)
        for account_chunk in chunks(list(accounts), V1_MAX_VALUES)
    ]


def _asff_label(resource: Mapping[str, Any], kind: str, uid: str, package: Mapping[str, Any]) -> str:
    details = as_dict(resource.get("Details"))
    if kind == "AWS_ECR_CONTAINER_IMAGE":
        image = as_dict(details.get("AwsEcrContainerImage"))
        repository = as_text(image.get("RepositoryName"))
        tags = [t for t in as_list(image.get("ImageTags")) if isinstance(t, str)]
        if repository:
            return f"{repository}:{','.join(tags)}" if tags else repository
    if kind == "AWS_LAMBDA_FUNCTION":
        function = as_dict(details.get("AwsLambdaFunction"))
        function_label = as_text(function.get("FunctionName")) or function_name(uid)
        layer = as_text(package.get("SourceLayerArn"))
        if layer and ":layer:" in layer:
            return f"{function_label} (layer {':'.join(layer.split(':')[6:8])})"
        return function_label
    if kind == "AWS_EC2_INSTANCE":
        instance = uid.rsplit("/", 1)[-1]
        tag = as_text(as_dict(resource.get("Tags")).get("Name"))
        return f"{instance} ({tag})" if tag else instance
    return uid


def _severity_label(finding: Mapping[str, Any]) -> str | None:
    label = as_text(as_dict(finding.get("Severity")).get("Label"))
    return label or as_text(as_dict(as_dict(finding.get("FindingProviderFields")).get("Severity")).get("Label"))


def affected_from_asff(finding: Mapping[str, Any], cves: Collection[str]) -> list[AffectedResource]:
    """Rows of one ASFF finding (`GetFindings`): only its `Vulnerabilities` whose `Id` is one of `cves`, or which
    list one in `RelatedVulnerabilities` (the title prefix that found it is a heuristic) × resource × package."""
    product_fields = as_dict(finding.get("ProductFields"))
    status = as_text(product_fields.get("aws/inspector/FindingStatus")) or as_text(finding.get("RecordState"))
    account = as_text(finding.get("AwsAccountId")) or "?"
    finding_id = as_text(finding.get("Id"))
    rows = []
    for vulnerability in as_list(finding.get("Vulnerabilities")):
        vulnerability = as_dict(vulnerability)
        own = as_text(vulnerability.get("Id"))
        related = [r for r in as_list(vulnerability.get("RelatedVulnerabilities")) if isinstance(r, str)]
        ids: list[str] = ([own] if own is not None and own in cves else []) + [
            r for r in related if r in cves and r != own
        ]
        if not ids:
            continue
        cvss, cvss_version, cvss_source = _best_cvss(
            as_list(vulnerability.get("Cvss")), "BaseScore", "Version", "Source"
        )
        exploit = {"YES": True, "NO": False}.get(str(vulnerability.get("ExploitAvailable")))
        packages = [as_dict(p) for p in as_list(vulnerability.get("VulnerablePackages"))] or [{}]
        for resource in as_list(finding.get("Resources")):
            resource = as_dict(resource)
            uid = as_text(resource.get("Id"))
            if uid is None:
                continue
            kind = resource_type_name(as_text(resource.get("Type")))
            for package in packages:
                for cve in ids:
                    rows.append(
                        AffectedResource(
                            cve=cve,
                            account=account,
                            region=as_text(resource.get("Region")) or as_text(finding.get("Region")),
                            resource_type=kind,
                            resource_id=uid,
                            resource_label=_asff_label(resource, kind, uid, package),
                            package=as_text(package.get("Name")),
                            installed_version=as_text(package.get("Version")),
                            fixed_version=_no_fix_none(package.get("FixedInVersion")),
                            cvss=cvss,
                            cvss_version=cvss_version,
                            cvss_source=cvss_source,
                            inspector_score=as_float(product_fields.get("aws/inspector/inspectorScore")),
                            epss=as_float(vulnerability.get("EpssScore")),
                            exploit_available=exploit,
                            fix_available=as_text(vulnerability.get("FixAvailable")),
                            severity=_severity_label(finding),
                            first_observed=iso_time(finding.get("FirstObservedAt") or finding.get("CreatedAt")),
                            last_observed=iso_time(finding.get("LastObservedAt") or finding.get("UpdatedAt")),
                            updated=iso_time(finding.get("UpdatedAt")),
                            status=status,
                            sources=frozenset({SOURCE_SECURITYHUB_V1}),
                            finding_ids=(finding_id,) if finding_id else (),
                            vulnerability_id=own,
                        )
                    )
    return rows


# ------------------------------------------------------------------------------------------ paging


def iter_pages(client: Any, operation: str, request: Mapping[str, Any], *, stats: CallStats | None = None) -> Any:
    """The findings of every page of `get_findings` or `get_findings_v2` for `request`."""
    paginator = client.get_paginator(operation)
    label = GET_FINDINGS_V2 if operation == "get_findings_v2" else GET_FINDINGS
    for page in paginator.paginate(**request, PaginationConfig={"PageSize": PAGE_SIZE}):
        if stats is not None:
            stats.record(label, page)
        yield page.get("Findings") or []
