"""One row of a PSIRT report: a resource affected by a CVE, through one vulnerable package.

`AffectedResource` is what every source (Inspector `ListFindings`, Security Hub `GetFindingsV2` and `GetFindings`)
is parsed into, what `report` merges, sorts and counts, and what `findings-router cve` prints. Its field names are the
json and csv columns: keep them stable. Times are ISO 8601 UTC strings to the second (`2026-11-19T11:02:47Z`), so that
they sort as text and print as they are.

Pure: no AWS SDK, no clock.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields
from typing import Any, Final

SOURCE_INSPECTOR: Final = "inspector"
SOURCE_SECURITYHUB_V2: Final = "securityhub-v2"
SOURCE_SECURITYHUB_V1: Final = "securityhub"
SOURCES: Final = (SOURCE_INSPECTOR, SOURCE_SECURITYHUB_V2, SOURCE_SECURITYHUB_V1)

# Inspector's resource types; the Security Hub (ASFF) and OCSF names of the same resources map onto them.
ECR_IMAGE: Final = "AWS_ECR_CONTAINER_IMAGE"
LAMBDA_FUNCTION: Final = "AWS_LAMBDA_FUNCTION"
EC2_INSTANCE: Final = "AWS_EC2_INSTANCE"
RESOURCE_TYPE_ALIASES: Final = {
    "AwsEcrContainerImage": ECR_IMAGE,
    "AWS::ECR::ContainerImage": ECR_IMAGE,
    "AWS::ECR::Image": ECR_IMAGE,
    "AwsLambdaFunction": LAMBDA_FUNCTION,
    "AWS::Lambda::Function": LAMBDA_FUNCTION,
    "AwsEc2Instance": EC2_INSTANCE,
    "AWS::EC2::Instance": EC2_INSTANCE,
    "AwsEcrRepository": "AWS_ECR_REPOSITORY",
    "AWS::ECR::Repository": "AWS_ECR_REPOSITORY",
}
# Short names for tables and summaries.
RESOURCE_TYPE_LABELS: Final = {
    ECR_IMAGE: "ECR image",
    LAMBDA_FUNCTION: "Lambda function",
    EC2_INSTANCE: "EC2 instance",
    "AWS_ECR_REPOSITORY": "ECR repository",
    "CODE_REPOSITORY": "code repository",
    "MACHINE_IMAGE": "machine image",
}

# The ids Inspector reports vulnerabilities under: CVEs, Microsoft KB articles (Windows), GitHub advisories.
CVE_ID = re.compile(r"^CVE-\d{4}-\d{4,}$")
KB_ID = re.compile(r"^KB\d{6,8}$")
GHSA_ID = re.compile(r"^GHSA(-[23456789cfghjmpqrvwx]{4}){3}$")


# Real findings vary: a field of the wrong type reads as absent, never as an error.
def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def normalize_vulnerability_id(text: str) -> str | None:
    """`text` as Inspector spells the id (CVE-…, KB…, GHSA-xxxx-xxxx-xxxx), or None when it is none of these."""
    value = text.strip()
    upper = value.upper()
    if CVE_ID.match(upper) or KB_ID.match(upper):
        return upper
    if upper.startswith("GHSA-"):
        ghsa = "GHSA-" + value[5:].lower()
        return ghsa if GHSA_ID.match(ghsa) else None
    return None


def resource_type_name(value: str | None) -> str:
    """Inspector's name of a resource type (`AwsEcrContainerImage`, `AWS::EC2::Instance` → `AWS_…`); unknown names
    are kept as they are."""
    if not value:
        return "UNKNOWN"
    return RESOURCE_TYPE_ALIASES.get(value, value)


def resource_type_label(value: str) -> str:
    return RESOURCE_TYPE_LABELS.get(value, value)


def function_name(arn: str) -> str:
    """A Lambda function's name from its ARN (`…:function:NAME[:VERSION]`), else the text itself."""
    _, found, rest = arn.partition(":function:")
    return rest.split(":", 1)[0] if found else arn


def iso_time(value: Any) -> str | None:
    """An ISO 8601 UTC string to the second from what the APIs give: a datetime (boto3 parses Inspector's
    timestamps), epoch seconds or milliseconds (OCSF `*_time`), or an ISO string (ASFF, OCSF `*_dt`). None for
    anything else."""
    if value is None or isinstance(value, bool):
        return None
    moment: dt.datetime
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, int | float):
        seconds = float(value) / 1000 if value > 100_000_000_000 else float(value)
        try:
            moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str) and value.strip():
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError):
        return None


def as_float(value: Any) -> float | None:
    """A number from a number or a numeric string (OCSF's EPSS is a string); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class AffectedResource:
    """A resource affected by `cve` through one vulnerable package (one row of the report).

    `resource_type` is Inspector's name (AWS_ECR_CONTAINER_IMAGE, AWS_LAMBDA_FUNCTION, AWS_EC2_INSTANCE) when known,
    else the source's. `resource_label`: what a person recognizes (repository:tags, function name, instance id and
    Name tag). `vulnerability_id`: the id the finding is filed under, which differs from `cve` for a Windows KB
    finding or a GitHub advisory listing the CVE among its related vulnerabilities. `fixed_version` None: no fix
    known. `cvss` with its `cvss_version` and `cvss_source` (Inspector's adjusted score when it has one, else the
    highest score reported); `inspector_score` is Inspector's own. `exploit_available` None: unknown.
    `fix_available`: YES, NO or PARTIAL (Inspector's values). `updated`: when the finding last changed (not only
    re-observed). `change`: with --since, "new", "changed" or "fixed" (None: unchanged, or no --since)."""

    cve: str
    account: str
    region: str | None
    resource_type: str
    resource_id: str
    resource_label: str
    package: str | None
    installed_version: str | None
    fixed_version: str | None
    cvss: float | None
    cvss_version: str | None
    cvss_source: str | None
    inspector_score: float | None
    epss: float | None
    exploit_available: bool | None
    fix_available: str | None
    severity: str | None
    first_observed: str | None
    last_observed: str | None
    status: str | None
    sources: frozenset[str]
    finding_ids: tuple[str, ...]
    environment: str | None = None
    vulnerability_id: str | None = None
    in_use_count: int | None = None
    updated: str | None = None
    change: str | None = None

    @property
    def has_fix(self) -> bool:
        """A fixed version is known (or the source says a fix is available)."""
        return self.fixed_version is not None or self.fix_available in ("YES", "PARTIAL")

    def to_dict(self) -> dict[str, Any]:
        """The json record: every field, sources and finding ids as sorted lists."""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["sources"] = sorted(self.sources)
        record["finding_ids"] = list(self.finding_ids)
        return record


COLUMNS: Final = tuple(f.name for f in fields(AffectedResource))


def csv_cell(value: Any) -> str:
    """A csv cell: lists and sets joined with a space, booleans as true/false, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset | set):
        return " ".join(sorted(value))
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return str(value)
