"""Meta-alerts: findings-router's own alarms (dead letters, errors, throttles, queue age) page on-call too.

CloudWatch alarms publish to the environment's alarm topic; this function (subscribed to it) turns each
ALARM into a PagerDuty trigger and each OK into a resolve, with one dedup key per alarm: however often an alarm
re-notifies, it is one incident, opened once and resolved once. It uses the same routing key and the same delivery
code (`PagerDutyNotifier`) as the router.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.adapters.secrets import routing_key_from_secret, secret_text
from findings_router.domain.alarms import parse_alarm
from findings_router.notify import DeliveryError
from findings_router.notify.pagerduty.client import PagerDutyNotifier
from findings_router.notify.pagerduty.events import meta_event
from findings_router.settings.load import load_policy

logger = Logger(service="findings-router-alarms")


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
