"""PSIRT digest Lambda (scheduled, off unless `psirt_digest.enabled`): the period's new CRITICAL or exploitable CVEs
from Amazon Inspector, one line per CVE, to a CSV report in S3 and/or one low-urgency notification
(service/psirt_digest.py, docs/psirt.md).

A failed run raises: EventBridge and Lambda retry it (the same period, the same report key, the same notification
key), and the function's errors alarm says when none succeeded.

Environment: POLICY_FILE, REPORT_BUCKET (when reports are on), POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.bootstrap import PsirtDigestRuntime, RuntimeSlot, build_during_init, build_psirt_digest
from findings_router.entrypoints.observability import build_logger, build_metrics
from findings_router.service.psirt_digest import run_digest

logger = build_logger("findings-router-psirt-digest")


metrics = build_metrics()


runtime_slot: RuntimeSlot[PsirtDigestRuntime] = RuntimeSlot(build_psirt_digest, metrics)
get_runtime = runtime_slot.get
install = runtime_slot.install


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime = get_runtime()
    scheduled = event.get("time") if isinstance(event, dict) else None
    run = run_digest(
        runtime.policy,
        runtime.fetch,
        reports=runtime.reports,
        notifier=runtime.notifier,
        now=dt.datetime.now(dt.UTC),
        scheduled_time=scheduled if isinstance(scheduled, str) else None,
        default_region=runtime.region,
    )
    metrics.add_metric(name="PsirtDigestCves", unit=MetricUnit.Count, value=run.cves)
    summary = {
        "period_start": run.start.isoformat(),
        "period_end": run.end.isoformat(),
        "cves": run.cves,
        "affected": run.resources,
        "report": run.report,
        "notified": run.notification_key is not None,
    }
    logger.info("psirt digest done", extra=summary)
    return summary


build_during_init(get_runtime)
