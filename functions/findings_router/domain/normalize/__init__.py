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

This module reads the envelope (events, exported documents); `asff` and `ocsf` read one finding of each format, with
the helpers for untrusted JSON in `_json`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from findings_router.domain.model import Finding, FindingError
from findings_router.domain.normalize._json import SURROGATE_ESCAPE, as_list, clean_json_text
from findings_router.domain.normalize.asff import normalize_asff
from findings_router.domain.normalize.ocsf import identity_product_arn, normalize_ocsf

__all__ = [
    "ASFF_DETAIL_TYPES",
    "IGNORED_DETAIL_TYPES",
    "OCSF_DETAIL_TYPES",
    "SECURITYHUB_SOURCE",
    "NormalizedEvent",
    "clean_json_text",
    "identity_product_arn",
    "loads",
    "normalize_asff",
    "normalize_document",
    "normalize_event",
    "normalize_ocsf",
]

ASFF_DETAIL_TYPES = frozenset({"Security Hub Findings - Imported", "Security Hub Findings - Custom Action"})


OCSF_DETAIL_TYPES = frozenset({"Findings Imported V2"})


IGNORED_DETAIL_TYPES = frozenset({"Security Hub Insight Results"})


SECURITYHUB_SOURCE = "aws.securityhub"


_CUSTOM_ACTION_MARKER = ":action/custom/"


@dataclass
class NormalizedEvent:
    """What one EventBridge event (or exported document) yields: findings, per-finding errors, or nothing."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[FindingError] = field(default_factory=list)
    ignored_reason: str | None = None


def loads(text: str | bytes) -> Any:
    """`json.loads` for untrusted input: every failure is a `FindingError`, and lone surrogates are replaced.

    json.loads also raises RecursionError (deep nesting) and ValueError (integers of more than 4300 digits)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError, TypeError) as exc:
        raise FindingError(f"not JSON: {type(exc).__name__}: {str(exc)[:200]}") from None
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return clean_json_text(value) if SURROGATE_ESCAPE.search(raw) else value


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
        return _normalize_many(as_list(doc["Findings"], None, "Findings"), False, None)
    if "finding_info" in doc or "class_uid" in doc:
        return _normalize_many([doc], True, None)
    if "ProductArn" in doc or "SchemaVersion" in doc:
        return _normalize_many([doc], False, None)
    raise FindingError(
        "not a Security Hub event, get-findings output or finding (no detail-type, Findings, ProductArn or finding_info)"
    )
