"""Meta-alerts: findings-router's own alarms (dead letters, errors, throttles, queue age) page on-call too.

CloudWatch alarms publish to the environment's alarm topic; this function (subscribed to it) turns each ALARM into
a trigger and each OK into a resolve (`domain.alarms.alarm_notification`), with one incident key per alarm: however
often an alarm re-notifies, it is one incident, opened once and resolved once. It sends through the same notifier
contract, routing key and delivery code as the router.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.bootstrap import MetaAlertRuntime, RuntimeSlot, build_meta_alerts
from findings_router.domain.alarms import alarm_notification, parse_alarm
from findings_router.domain.notifications import NotifyContext
from findings_router.entrypoints.observability import build_logger
from findings_router.notify import DeliveryError

logger = build_logger("findings-router-alarms")

# One per execution environment; tests `install` theirs (None: build again from the environment).
runtime_slot: RuntimeSlot[MetaAlertRuntime] = RuntimeSlot(build_meta_alerts)
get_runtime = runtime_slot.get
install = runtime_slot.install


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime = get_runtime()
    context_ = NotifyContext(runtime.policy.environment, targets=runtime.targets)
    sent = 0
    for record in event.get("Records", []):
        try:
            change = parse_alarm(record.get("Sns", {}).get("Message", ""))
        except (ValueError, json.JSONDecodeError) as exc:
            logger.warning("sns message ignored", extra={"error": str(exc)})
            continue
        notification = alarm_notification(change, runtime.policy.monitoring.meta_alerts)
        if notification is None:
            continue
        try:
            runtime.notifier.send(notification, context_)
        except DeliveryError as exc:
            # Raising fails the invocation: Lambda retries it twice, then its on-failure destination (the
            # meta-alerts DLQ) keeps the notification; its own alarm emails the alarm contacts.
            logger.error("meta-alert delivery failed", extra={"alarm": change.name, "error": str(exc)})
            raise
        sent += 1
        logger.info(
            "meta-alert sent", extra={"alarm": change.name, "state": change.state, "dedup_key": notification.key}
        )
    return {"sent": sent}
