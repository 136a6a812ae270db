"""Reading untrusted decoded JSON: required fields, objects and lists that may be something else, finite numbers,
lone surrogates, and the checks both finding formats share (account ids, an ARN's region, CVE ids and CVSS scores).

Every helper that rejects a value raises `FindingError` naming the field and the finding id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from findings_router.domain.model import FindingError

# An AWS account id is exactly 12 ASCII digits (API reference AwsSecurityFinding.AwsAccountId: "Length Constraints: 12";
# the new Security Hub's cloud.account.uid is the same id). [0-9], not \d: \d also matches other scripts' digits.
ACCOUNT_ID = re.compile(r"[0-9]{12}")


SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def require(obj: Mapping[str, Any], key: str, finding_id: str | None, path: str | None = None) -> Any:
    value = obj.get(key)
    if value is None or value == "":
        raise FindingError("missing required field", finding_id=finding_id, field=path or key)
    return value


def str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_mapping(value: Any, finding_id: str | None, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise FindingError(f"expected an object, got {type(value).__name__}", finding_id=finding_id, field=path)
    return value


def as_list(value: Any, finding_id: str | None, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FindingError(f"expected a list, got {type(value).__name__}", finding_id=finding_id, field=path)
    return value


def number(value: Any) -> float | None:
    """A finite number, or None: strings are parsed, and NaN, infinities and out-of-range integers are refused
    (they would make the PagerDuty body invalid JSON or overflow)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        parsed = float(value)
    except (ValueError, OverflowError):
        return None
    return parsed if math.isfinite(parsed) else None


def account(value: Any, finding_id: str, path: str) -> str:
    """The account id at `path`: exactly 12 digits, else a malformed finding (missing is `require`'s job)."""
    if isinstance(value, str) and ACCOUNT_ID.fullmatch(value):
        return value
    shown = repr(value[:40]) if isinstance(value, str) else f"of type {type(value).__name__}"
    raise FindingError(f"malformed account id {shown} (expected 12 digits)", finding_id=finding_id, field=path)


def flag(value: Any) -> bool:
    """A boolean flag that may arrive as JSON true or as the string "true" (ASFF ProductFields are all strings)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def region_from_arn(arn: str) -> str:
    parts = arn.split(":", 4)
    return parts[3] if len(parts) > 3 else ""


def cves_and_max_cvss(vulnerabilities: Iterable[tuple[Any, Iterable[Any]]]) -> tuple[tuple[str, ...], float | None]:
    """(CVE ids in order, each once; the highest finite CVSS base score) of (CVE id, base scores) pairs, one pair per
    vulnerability. Ids that are not non-empty strings and scores that are not finite numbers are left out."""
    cves: list[str] = []
    max_cvss: float | None = None
    for cve, scores in vulnerabilities:
        if isinstance(cve, str) and cve and cve not in cves:
            cves.append(cve)
        for raw in scores:
            score = number(raw)
            if score is not None and (max_cvss is None or score > max_cvss):
                max_cvss = score
    return tuple(cves), max_cvss


def fix_surrogates(text: str) -> str:
    # JSON may carry lone UTF-16 surrogates ("\ud800"); they cannot be encoded as UTF-8 (hashing, logs, HTTP).
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean_json_text(value: Any) -> Any:
    """Replace lone surrogates in every string of a decoded JSON value (cheap no-op when there are none)."""
    if isinstance(value, str):
        return fix_surrogates(value) if any("\ud800" <= c <= "\udfff" for c in value) else value
    if isinstance(value, list):
        return [clean_json_text(v) for v in value]
    if isinstance(value, dict):
        return {clean_json_text(k): clean_json_text(v) for k, v in value.items()}
    return value
