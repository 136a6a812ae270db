"""What a receiver of findings-router's webhooks checks: the Standard Webhooks 1.0 signature, and the body against
docs/webhook-schema.md (version 1); and the Slack and Microsoft Teams bodies of the chat presets.

The signature check is written from the spec (standard-webhooks/standard-webhooks `spec/standard-webhooks.md`, and its
reference Python library `webhooks.py`), independently of the notifier's signer: headers `webhook-id`,
`webhook-timestamp` (within ±5 minutes), `webhook-signature` (a space-separated list; one `v1,<base64>` matching
HMAC-SHA256 of `"{id}.{timestamp}.{body}"` under any of the receiver's secrets suffices, compared in constant time).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Any

SIGNATURE_TOLERANCE_SECONDS = 300
SCHEMA_VERSION = "1"
MAX_BODY_BYTES = 20 * 1024
TYPES = ("finding.triggered", "storm.triggered", "meta.storm", "meta.alarm", "meta.digest", "incident.resolved")
SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# --------------------------------------------------------------------------- Standard Webhooks


def _key(secret: str) -> bytes:
    text = secret.removeprefix("whsec_")
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def verify_signature(
    headers: dict[str, str],
    body: bytes,
    secrets: list[str],
    now: float,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
) -> list[str]:
    """Why a delivery fails verification with any of `secrets` at `now` (empty: verified)."""
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not (msg_id and timestamp and signatures):
        return ["Missing required headers (webhook-id, webhook-timestamp, webhook-signature)"]
    if not timestamp.isdigit():
        return [f"Invalid webhook-timestamp {timestamp!r} (unix seconds)"]
    if int(timestamp) < now - tolerance:
        return ["Message timestamp too old"]
    if int(timestamp) > now + tolerance:
        return ["Message timestamp too new"]
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = [hmac.new(_key(s), signed, hashlib.sha256).digest() for s in secrets]
    for item in signatures.split(" "):
        version, _, value = item.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if any(hmac.compare_digest(given, e) for e in expected):
            return []
    return ["No matching signature found"]


# --------------------------------------------------------------------------- the body, version 1

_FINDING_FULL = {
    "id": str,
    "format": str,
    "product": str,
    "company": str,
    "product_arn": str,
    "generator_id": str,
    "control_id": (str, type(None)),
    "account": str,
    "region": str,
    "title": str,
    "description": str,
    "severity": str,
    "severity_score": (int, float),
    "types": list,
    "resources": list,
    "resource_count": int,
    "cve_ids": list,
    "max_cvss": (int, float, type(None)),
    "workflow_status": (str, type(None)),
    "record_state": (str, type(None)),
    "compliance_status": (str, type(None)),
    "first_observed_at": (str, type(None)),
    "last_observed_at": (str, type(None)),
    "updated_at": (str, type(None)),
    "source_url": (str, type(None)),
    "remediation": dict,
    "console_url": str,
    "sample": bool,
}
# What is left of the finding when the body had to be cut (`data.truncated` says so).
_FINDING_ESSENTIAL = {
    "id": str,
    "account": str,
    "region": str,
    "product": str,
    "title": str,
    "severity": str,
    "severity_score": (int, float),
    "resource_count": int,
    "console_url": str,
}
_STORM = {"key": str, "group": str, "count": int, "window_minutes": int, "samples": list}
# `data.affected`: only in the triggers of a folded vulnerability episode (dedup.fold_vulnerabilities).
_AFFECTED = {
    "vulnerability": str,
    "fold": str,
    "resources": list,
    "count": int,
    "more": int,
    "open_findings": int,
    "findings_capped": bool,
    "command": str,
    "exploit_available": (bool, type(None)),
    "fix_available": (str, type(None)),
    "max_epss": (int, float, type(None)),
}
_META = {
    "kind": str,
    "name": str,
    "reason": (str, type(None)),
    "description": (str, type(None)),
    "account": (str, type(None)),
    "region": (str, type(None)),
    "changed_at": (str, type(None)),
    "runbook": (str, type(None)),
}
_DATA = {
    "environment": str,
    "incident_key": str,
    "dedup_key": str,
    "kind": str,
    "severity": str,
    "urgency": str,
    "escalated_from": (str, type(None)),
    "decision": str,
    "episode": int,
    "summary": str,
    "finding": (dict, type(None)),
    "storm": (dict, type(None)),
    "meta": (dict, type(None)),
    "links": list,
    "truncated": (str, type(None)),
}


def _shape(obj: dict[str, Any], spec: dict[str, Any], where: str, errors: list[str]) -> None:
    """`obj` has exactly the keys of `spec`, each of its type (bool is not an int here)."""
    errors.extend(f"{where}.{k}: unknown field" for k in sorted(set(obj) - set(spec)))
    for key, kind in spec.items():
        if key not in obj:
            errors.append(f"{where}.{key}: missing")
            continue
        value = obj[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            errors.append(f"{where}.{key}: must be {'/'.join(k.__name__ for k in kinds)}, not a boolean")
        elif not isinstance(value, kinds):
            errors.append(f"{where}.{key}: must be {'/'.join(k.__name__ for k in kinds)}")


def _finding(finding: dict[str, Any], truncated: bool, errors: list[str]) -> None:
    spec = _FINDING_ESSENTIAL if truncated and set(finding) == set(_FINDING_ESSENTIAL) else _FINDING_FULL
    _shape(finding, spec, "data.finding", errors)
    if finding.get("severity") not in SEVERITIES:
        errors.append(f"data.finding.severity: one of {', '.join(SEVERITIES)}")
    for i, r in enumerate(finding.get("resources") or []):
        if not isinstance(r, dict):
            errors.append(f"data.finding.resources[{i}]: must be an object")
            continue
        _shape(
            r,
            {"type": str, "id": str, "region": (str, type(None)), "tags": dict},
            f"data.finding.resources[{i}]",
            errors,
        )
        if isinstance(r.get("tags"), dict) and not all(isinstance(v, str) for v in r["tags"].values()):
            errors.append(f"data.finding.resources[{i}].tags: values must be strings")
    for name in ("types", "cve_ids"):
        if name in finding and not all(isinstance(v, str) for v in finding[name]):
            errors.append(f"data.finding.{name}: must be strings")
    if "remediation" in finding:
        _shape(
            finding["remediation"],
            {"text": (str, type(None)), "url": (str, type(None))},
            "data.finding.remediation",
            errors,
        )


def _affected(affected: Any, body_type: Any, errors: list[str]) -> None:
    if body_type != "finding.triggered":
        errors.append("data.affected: only in finding.triggered")
    if not isinstance(affected, dict):
        errors.append("data.affected: must be an object")
        return
    _shape(affected, _AFFECTED, "data.affected", errors)
    if affected.get("fold") not in ("cve_account", "cve_resource"):
        errors.append("data.affected.fold: cve_account or cve_resource")
    if not all(isinstance(r, str) for r in affected.get("resources") or []):
        errors.append("data.affected.resources: must be strings")
    if affected.get("fix_available") not in (None, "YES", "NO", "PARTIAL"):
        errors.append("data.affected.fix_available: YES, NO, PARTIAL or null")


def _consistent(body_type: str, data: dict[str, Any], errors: list[str]) -> None:
    """What each type requires of `data`."""
    resolve = body_type == "incident.resolved"
    if data.get("kind") != ("resolve" if resolve else "trigger"):
        errors.append(f"data.kind: must be {'resolve' if resolve else 'trigger'} for {body_type}")
    if body_type == "finding.triggered" and (data.get("finding") is None or data.get("storm") or data.get("meta")):
        errors.append("finding.triggered: needs data.finding, and no storm or meta")
    if body_type == "storm.triggered" and (
        data.get("storm") is None or data.get("finding") is None or data.get("meta")
    ):
        errors.append("storm.triggered: needs data.storm and an example data.finding, and no meta")
    if body_type == "meta.storm" and ((data.get("meta") or {}).get("kind") != "storm" or data.get("storm") is None):
        errors.append("meta.storm: needs data.meta (kind storm) and data.storm")
    if body_type == "meta.alarm" and (data.get("meta") or {}).get("kind") != "alarm":
        errors.append("meta.alarm: needs data.meta (kind alarm)")
    if body_type == "meta.digest" and (data.get("meta") or {}).get("kind") != "digest":
        errors.append("meta.digest: needs data.meta (kind digest)")


def validate_body(body: Any) -> list[str]:
    """Every error of one decoded body against docs/webhook-schema.md, version 1 (empty: valid)."""
    if not isinstance(body, dict):
        return ["body: must be a JSON object"]
    errors: list[str] = [f"{k}: unknown field" for k in sorted(set(body) - {"type", "version", "timestamp", "data"})]
    if body.get("type") not in TYPES:
        errors.append(f"type: one of {', '.join(TYPES)} (got {body.get('type')!r})")
    if body.get("version") != SCHEMA_VERSION:
        errors.append(f"version: must be {SCHEMA_VERSION!r} (got {body.get('version')!r})")
    if not isinstance(body.get("timestamp"), str) or not _TIMESTAMP.match(body["timestamp"]):
        errors.append("timestamp: must be UTC ISO 8601, e.g. 2026-11-27T10:00:00Z")
    data = body.get("data")
    if not isinstance(data, dict):
        return [*errors, "data: must be an object"]
    _shape({k: v for k, v in data.items() if k != "affected"}, _DATA, "data", errors)
    if "affected" in data:
        _affected(data["affected"], body.get("type"), errors)
    for name in ("environment", "incident_key", "summary"):
        if isinstance(data.get(name), str) and not data[name].strip():
            errors.append(f"data.{name}: must not be blank")
    if data.get("severity") not in SEVERITIES:
        errors.append(f"data.severity: one of {', '.join(SEVERITIES)}")
    if data.get("escalated_from") is not None and data["escalated_from"] not in SEVERITIES:
        errors.append(f"data.escalated_from: one of {', '.join(SEVERITIES)} or null")
    if data.get("urgency") not in ("high", "low"):
        errors.append("data.urgency: high or low")
    if isinstance(data.get("episode"), int) and data["episode"] < 0:
        errors.append("data.episode: must be 0 or more")
    if isinstance(data.get("finding"), dict):
        _finding(data["finding"], data.get("truncated") is not None, errors)
    if isinstance(data.get("storm"), dict):
        _shape(data["storm"], _STORM, "data.storm", errors)
    if isinstance(data.get("meta"), dict):
        _shape(data["meta"], _META, "data.meta", errors)
        if data["meta"].get("kind") not in ("storm", "alarm", "digest"):
            errors.append("data.meta.kind: storm, alarm or digest")
    for i, link in enumerate(data.get("links") or []):
        if not isinstance(link, dict) or not isinstance(link.get("href"), str) or not isinstance(link.get("text"), str):
            errors.append(f"data.links[{i}]: must be {{href, text}} strings")
    if isinstance(body.get("type"), str):
        _consistent(body["type"], data, errors)
    return errors


# --------------------------------------------------------------------------- chat presets

SLACK_TEXT_MAX = 40000  # Slack truncates `text` past this (chat.postMessage); this stand-in refuses it instead
_SLACK_KEYS = frozenset({"text", "blocks", "attachments", "thread_ts", "mrkdwn", "unfurl_links", "unfurl_media"})
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
TEAMS_MAX_BYTES = 28 * 1024


def validate_slack(body: Any) -> list[str]:
    """Errors of a Slack incoming-webhook body (empty: Slack would post it)."""
    if not isinstance(body, dict):
        return ["invalid_payload: not a JSON object"]
    errors = [f"invalid_payload: unknown field {k!r}" for k in sorted(set(body) - _SLACK_KEYS)]
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        if not body.get("blocks"):
            errors.append("no_text: a message needs text (or blocks)")
    elif len(text) > SLACK_TEXT_MAX:
        errors.append(f"invalid_payload: text longer than {SLACK_TEXT_MAX} characters")
    return errors


def validate_teams(body: Any) -> list[str]:
    """Errors of a Teams Workflows webhook body: a message with one Adaptive Card attachment (empty: valid)."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return ['the body must be {"type": "message", "attachments": [...]}']
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or len(attachments) != 1 or not isinstance(attachments[0], dict):
        return ["attachments must hold exactly one Adaptive Card"]
    attachment = attachments[0]
    errors: list[str] = []
    if attachment.get("contentType") != ADAPTIVE_CARD:
        errors.append(f"attachments[0].contentType must be {ADAPTIVE_CARD} (Workflows take Adaptive Cards only)")
    card = attachment.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        return [*errors, "attachments[0].content must be an AdaptiveCard"]
    if not isinstance(card.get("version"), str):
        errors.append("the card needs a version, e.g. 1.4")
    elements = card.get("body")
    if not isinstance(elements, list) or not elements:
        errors.append("the card needs a body of elements")
    else:
        for i, element in enumerate(elements):
            if not isinstance(element, dict) or not isinstance(element.get("type"), str):
                errors.append(f"body[{i}] needs a type")
            elif element["type"] == "TextBlock" and not isinstance(element.get("text"), str):
                errors.append(f"body[{i}] (TextBlock) needs text")
            elif element["type"] == "FactSet" and not all(
                isinstance(f, dict) and isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                for f in element.get("facts") or [None]
            ):
                errors.append(f"body[{i}] (FactSet) needs facts of title and value strings")
    for i, action in enumerate(card.get("actions") or []):
        if (
            not isinstance(action, dict)
            or action.get("type") != "Action.OpenUrl"
            or not isinstance(action.get("url"), str)
        ):
            errors.append(f"actions[{i}] must be an Action.OpenUrl with a url")
    return errors
