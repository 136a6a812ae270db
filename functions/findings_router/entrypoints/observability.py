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

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

LIBRARY_LOGGER = "findings_router"


def build_logger(service: str) -> Logger:
    logger = Logger(service=service)
    logging.getLogger(LIBRARY_LOGGER)  # registered now, so that the copy below reaches every module's logger
    copy_config_to_registered_loggers(source_logger=logger, include={LIBRARY_LOGGER})
    return logger


def build_metrics() -> Metrics:
    return Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "FindingsRouter"))
