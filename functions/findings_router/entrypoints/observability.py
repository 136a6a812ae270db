"""What the Lambda entry points share for observability: the Powertools logger and metrics.

Library modules (service/, notify/, adapters/) log through the standard `logging` module under `findings_router.*`;
`build_logger` gives that tree the entry point's Powertools handler, so their warnings come out as the same
structured JSON lines, with the invocation's keys (request id, cold start) and their own `extra` fields. Each
function imports one entry point; where a process imports several (tests, the demo), the last one imported owns the
library modules' lines.
"""

from __future__ import annotations

import logging
import os
import sys

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

LIBRARY_LOGGER = "findings_router"


class _CurrentStdout:
    """Writes to whatever `sys.stdout` is when a line is written, not when the logger was built: an entry point
    imported while something had swapped stdout (a test's capture, the demo) must not keep writing to it after."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def build_logger(service: str) -> Logger:
    logger = Logger(service=service, stream=_CurrentStdout())  # type: ignore[arg-type]
    logging.getLogger(LIBRARY_LOGGER)  # registered now, so that the copy below reaches every module's logger
    copy_config_to_registered_loggers(source_logger=logger, include={LIBRARY_LOGGER})
    return logger


def build_metrics() -> Metrics:
    return Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "FindingsRouter"))


# Seconds per canary hop (findings_router.domain.canary.CanaryRun.hop_seconds) → the metric that publishes it.
# `TimeToPage` is import → the canary's service accepted the page; `CanaryRoundTripSeconds` is import → its webhook
# came back.
CANARY_HOP_METRICS = {
    "received": "CanaryReceiveSeconds",
    "delivered": "CanaryDeliverSeconds",
    "acknowledged": "CanaryAcknowledgeSeconds",
}
# The canary alarm (infra/constructs/alarms.py) watches this one: a run reached its last hop.
CANARY_COMPLETED_METRIC = "CanaryCompleted"


def publish_canary(metrics: Metrics, hops: dict[str, float], *, reached: tuple[str, ...], completed: bool) -> None:
    """The hops a canary run `reached` here (of its `hops` so far), as metrics (EMF, one datapoint each)."""
    from aws_lambda_powertools.metrics import MetricUnit

    for hop in reached:
        if hop in hops:
            metrics.add_metric(name=CANARY_HOP_METRICS[hop], unit=MetricUnit.Seconds, value=hops[hop])
    if "delivered" in reached and "delivered" in hops and "received" in hops:
        metrics.add_metric(name="TimeToPage", unit=MetricUnit.Seconds, value=hops["received"] + hops["delivered"])
    if "acknowledged" in reached and "acknowledged" in hops and "total" in hops:
        metrics.add_metric(name="CanaryRoundTripSeconds", unit=MetricUnit.Seconds, value=hops["total"])
    if completed:
        metrics.add_metric(name=CANARY_COMPLETED_METRIC, unit=MetricUnit.Count, value=1)
