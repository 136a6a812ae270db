"""Every key of the state table and of the on-call incidents."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from findings_router.domain.model import SEVERITY_RANK, Finding, Severity

KEY_PREFIX = "fr1-"


STORM_PREFIX = f"{KEY_PREFIX}storm-"


# The canary's run record, one per environment (adapters/canary_log.py): in the state table, not a finding's.
CANARY_RECORD_PREFIX = f"{KEY_PREFIX}canary-"


def canary_record_key(environment: str) -> str:
    return f"{CANARY_RECORD_PREFIX}{environment}"


SECURITYHUB_PRODUCT_SUFFIX = ":product/aws/securityhub"

# The ack receiver's idempotency records (Powertools, in the state table): "<function name>.<label>#<hash of the
# webhook id>". The label is what Powertools derived from the wrapped function's location in 0.2.0; it is fixed here
# so that moving code never changes the keys (records written before an upgrade still deduplicate redeliveries).
ACK_IDEMPOTENCY_LABEL = "findings_router.ack_handler.get_runtime.<locals>.process"


def ack_idempotency_prefix(function_name: str) -> str:
    return f"{function_name}.{ACK_IDEMPOTENCY_LABEL}"


def dedup_key(finding: Finding, fold_control_findings: bool = True) -> str:
    """A stable, fixed-length key for "the same problem" (see docs/dedup.md).

    Security Hub's own control findings fold on (account, region, control id, resource): without consolidated
    control findings one failing check yields one finding per enabled standard, and switching consolidation on or
    off re-creates every finding with a new id; both are the same problem for the operator.
    Everything else is keyed on the finding's identity (product ARN, finding id), which is what Security Hub
    itself uses; `productv2` ARNs of the new Security Hub are folded onto `product` so the two pipelines agree.
    """
    if fold_control_findings and finding.control_id and finding.product_arn.endswith(SECURITYHUB_PRODUCT_SUFFIX):
        basis = f"control\n{finding.account}\n{finding.region}\n{finding.control_id}\n{finding.primary_resource_id}"
    else:
        basis = f"finding\n{finding.product_arn}\n{finding.id}"
    # 40 hex chars (160 bits): far below PagerDuty's 255-char dedup_key limit whatever the ARNs' length.
    # surrogatepass: a lone surrogate in an id (possible in JSON) must still hash, not crash the batch.
    return KEY_PREFIX + hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()[:40]


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
