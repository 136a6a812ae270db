"""The filter semantics of the stand-in: Inspector `FilterCriteria`, Security Hub `AwsSecurityFindingFilters` (v1)
and `OcsfFindingFilters` (v2), applied to findings as the services apply them, for the keys the stand-in knows.

A key the stand-in does not implement is refused (`FilterProblem`, answered as the service's validation error) rather
than ignored: a test must not pass because a filter was silently dropped (moto's `list_findings` ignores them all).

Within one key, positive comparisons (EQUALS, PREFIX, CONTAINS) are ORed and negative ones (NOT_EQUALS,
PREFIX_NOT_EQUALS, NOT_CONTAINS) ANDed, as Security Hub documents; keys are ANDed. A multi-valued field (related
vulnerabilities, image tags, resource types) matches a positive filter when any value does, a negative one when none
does.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

INSPECTOR_COMPARISONS = ("EQUALS", "PREFIX", "NOT_EQUALS")
SECURITYHUB_COMPARISONS = (
    "EQUALS",
    "PREFIX",
    "NOT_EQUALS",
    "PREFIX_NOT_EQUALS",
    "CONTAINS",
    "NOT_CONTAINS",
    "CONTAINS_WORD",
)
NEGATIVE = ("NOT_EQUALS", "PREFIX_NOT_EQUALS", "NOT_CONTAINS")
INSPECTOR_LIST_MAX = 10
V1_VALUES_MAX = 20
V1_ATTRIBUTES_MAX = 10
V2_COMPOSITES_MAX = 10
V2_FILTERS_PER_TYPE_MAX = 20


class FilterProblem(ValueError):
    """A filter the service would refuse (or the stand-in does not implement): a validation error."""


def _compare(value: str, comparison: str, wanted: str) -> bool:
    if comparison in ("EQUALS", "NOT_EQUALS"):
        return value == wanted
    if comparison in ("PREFIX", "PREFIX_NOT_EQUALS"):
        return value.startswith(wanted)
    if comparison in ("CONTAINS", "NOT_CONTAINS"):
        return wanted in value
    if comparison == "CONTAINS_WORD":
        return wanted in value.split()
    raise FilterProblem(f"unknown comparison {comparison!r}")


def _field_matches(
    field: Callable[[Mapping[str, Any]], list[str]], pairs: list[tuple[str, str]], finding: Mapping[str, Any]
) -> bool:
    return strings_match(field(finding), pairs)


def strings_match(values: list[str], filters: Iterable[tuple[str, str]]) -> bool:
    """`values` (a field's) against (comparison, value) filters: positives ORed, negatives ANDed."""
    positives = [(c, v) for c, v in filters if c not in NEGATIVE]
    negatives = [(c, v) for c, v in filters if c in NEGATIVE]
    if positives and not any(_compare(x, c, v) for c, v in positives for x in values):
        return False
    return not any(_compare(x, c, v) for c, v in negatives for x in values)


def _as_datetime(value: Any, what: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise FilterProblem(f"{what}: not a timestamp: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise FilterProblem(f"{what}: not a timestamp: {value!r}")


# ------------------------------------------------------------------------------------------ Inspector


def _details(finding: Mapping[str, Any]) -> dict[str, Any]:
    return finding.get("packageVulnerabilityDetails") or {}


def _resource_details(finding: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    return [(r.get("details") or {}).get(kind) or {} for r in finding.get("resources") or []]


def _one(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else []


INSPECTOR_STRINGS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "findingArn": lambda f: _one(f.get("findingArn")),
    "awsAccountId": lambda f: _one(f.get("awsAccountId")),
    "findingType": lambda f: _one(f.get("type")),
    "severity": lambda f: _one(f.get("severity")),
    "findingStatus": lambda f: _one(f.get("status")),
    "title": lambda f: _one(f.get("title")),
    "resourceType": lambda f: [r["type"] for r in f.get("resources") or []],
    "resourceId": lambda f: [r["id"] for r in f.get("resources") or []],
    "vulnerabilityId": lambda f: _one(_details(f).get("vulnerabilityId")),
    "relatedVulnerabilities": lambda f: list(_details(f).get("relatedVulnerabilities") or []),
    "vulnerabilitySource": lambda f: _one(_details(f).get("source")),
    "vendorSeverity": lambda f: _one(_details(f).get("vendorSeverity")),
    "fixAvailable": lambda f: _one(f.get("fixAvailable")),
    "exploitAvailable": lambda f: _one(f.get("exploitAvailable")),
    "ecrImageRepositoryName": lambda f: [d["repositoryName"] for d in _resource_details(f, "awsEcrContainerImage") if d],
    "ecrImageTags": lambda f: [t for d in _resource_details(f, "awsEcrContainerImage") for t in d.get("imageTags") or []],
    "ecrImageHash": lambda f: [d["imageHash"] for d in _resource_details(f, "awsEcrContainerImage") if d],
    "lambdaFunctionName": lambda f: [d["functionName"] for d in _resource_details(f, "awsLambdaFunction") if d],
    "lambdaFunctionRuntime": lambda f: [d["runtime"] for d in _resource_details(f, "awsLambdaFunction") if d],
    "lambdaFunctionLayers": lambda f: [x for d in _resource_details(f, "awsLambdaFunction") for x in d.get("layers") or []],
    "ec2InstanceImageId": lambda f: [d["imageId"] for d in _resource_details(f, "awsEc2Instance") if d.get("imageId")],
}  # fmt: skip
INSPECTOR_DATES: dict[str, Callable[[Mapping[str, Any]], list[Any]]] = {
    "firstObservedAt": lambda f: [f.get("firstObservedAt")],
    "lastObservedAt": lambda f: [f.get("lastObservedAt")],
    "updatedAt": lambda f: [f.get("updatedAt")],
    "ecrImagePushedAt": lambda f: [d.get("pushedAt") for d in _resource_details(f, "awsEcrContainerImage") if d],
    "ecrImageLastInUseAt": lambda f: [d.get("lastInUseAt") for d in _resource_details(f, "awsEcrContainerImage") if d],
}
INSPECTOR_NUMBERS: dict[str, Callable[[Mapping[str, Any]], list[Any]]] = {
    "inspectorScore": lambda f: [f.get("inspectorScore")],
    "epssScore": lambda f: [(f.get("epss") or {}).get("score")],
    "ecrImageInUseCount": lambda f: [d.get("inUseCount") for d in _resource_details(f, "awsEcrContainerImage") if d],
}


def _inspector_list(key: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not 1 <= len(value) <= INSPECTOR_LIST_MAX:
        raise FilterProblem(f"filterCriteria.{key}: a list of 1 to {INSPECTOR_LIST_MAX} filters")
    return value


def inspector_matcher(criteria: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for Inspector `filterCriteria` (raises `FilterProblem` on a filter the service would refuse or
    the stand-in does not implement)."""
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for key, value in criteria.items():
        entries = _inspector_list(key, value)
        if key in INSPECTOR_STRINGS:
            pairs: list[tuple[str, str]] = []
            for entry in entries:
                comparison, wanted = entry.get("comparison"), entry.get("value")
                if comparison not in INSPECTOR_COMPARISONS:
                    raise FilterProblem(f"filterCriteria.{key}: comparison must be one of {INSPECTOR_COMPARISONS}")
                if not isinstance(wanted, str) or not 1 <= len(wanted) <= 1024:
                    raise FilterProblem(f"filterCriteria.{key}: value must be 1 to 1024 characters")
                pairs.append((comparison, wanted))
            tests.append(functools.partial(_field_matches, INSPECTOR_STRINGS[key], pairs))
        elif key in INSPECTOR_DATES:
            windows = [_inspector_window(key, e, _as_datetime) for e in entries]
            tests.append(functools.partial(_in_windows, INSPECTOR_DATES[key], windows))
        elif key in INSPECTOR_NUMBERS:
            windows = [_inspector_window(key, e, _number) for e in entries]
            tests.append(functools.partial(_in_windows, INSPECTOR_NUMBERS[key], windows))
        else:
            raise FilterProblem(f"filterCriteria.{key}: not implemented by the local stand-in")
    return lambda finding: all(test(finding) for test in tests)


def _number(value: Any, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise FilterProblem(f"{what}: not a number: {value!r}")


def _inspector_window(key: str, entry: Mapping[str, Any], convert: Callable[[Any, str], Any]) -> tuple[Any, Any]:
    low_key, high_key = (
        ("startInclusive", "endInclusive") if key in INSPECTOR_DATES else ("lowerInclusive", "upperInclusive")
    )
    unknown = set(entry) - {low_key, high_key}
    if unknown:
        raise FilterProblem(f"filterCriteria.{key}: unknown members {sorted(unknown)}")
    low = convert(entry[low_key], key) if low_key in entry else None
    high = convert(entry[high_key], key) if high_key in entry else None
    return low, high


def _in_windows(
    field: Callable[[Mapping[str, Any]], list[Any]], windows: list[tuple[Any, Any]], finding: Mapping[str, Any]
) -> bool:
    """Any value within any window (inclusive)."""
    for raw in field(finding):
        if raw is None:
            continue
        value = _as_datetime(raw, "finding") if isinstance(raw, dt.datetime | str) else float(raw)
        for low, high in windows:
            if (low is None or value >= low) and (high is None or value <= high):
                return True
    return False


# ------------------------------------------------------------------------------------------ Security Hub v1 (ASFF)

V1_STRINGS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "Id": lambda f: _one(f.get("Id")),
    "Title": lambda f: _one(f.get("Title")),
    "RecordState": lambda f: _one(f.get("RecordState")),
    "Type": lambda f: [t for t in f.get("Types") or [] if isinstance(t, str)],
    "AwsAccountId": lambda f: _one(f.get("AwsAccountId")),
    "ProductName": lambda f: _one(f.get("ProductName")),
    "WorkflowStatus": lambda f: _one((f.get("Workflow") or {}).get("Status")),
    "SeverityLabel": lambda f: _one((f.get("Severity") or {}).get("Label")),
    "Region": lambda f: _one(f.get("Region")),
    "ResourceType": lambda f: [r.get("Type") for r in f.get("Resources") or [] if isinstance(r.get("Type"), str)],
    "ResourceId": lambda f: [r.get("Id") for r in f.get("Resources") or [] if isinstance(r.get("Id"), str)],
    "ResourceRegion": lambda f: [r.get("Region") for r in f.get("Resources") or [] if isinstance(r.get("Region"), str)],
    "VulnerabilitiesExploitAvailable": lambda f: [v.get("ExploitAvailable") for v in f.get("Vulnerabilities") or [] if v.get("ExploitAvailable")],
    "VulnerabilitiesFixAvailable": lambda f: [v.get("FixAvailable") for v in f.get("Vulnerabilities") or [] if v.get("FixAvailable")],
}  # fmt: skip


def v1_matcher(filters: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for `GetFindings` `Filters` (string attributes only)."""
    if len(filters) > V1_ATTRIBUTES_MAX:
        raise FilterProblem(f"at most {V1_ATTRIBUTES_MAX} filter attributes per request")
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for key, entries in filters.items():
        if key not in V1_STRINGS:
            raise FilterProblem(f"Filters.{key}: not implemented by the local stand-in")
        if not isinstance(entries, list) or not 1 <= len(entries) <= V1_VALUES_MAX:
            raise FilterProblem(f"Filters.{key}: 1 to {V1_VALUES_MAX} values")
        pairs: list[tuple[str, str]] = []
        for entry in entries:
            comparison, wanted = entry.get("Comparison"), entry.get("Value")
            if comparison not in SECURITYHUB_COMPARISONS or not isinstance(wanted, str) or not wanted:
                raise FilterProblem(f"Filters.{key}: a Value and a Comparison of {SECURITYHUB_COMPARISONS}")
            pairs.append((comparison, wanted))
        tests.append(functools.partial(_field_matches, V1_STRINGS[key], pairs))
    return lambda finding: all(test(finding) for test in tests)


# ------------------------------------------------------------------------------------------ Security Hub v2 (OCSF)


def ocsf_values(finding: Any, path: str) -> list[Any]:
    """The values at a dotted OCSF path, lists flattened (`vulnerabilities.cve.uid` → every vulnerability's)."""
    values = [finding]
    for part in path.split("."):
        step: list[Any] = []
        for value in values:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and part in item:
                    found = item[part]
                    step.extend(found if isinstance(found, list) else [found])
        values = step
    return values


class OcsfFields:
    """The field names the model allows per filter type (botocore's securityhub `Ocsf*Field` enums)."""

    def __init__(self) -> None:
        import botocore.session

        model = botocore.session.get_session().get_service_model("securityhub")
        self.allowed = {
            kind: frozenset(getattr(model.shape_for(shape), "enum", ()))
            for kind, shape in (
                ("StringFilters", "OcsfStringField"),
                ("NumberFilters", "OcsfNumberField"),
                ("BooleanFilters", "OcsfBooleanField"),
                ("DateFilters", "OcsfDateField"),
            )
        }


@functools.cache
def ocsf_fields() -> OcsfFields:
    return OcsfFields()


def _v2_filter(kind: str, entry: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    field_name = entry.get("FieldName")
    if field_name not in ocsf_fields().allowed[kind]:
        raise FilterProblem(f"{kind}: unknown FieldName {field_name!r}")
    spec = entry.get("Filter") or {}
    path = str(field_name)
    if kind == "StringFilters":
        comparison, wanted = spec.get("Comparison"), spec.get("Value")
        if comparison not in SECURITYHUB_COMPARISONS or not isinstance(wanted, str) or not wanted:
            raise FilterProblem(f"StringFilters {path}: a Value and a Comparison of {SECURITYHUB_COMPARISONS}")
        return lambda f: strings_match([str(v) for v in ocsf_values(f, path) if v is not None], [(comparison, wanted)])
    if kind == "BooleanFilters":
        flag = spec.get("Value")
        return lambda f: any(v is flag for v in ocsf_values(f, path))
    if kind == "NumberFilters":
        bounds = {k: _number(v, path) for k, v in spec.items()}

        def number_test(f: Mapping[str, Any]) -> bool:
            return any(_within(float(v), bounds) for v in ocsf_values(f, path) if isinstance(v, int | float))

        return number_test
    start = _as_datetime(spec["Start"], path) if "Start" in spec else None
    end = _as_datetime(spec["End"], path) if "End" in spec else None
    if "DateRange" in spec:
        raise FilterProblem(f"DateFilters {path}: DateRange is not implemented by the local stand-in")

    def date_test(f: Mapping[str, Any]) -> bool:
        moments = [_as_datetime(v, path) for v in ocsf_values(f, path) if isinstance(v, str)]
        return any((start is None or m >= start) and (end is None or m <= end) for m in moments)

    return date_test


def _within(value: float, bounds: Mapping[str, float]) -> bool:
    checks = {
        "Gte": lambda b: value >= b,
        "Lte": lambda b: value <= b,
        "Gt": lambda b: value > b,
        "Lt": lambda b: value < b,
        "Eq": lambda b: value == b,
    }
    return all(checks[k](b) for k, b in bounds.items() if k in checks)


def _composite(composite: Mapping[str, Any], depth: int) -> Callable[[Mapping[str, Any]], bool]:
    if depth > 3:
        raise FilterProblem("composite filters nest at most three levels")
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    for kind in ("StringFilters", "NumberFilters", "BooleanFilters", "DateFilters"):
        entries = composite.get(kind) or []
        if len(entries) > V2_FILTERS_PER_TYPE_MAX:
            raise FilterProblem(f"{kind}: at most {V2_FILTERS_PER_TYPE_MAX} filters in a composite filter")
        tests.extend(_v2_filter(kind, e) for e in entries)
    for kind in ("MapFilters", "IpFilters"):
        if composite.get(kind):
            raise FilterProblem(f"{kind}: not implemented by the local stand-in")
    tests.extend(_composite(c, depth + 1) for c in composite.get("NestedCompositeFilters") or [])
    if composite.get("Operator", "AND") == "OR":
        return lambda f: any(t(f) for t in tests) if tests else True
    return lambda f: all(t(f) for t in tests)


def v2_matcher(filters: Mapping[str, Any] | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for `GetFindingsV2` `Filters` (string, number, boolean and date filters, nested composites)."""
    if not filters:
        return lambda f: True
    composites = filters.get("CompositeFilters") or []
    if len(composites) > V2_COMPOSITES_MAX:
        raise FilterProblem(f"at most {V2_COMPOSITES_MAX} composite filters")
    tests = [_composite(c, 1) for c in composites]
    if filters.get("CompositeOperator", "AND") == "OR":
        return lambda f: any(t(f) for t in tests) if tests else True
    return lambda f: all(t(f) for t in tests)
