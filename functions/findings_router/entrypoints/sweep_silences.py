"""Silence sweep Lambda (scheduled every `silences.sweep_minutes`): what a silence held back pages once the silence
ends or is expired, if the finding is still active and the current policy still pages it (service/sweep.py).

A run with a delivery that failed raises after finishing the others: the errors alarm says so, and the next run
(or the finding's next copy) sends what is still recorded. Metrics: SilencedPagesSent, SilencedPagesLetGo,
SilencedPagesFailed.

Environment: POLICY_FILE, STATE_TABLE_NAME, POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.bootstrap import RuntimeSlot, SweepRuntime, build_during_init, build_silence_sweep
from findings_router.entrypoints.observability import build_logger, build_metrics
from findings_router.service.sweep import sweep

logger = build_logger("findings-router-silence-sweep")


metrics = build_metrics()


runtime_slot: RuntimeSlot[SweepRuntime] = RuntimeSlot(build_silence_sweep, metrics)
get_runtime = runtime_slot.get
install = runtime_slot.install


class SweepFailedError(RuntimeError):
    """Some pages held back by a silence could not be delivered this run; the next run tries again."""


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    del event
    runtime = get_runtime()
    router = runtime.router.begin(context)
    result = sweep(router, runtime.owed, dt.datetime.now(dt.UTC))
    summary = result.summary()
    metrics.add_metric(name="SilencedPagesSent", unit=MetricUnit.Count, value=len(result.paged))
    metrics.add_metric(name="SilencedPagesLetGo", unit=MetricUnit.Count, value=len(result.let_go))
    if result.failed:
        metrics.add_metric(name="SilencedPagesFailed", unit=MetricUnit.Count, value=len(result.failed))
    logger.info("silence sweep done", extra=summary)
    if result.failed:
        raise SweepFailedError(f"{len(result.failed)} held-back page(s) not delivered: {', '.join(result.failed[:5])}")
    return summary


build_during_init(get_runtime)
