"""Meta-alerts: findings-router's own alarms (dead letters, errors, throttles, queue age) page on-call too.

CloudWatch alarms publish to the environment's alarm topic; this function (subscribed to it) turns each
ALARM into a PagerDuty trigger and each OK into a resolve, with one dedup key per alarm: however often an alarm
re-notifies, it is one incident, opened once and resolved once. It uses the same routing key and the same delivery
code (`PagerDutyNotifier`) as the router.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.config import load_policy
from findings_router.dedup import KEY_PREFIX
from findings_router.lambda_init import secret_text
from findings_router.pagerduty import (
    SUMMARY_MAX,
    DeliveryError,
    PagerDutyNotifier,
    _truncate,
    resolve_event,
    routing_key_from_secret,
)

logger = Logger(service="findings-router-alarms")


@dataclass(frozen=True, slots=True)
class AlarmChange:
    name: str
    arn: str
    state: str  # ALARM | OK | INSUFFICIENT_DATA
    reason: str
    description: str
    account: str
    region: str
    changed_at: str


def parse_alarm(message: str | Mapping[str, Any]) -> AlarmChange:
    """A CloudWatch alarm state change as published to SNS (`Records[].Sns.Message`, JSON)."""
    data = json.loads(message) if isinstance(message, str) else message
    if not isinstance(data, Mapping) or "AlarmName" not in data or "NewStateValue" not in data:
        raise ValueError("not a CloudWatch alarm notification")
    return AlarmChange(
        name=str(data["AlarmName"]),
        arn=str(data.get("AlarmArn") or data["AlarmName"]),
        state=str(data["NewStateValue"]),
        reason=str(data.get("NewStateReason") or ""),
        description=str(data.get("AlarmDescription") or ""),
        account=str(data.get("AWSAccountId") or ""),
        region=str(data.get("Region") or ""),
        changed_at=str(data.get("StateChangeTime") or ""),
    )


def meta_dedup_key(alarm_arn: str) -> str:
    return f"{KEY_PREFIX}meta-" + hashlib.sha256(alarm_arn.encode()).hexdigest()[:32]


def meta_event(change: AlarmChange, environment: str, routing_key: str, mode: str = "page") -> dict[str, Any] | None:
    """The Events v2 body for an alarm change; None for states that do not page or resolve, or mode `off`."""
    if mode == "off":
        return None
    key = meta_dedup_key(change.arn)
    if change.state == "OK":
        return resolve_event(routing_key, key)
    if change.state != "ALARM":
        return None
    summary = f"[{environment}] findings-router itself: {change.name} in ALARM: {change.reason}"
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": _truncate(summary, SUMMARY_MAX),
            "source": f"findings-router-{environment}",
            # A router in trouble may be losing findings: as urgent as the worst finding (unless the
            # environment only wants a low-urgency notification, e.g. development).
            "severity": "critical" if mode == "page" else "warning",
            "component": "findings-router",
            "group": change.account or environment,
            "class": "meta-alert",
            "custom_details": {
                "alarm": change.name,
                "description": change.description,
                "reason": change.reason,
                "account": change.account,
                "region": change.region,
                "changed_at": change.changed_at,
                "runbook": "docs/runbook.md#alarms",
            },
        },
        "client": "findings-router",
    }


_notifier: PagerDutyNotifier | None = None
_environment = ""
_mode = "page"


def _get_notifier() -> PagerDutyNotifier:
    global _notifier, _environment, _mode  # noqa: PLW0603  (one per execution environment)
    if _notifier is None:
        policy = load_policy(os.environ["POLICY_FILE"])
        _environment = policy.environment
        _mode = policy.monitoring.meta_alerts
        secret_name = policy.notifier.routing_key_secret

        def routing_key() -> str:
            return routing_key_from_secret(secret_text(secret_name))

        retry = policy.notifier.retry
        _notifier = PagerDutyNotifier(
            os.environ.get("EVENTS_URL") or policy.notifier.events_url,
            routing_key,
            max_attempts=retry.max_attempts,
            base_delay=retry.base_delay_seconds,
            max_delay=retry.max_delay_seconds,
            budget_seconds=retry.budget_seconds,
            timeout_seconds=retry.timeout_seconds,
        )
    return _notifier


def reset() -> None:
    global _notifier  # noqa: PLW0603
    _notifier = None


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    notifier = _get_notifier()
    sent = 0
    for record in event.get("Records", []):
        try:
            change = parse_alarm(record.get("Sns", {}).get("Message", ""))
        except (ValueError, json.JSONDecodeError) as exc:
            logger.warning("sns message ignored", extra={"error": str(exc)})
            continue
        body = meta_event(change, _environment, notifier.routing_key(), _mode)
        if body is None:
            continue
        try:
            notifier.post(body)
        except DeliveryError as exc:
            # Raising fails the invocation: Lambda retries it twice, then its on-failure destination (the
            # meta-alerts DLQ) keeps the notification; its own alarm emails the alarm contacts.
            logger.error("meta-alert delivery failed", extra={"alarm": change.name, "error": str(exc)})
            raise
        sent += 1
        logger.info(
            "meta-alert sent", extra={"alarm": change.name, "state": change.state, "dedup_key": body["dedup_key"]}
        )
    return {"sent": sent}
