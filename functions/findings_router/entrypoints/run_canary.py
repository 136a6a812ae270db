"""Canary Lambda (scheduled): import this environment's synthetic finding into Security Hub.

The finding then travels the real path (Security Hub → EventBridge → SQS → router → the canary's on-call service →
its webhook → the ack receiver), each hop recorded by the functions it passes (findings_router.domain.canary). This
function only starts a run: it fails (and its errors alarm fires) when Security Hub refuses the import, e.g.
`InvalidAccess` when Security Hub or the account's own product integration is disabled. A run that never completes
is what the canary alarm (`CanaryCompleted` missing) reports.

Environment: POLICY_FILE, POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from findings_router.adapters.securityhub import import_findings
from findings_router.bootstrap import CanaryRuntime, RuntimeSlot, build_canary, build_during_init
from findings_router.domain.canary import synthetic_finding
from findings_router.entrypoints.observability import build_logger, build_metrics

logger = build_logger("findings-router-canary")


metrics = build_metrics()


runtime_slot: RuntimeSlot[CanaryRuntime] = RuntimeSlot(build_canary, metrics)
get_runtime = runtime_slot.get
install = runtime_slot.install


def _arn_parts(arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of the invoked function's ARN: the finding is this account's own product."""
    parts = arn.split(":")
    if len(parts) < 7 or parts[0] != "arn":
        raise ValueError(f"not a Lambda function ARN: {arn!r}")
    return parts[1], parts[3], parts[4]


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime = get_runtime()
    partition, region, account = _arn_parts(context.invoked_function_arn)
    now = dt.datetime.now(dt.UTC)
    finding = synthetic_finding(
        runtime.policy.environment, account=account, region=region, partition=partition, now=now
    )
    import_findings(runtime.securityhub, [finding])
    metrics.add_metric(name="CanaryImported", unit=MetricUnit.Count, value=1)
    run_id = finding["UpdatedAt"]
    logger.info("canary imported", extra={"finding_id": finding["Id"], "run_id": run_id, "account": account})
    return {"finding_id": finding["Id"], "run_id": run_id}


build_during_init(get_runtime)
