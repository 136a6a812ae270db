"""The one normalized finding type that everything after the edge speaks.

Plain frozen dataclasses (not pydantic) on purpose: they are built once per finding on the hot path
and a hand-written normalizer into slots classes costs a fraction of model validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

# The Security Hub workflow statuses findings-router sets (BatchUpdateFindings; OCSF status_id 2 and 4).
Workflow = Literal["NOTIFIED", "RESOLVED"]


# Whether a fix exists for a finding's vulnerabilities (ASFF Vulnerabilities[].FixAvailable; OCSF fix_coverage
# COMPLETE/PARTIAL/NONE or is_fix_available): YES for every one, NO for none, PARTIAL otherwise.
FixAvailable = Literal["YES", "NO", "PARTIAL"]


class Severity(StrEnum):
    INFORMATIONAL = "INFORMATIONAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self]

    @classmethod
    def from_normalized(cls, score: float) -> Severity:
        """ASFF's documented Normalized→Label mapping (0, 1–39, 40–69, 70–89, 90–100)."""
        if score >= 90:
            return cls.CRITICAL
        if score >= 70:
            return cls.HIGH
        if score >= 40:
            return cls.MEDIUM
        if score >= 1:
            return cls.LOW
        return cls.INFORMATIONAL


SEVERITY_RANK: dict[Severity, int] = {
    Severity.INFORMATIONAL: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class FindingFormat(StrEnum):
    ASFF = "asff"
    OCSF = "ocsf"


@dataclass(frozen=True, slots=True)
class Resource:
    type: str
    id: str
    region: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def tag(self, key: str) -> str | None:
        for k, v in self.tags:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Finding:
    """A Security Hub finding, whichever format it came in.

    `is_resolved` is the one place that says "Security Hub considers this problem gone":
    archived, compliance PASSED, or workflow RESOLVED/SUPPRESSED (OCSF: resolved/archived/closed).
    """

    format: FindingFormat
    id: str
    product_arn: str
    product_name: str
    company_name: str
    generator_id: str
    control_id: str | None
    account: str
    region: str
    title: str
    description: str
    severity: Severity
    severity_score: float
    types: tuple[str, ...]
    resources: tuple[Resource, ...]
    cve_ids: tuple[str, ...]
    max_cvss: float | None
    workflow_status: str | None
    record_state: str | None
    compliance_status: str | None
    first_observed_at: str | None
    last_observed_at: str | None
    updated_at: str | None
    source_url: str | None
    remediation_text: str | None
    remediation_url: str | None
    note: str | None = None
    custom_action: str | None = None  # the custom action's name, when an operator sent the finding by hand
    custom_action_arn: str | None = None  # …:action/custom/<id>: which action (ours, or another tool's)
    sample: bool = False  # a sample finding (GuardDuty create-sample-findings, ASFF `Sample: true`)
    # What the finding's vulnerabilities say (normalize/_json.py `vulnerability_facts`): None when none of them says.
    exploit_available: bool | None = None  # True: any has a known exploit; False: every one that says, says none
    fix_available: FixAvailable | None = None
    max_epss: float | None = None  # the highest EPSS score (0-1) of its vulnerabilities
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def is_resolved(self) -> bool:
        return (
            self.record_state == "ARCHIVED"
            or self.compliance_status == "PASSED"
            or self.workflow_status in ("RESOLVED", "SUPPRESSED")
        )

    @property
    def resource_ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.resources)

    @property
    def primary_resource_id(self) -> str:
        return self.resources[0].id if self.resources else f"AWS::::Account:{self.account}"


class FindingError(ValueError):
    """A finding (or event) that cannot be normalized. Names the finding id and the field."""

    def __init__(self, message: str, *, finding_id: str | None = None, field: str | None = None) -> None:
        self.finding_id = finding_id
        self.field = field
        where = []
        if finding_id:
            where.append(f"finding {finding_id}")
        if field:
            where.append(f"field {field}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
