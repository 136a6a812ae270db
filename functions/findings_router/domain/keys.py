"""Every key of the state table and of the on-call incidents."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal

from findings_router.domain.model import SEVERITY_RANK, Finding, Severity

KEY_PREFIX = "fr1-"


STORM_PREFIX = f"{KEY_PREFIX}storm-"


# The canary's run record, one per environment (adapters/canary_log.py): in the state table, not a finding's.
CANARY_RECORD_PREFIX = f"{KEY_PREFIX}canary-"


def canary_record_key(environment: str) -> str:
    return f"{CANARY_RECORD_PREFIX}{environment}"


# Silences (domain/silences.py, adapters/silences.py): one item per silence, `fr1-silence-<env>-<id>`.
SILENCE_PREFIX = f"{KEY_PREFIX}silence-"


def silence_key(environment: str, silence_id: str) -> str:
    return f"{SILENCE_PREFIX}{environment}-{silence_id}"


# Shadow mode (`mode: shadow`, rules with `shadow: true`): the shadow decisions' episodes live under their own keys,
# `fr1-shadow-<hash>` beside the live `fr1-<hash>`, so that switching to live inherits none of them.
SHADOW_PREFIX = f"{KEY_PREFIX}shadow-"


def shadow_key(key: str) -> str:
    """The shadow namespace's key of the live dedup key `key` (the same hash)."""
    return SHADOW_PREFIX + key.removeprefix(KEY_PREFIX)


def live_key(key: str) -> str:
    """The live dedup key of a shadow key (a live key as it is)."""
    return KEY_PREFIX + key.removeprefix(SHADOW_PREFIX) if key.startswith(SHADOW_PREFIX) else key


SECURITYHUB_PRODUCT_SUFFIX = ":product/aws/securityhub"

# The ack receiver's idempotency records (Powertools, in the state table): "<function name>.<label>#<hash of the
# webhook id>". The label is what Powertools derived from the wrapped function's location in 0.2.0; it is fixed here
# so that moving code never changes the keys (records written before an upgrade still deduplicate redeliveries).
ACK_IDEMPOTENCY_LABEL = "findings_router.ack_handler.get_runtime.<locals>.process"


def ack_idempotency_prefix(function_name: str) -> str:
    return f"{function_name}.{ACK_IDEMPOTENCY_LABEL}"


# `dedup.fold_vulnerabilities`: one episode per finding (off), per (vulnerability, account), or per (vulnerability,
# resource).
FoldVulnerabilities = Literal["off", "cve_account", "cve_resource"]


# The type Amazon Inspector (and other scanners) give package vulnerability findings (ASFF Types, OCSF
# finding_info.types).
PACKAGE_VULNERABILITY_TYPE = "Software and Configuration Checks/Vulnerabilities/CVE"


INSPECTOR_PRODUCT_SUFFIX = ":product/aws/inspector"


# An ECR image is `…:repository/<name>/sha256:<digest>`: a rebuilt image is a new digest of the same repository.
_ECR_IMAGE_DIGEST = re.compile(r"^(arn:[^:]+:ecr:[^:]*:[^:]*:repository/.+)/sha256:[0-9a-fA-F]{64}$")


def folded_vulnerability(finding: Finding, mode: FoldVulnerabilities) -> str | None:
    """The vulnerability id a package-vulnerability finding's episode folds on (its first one: a CVE, or a Windows
    KB id, which Inspector reports instead of the CVEs it fixes), upper-cased; None when `mode` is off or the finding
    is not one (docs/dedup.md, "Folding vulnerabilities").

    A package-vulnerability finding has a vulnerability id and either the type `PACKAGE_VULNERABILITY_TYPE` or
    Amazon Inspector's product ARN, is not a Security Hub control finding, and its id is not a weakness class
    (`CWE-…`: Inspector's code scanning, which is about one place in one function's code)."""
    if mode == "off" or not finding.cve_ids or finding.control_id is not None:
        return None
    vuln = finding.cve_ids[0].strip().upper()
    if not vuln or vuln.startswith("CWE-"):
        return None
    if PACKAGE_VULNERABILITY_TYPE in finding.types or finding.product_arn.endswith(INSPECTOR_PRODUCT_SUFFIX):
        return vuln
    return None


def folded_resource(finding: Finding) -> str:
    """The resource a `cve_resource` episode folds on: the primary resource, an ECR image as its repository (so that
    rebuilt images of one repository are one resource)."""
    resource = finding.primary_resource_id
    image = _ECR_IMAGE_DIGEST.match(resource)
    return image.group(1) if image else resource


def dedup_key(
    finding: Finding, fold_control_findings: bool = True, fold_vulnerabilities: FoldVulnerabilities = "off"
) -> str:
    """A stable, fixed-length key for "the same problem" (see docs/dedup.md).

    Security Hub's own control findings fold on (account, region, control id, resource): without consolidated
    control findings one failing check yields one finding per enabled standard, and switching consolidation on or
    off re-creates every finding with a new id; both are the same problem for the operator.
    With `fold_vulnerabilities`, package-vulnerability findings fold on (vulnerability id, account) or (vulnerability
    id, account, resource): Inspector reports one finding per CVE x image x update.
    Everything else is keyed on the finding's identity (product ARN, finding id), which is what Security Hub
    itself uses; `productv2` ARNs of the new Security Hub are folded onto `product` so the two pipelines agree.
    """
    if fold_control_findings and finding.control_id and finding.product_arn.endswith(SECURITYHUB_PRODUCT_SUFFIX):
        basis = f"control\n{finding.account}\n{finding.region}\n{finding.control_id}\n{finding.primary_resource_id}"
    elif (vuln := folded_vulnerability(finding, fold_vulnerabilities)) is not None:
        basis = f"vulnerability\n{finding.account}\n{vuln}"
        if fold_vulnerabilities == "cve_resource":
            basis += f"\n{folded_resource(finding)}"
    else:
        basis = f"finding\n{finding.product_arn}\n{finding.id}"
    return _hashed(basis)


def _hashed(basis: str) -> str:
    # 40 hex chars (160 bits): far below PagerDuty's 255-char dedup_key limit whatever the ARNs' length.
    # surrogatepass: a lone surrogate in an id (possible in JSON) must still hash, not crash the batch.
    return KEY_PREFIX + hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def member_ref(finding_id: str) -> str:
    """A short stand-in for a finding id in a folded episode's resolution memory (64 bits of SHA-256)."""
    return hashlib.sha256(finding_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def incident_key(key: str, severity: Severity, escalated: bool) -> str:
    return f"{key}~{SEVERITY_RANK[severity]}" if escalated else key


def base_key(incident: str) -> str:
    """The dedup key behind an incident key (strips an escalation suffix)."""
    return incident.split("~", 1)[0]


def is_shared_incident(incident_key: str) -> bool:
    """Storm incidents belong to many findings: one of them resolving does not resolve the storm."""
    return incident_key.startswith(STORM_PREFIX)


META_STORM_PREFIX = f"{KEY_PREFIX}meta-storm-"


def storm_key(values: Sequence[str], window: int) -> str:
    basis = "\n".join((*values, str(window)))
    return STORM_PREFIX + hashlib.sha256(basis.encode()).hexdigest()[:36]


def meta_storm_key(environment: str) -> str:
    return META_STORM_PREFIX + hashlib.sha256(environment.encode()).hexdigest()[:16]


def meta_dedup_key(alarm_arn: str) -> str:
    return f"{KEY_PREFIX}meta-" + hashlib.sha256(alarm_arn.encode()).hexdigest()[:32]
