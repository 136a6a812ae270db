"""Reading untrusted decoded JSON: required fields, objects and lists that may be something else, finite numbers,
lone surrogates, and the checks both finding formats share (account ids, an ARN's region, and what vulnerabilities say:
CVE ids, CVSS and EPSS scores, exploit and fix availability).

Every helper that rejects a value raises `FindingError` naming the field and the finding id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from findings_router.domain.model import FindingError, FixAvailable

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
    if type(value) is str:  # json.loads' own type first: no subclass check (this runs ~15 times per finding)
        return value or None
    return value if isinstance(value, str) and value else None


# What `as_mapping` gives for a missing object: shared, never written to.
EMPTY: Mapping[str, Any] = MappingProxyType({})


def as_mapping(value: Any, finding_id: str | None, path: str) -> Mapping[str, Any]:
    if type(value) is dict:  # what json.loads makes: no abstract-base-class check
        return value
    if value is None:
        return EMPTY
    if not isinstance(value, Mapping):
        raise FindingError(f"expected an object, got {type(value).__name__}", finding_id=finding_id, field=path)
    return value


def as_list(value: Any, finding_id: str | None, path: str) -> list[Any]:
    if type(value) is list:
        return value
    if value is None:
        return []
    if not isinstance(value, list):
        raise FindingError(f"expected a list, got {type(value).__name__}", finding_id=finding_id, field=path)
    return value


def number(value: Any) -> float | None:
    """A finite number, or None: strings are parsed, and NaN, infinities and out-of-range integers are refused
    (they would make the PagerDuty body invalid JSON or overflow)."""
    kind = type(value)
    if kind is float:  # the usual case first (inf - inf and nan - nan are nan, which is not 0)
        return value if value - value == 0 else None
    if kind is bool or not isinstance(value, int | float | str):
        return None
    try:
        parsed = float(value)
    except (ValueError, OverflowError):
        return None
    return parsed if math.isfinite(parsed) else None


def account(value: Any, finding_id: str, path: str) -> str:
    """The account id at `path`: exactly 12 digits, else a malformed finding (missing is `require`'s job)."""
    if type(value) is str and len(value) == 12 and value.isascii() and value.isdigit():
        return value  # the ACCOUNT_ID pattern, without the regular expression
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


class VulnerabilityFacts(NamedTuple):
    """What a finding's vulnerabilities say, together (see `vulnerability_facts`)."""

    cve_ids: tuple[str, ...]
    max_cvss: float | None
    exploit_available: bool | None
    fix_available: FixAvailable | None
    max_epss: float | None


NO_VULNERABILITIES = VulnerabilityFacts((), None, None, None, None)


_FIX_WORDS: dict[str, FixAvailable] = {
    "YES": "YES",
    "NO": "NO",
    "PARTIAL": "PARTIAL",
    "COMPLETE": "YES",  # OCSF fix_coverage
    "NONE": "NO",
}


_FIX_BITS: dict[FixAvailable, int] = {"YES": 1, "NO": 2, "PARTIAL": 4}


# What the vulnerabilities say together, by the bits of what each says: none, all YES, all NO; else PARTIAL.
_FIX_OF_BITS: dict[int, FixAvailable | None] = {0: None, 1: "YES", 2: "NO"}


def yes_no(value: Any) -> bool | None:
    """ASFF `YES`/`NO` (any case) or a JSON boolean (OCSF); None for anything else."""
    if value is True or value is False:
        return value
    if value == "YES":  # the usual spelling first: no string work
        return True
    if value == "NO":
        return False
    if isinstance(value, str):
        word = value.strip().upper()
        if word in ("YES", "TRUE"):
            return True
        if word in ("NO", "FALSE"):
            return False
    return None


def fix_word(value: Any) -> FixAvailable | None:
    """ASFF FixAvailable (`YES`, `NO`, `PARTIAL`) or OCSF fix_coverage (`COMPLETE`, `PARTIAL`, `NONE`), any case."""
    if not isinstance(value, str):
        return None
    word = _FIX_WORDS.get(value)
    return word if word is not None else _FIX_WORDS.get(value.strip().upper())


def epss(value: Any) -> float | None:
    """An EPSS score: a finite number (or a string of one: OCSF sends a string) in 0..1, else None."""
    if type(value) is float and 0.0 <= value <= 1.0:  # the usual ASFF double (NaN fails the comparison)
        return value
    score = number(value)
    return score if score is not None and 0.0 <= score <= 1.0 else None


# One vulnerability as a normalizer read it: (id, CVSS base scores, exploit, fix, EPSS), the last three already parsed
# (`yes_no`, `fix_word`, `epss`).
Vulnerability = tuple[Any, Iterable[Any], bool | None, FixAvailable | None, float | None]


def vulnerability_facts(vulnerabilities: Iterable[Vulnerability]) -> VulnerabilityFacts:
    """What a finding's vulnerabilities say together:

    * CVE ids in order, each once (ids that are not non-empty strings are left out); the highest finite CVSS score;
    * exploit: True if any says YES/true, False if all that say anything say NO/false, None if none says;
    * fix: YES if all that say are YES, NO if all are NO, PARTIAL otherwise (a PARTIAL, or YES and NO mixed);
    * EPSS: the highest score in 0..1.
    A value that is missing or malformed says nothing: it never fails the finding."""
    cves: list[str] = []
    max_cvss: float | None = None
    exploit: bool | None = None
    fixes = 0
    max_epss: float | None = None
    for vuln_id, scores, says_exploit, fix, score in vulnerabilities:
        if isinstance(vuln_id, str) and vuln_id and vuln_id not in cves:
            cves.append(vuln_id)
        for raw in scores:
            cvss = number(raw)
            if cvss is not None and (max_cvss is None or cvss > max_cvss):
                max_cvss = cvss
        if says_exploit is not None and exploit is not True:
            exploit = says_exploit
        if fix is not None:
            fixes |= _FIX_BITS[fix]
        if score is not None and (max_epss is None or score > max_epss):
            max_epss = score
    return VulnerabilityFacts(tuple(cves), max_cvss, exploit, _FIX_OF_BITS.get(fixes, "PARTIAL"), max_epss)


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
