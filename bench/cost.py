"""Cost model: dollars per million findings, from the measured requests per finding and stated list prices.

`python -m bench.cost [results.json]` prints it; `python -m bench` adds it to results.json. Every price and
assumption is a constant below; docs/performance.md explains them. Prices: us-east-1 list prices as published in
2026 (no free tier, no savings plans).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from bench.common import RESULTS_FILE

# ---- prices (USD, us-east-1, list)
LAMBDA_ARM_GB_SECOND = 0.0000133334  # first 7.5 billion GB-s a month
LAMBDA_REQUEST = 0.20 / 1e6
SQS_REQUEST = 0.40 / 1e6  # standard queue, per 64 KB chunk of each request
DDB_WRU = 0.625 / 1e6  # on-demand write request unit (≤1 KB), standard table class
DDB_RRU = 0.125 / 1e6  # on-demand read request unit: one strongly consistent read ≤4 KB
EVENTBRIDGE_AWS_SERVICE_EVENT = 0.0  # Security Hub → default bus → rule → SQS
EVENTBRIDGE_CUSTOM_EVENT = 1.00 / 1e6
EVENTBRIDGE_API_DESTINATION = 0.20 / 1e6  # per invocation
CLOUDWATCH_LOGS_GB = 0.50  # ingestion, standard class, first tier
SECRETS_MANAGER_SECRET_MONTH = 0.40
SECRETS_MANAGER_CALL = 0.05 / 10_000

# ---- assumptions (see docs/performance.md)
MEMORY_MB = 256  # config/prod.yaml function.memory_mb
BATCH_SIZE = 10  # config/prod.yaml ingestion.batch_size, at volume
FULL_VCPU_MB = 1769  # Lambda gives one vCPU at 1,769 MB, proportionally less below
ARM_SPEED_VS_BENCH_MACHINE = 1.0  # one Graviton vCPU ≈ one vCPU of the bench machine (not measured)
LATENCY_MS = {  # in-region AWS calls from Lambda, and PagerDuty over the internet (assumed, not measured)
    "BatchGetItem": 8.0,
    "PutItem": 6.0,
    "UpdateItem": 6.0,
    "BatchUpdateFindings": 40.0,
    "PagerDutyPost": 150.0,
}
PLATFORM_LOG_BYTES_PER_INVOCATION = 350  # Lambda's START / END / REPORT lines
SQS_REQUESTS_PER_BATCH = 2  # ReceiveMessage + DeleteMessageBatch by the event source mapping


def _by_name(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in results}


def inputs(results: list[dict[str, Any]]) -> dict[str, float]:
    """Per-finding quantities measured by the benches (steady state: 95% re-sends within the touch interval)."""
    r = _by_name(results)
    t = r["throughput"]["details"]
    n = t["findings"]
    calls = t["dynamodb_calls"]
    aged = r.get("requests_per_finding", {}).get("details", {}).get("aged_repeats", {})
    aged_n = r.get("requests_per_finding", {}).get("details", {}).get("findings") or 100
    aged_puts = aged.get("dynamodb_calls_by_operation", {}).get("PutItem", 0) / aged_n
    scaling = r.get("scaling", {}).get("details", {}).get("handler_us_per_finding", {})
    return {
        "rru_per_finding": t["batch_get_items_per_finding"] * BATCH_SIZE,  # every key read: 1 RRU (≤4 KB, consistent)
        "put_items_per_finding": calls.get("PutItem", 0) / n,
        "update_items_per_finding": calls.get("UpdateItem", 0) / n,
        "wru_per_put": max(1, math.ceil(t["put_item_bytes_mean"] / 1024)),
        "pagerduty_posts_per_finding": t["pagerduty_posts_per_finding"],
        "securityhub_calls_per_finding": t["securityhub_calls_per_finding"],
        "log_bytes_per_finding": t["log_bytes_per_finding"],
        "handler_cpu_us_per_finding": float(scaling.get(str(BATCH_SIZE), 0.0)),
        "aged_put_items_per_finding": aged_puts,
    }


def per_million(
    q: dict[str, float], *, aged: bool = False, batch: int = BATCH_SIZE, delivered: float = 1.0
) -> dict[str, float]:
    """Dollars per million findings Security Hub emits, by line item.

    `delivered`: the share of them the ingestion rule lets through to the queue (bench/ingestion.py); 1 without a
    filter. What each delivered finding costs (SQS, Lambda, the batched read, logs) scales with it; what a page costs
    (state writes, the write-back, the PagerDuty call) does not: whatever pages passes every filter."""
    puts = q["aged_put_items_per_finding"] if aged else q["put_items_per_finding"]
    # Security Hub re-emits every finding we write back (Workflow NOTIFIED / note): one more event, which passes the
    # filter (its finding paged) and is routed as a repeat.
    events = delivered + q["securityhub_calls_per_finding"]
    invocations = events / batch
    cpu_ms = q["handler_cpu_us_per_finding"] / 1000 * FULL_VCPU_MB / MEMORY_MB / ARM_SPEED_VS_BENCH_MACHINE
    page_io_ms = (
        LATENCY_MS["PutItem"] * puts
        + LATENCY_MS["UpdateItem"] * q["update_items_per_finding"]
        + LATENCY_MS["BatchUpdateFindings"] * q["securityhub_calls_per_finding"]
        + LATENCY_MS["PagerDutyPost"] * q["pagerduty_posts_per_finding"]
    )
    # Without a filter this is (cpu + batch read + page I/O) x events, as the model always had it.
    duration_s = (
        (cpu_ms + LATENCY_MS["BatchGetItem"] / batch) * events + page_io_ms * (1 + q["securityhub_calls_per_finding"])
    ) / 1000
    log_bytes = q["log_bytes_per_finding"] * events + PLATFORM_LOG_BYTES_PER_INVOCATION * invocations
    lines = {
        "EventBridge (AWS service events, default bus)": EVENTBRIDGE_AWS_SERVICE_EVENT,
        "SQS (send + receive/delete per batch)": SQS_REQUEST * (events + SQS_REQUESTS_PER_BATCH * invocations),
        "Lambda requests": LAMBDA_REQUEST * invocations,
        "Lambda duration (arm64, 256 MB)": LAMBDA_ARM_GB_SECOND * MEMORY_MB / 1024 * duration_s,
        "DynamoDB reads (1 RRU per finding)": DDB_RRU * q["rru_per_finding"] * events,
        "DynamoDB writes: dedup state": DDB_WRU * puts * q["wru_per_put"],
        "DynamoDB writes: storm counters": DDB_WRU * q["update_items_per_finding"],
        "CloudWatch Logs ingestion": CLOUDWATCH_LOGS_GB * log_bytes / 1e9,
    }
    out = {k: round(v * 1e6, 3) for k, v in lines.items()}
    out["total"] = round(sum(lines.values()) * 1e6, 3)
    out["lambda_ms_per_finding_modelled"] = round(cpu_ms + LATENCY_MS["BatchGetItem"] / batch + page_io_ms, 2)
    return out


def api_destination_per_million(share_sent: float = 1.0) -> dict[str, float]:
    """EventBridge → API destination → PagerDuty: every matching event is an invocation; no state, no code."""
    return {
        "EventBridge (AWS service events, default bus)": 0.0,
        "API destination invocations": round(EVENTBRIDGE_API_DESTINATION * share_sent * 1e6, 3),
        "total": round(EVENTBRIDGE_API_DESTINATION * share_sent * 1e6, 3),
    }


def queue_shares(results: list[dict[str, Any]]) -> dict[str, float]:
    """Shares of a production day reaching the queue (bench/ingestion.py), by filter; {} when it did not run."""
    shares = _by_name(results).get("ingestion", {}).get("details", {}).get("share_reaching_queue", {})
    return {str(k): float(v) for k, v in shares.items()}


SHIPPED_FILTER = "policy (shipped: resolutions all)"
NOTED_FILTER = "policy, resolutions noted"


def model(results: list[dict[str, Any]]) -> dict[str, Any]:
    q = inputs(results)
    shares = queue_shares(results)
    columns = {
        "findings_router_steady_state": per_million(q),
        "findings_router_resends_past_touch_interval": per_million(q, aged=True),
        "findings_router_batch_of_1": per_million(q, batch=1),
        "api_destination_every_finding": api_destination_per_million(1.0),
    }
    if SHIPPED_FILTER in shares:
        # Per million findings Security Hub emits on a production day, only some of which reach the queue.
        columns["findings_router_policy_filter"] = per_million(q, delivered=shares[SHIPPED_FILTER])
        columns["api_destination_policy_filter"] = api_destination_per_million(shares[SHIPPED_FILTER])
    if NOTED_FILTER in shares:
        columns["findings_router_policy_filter_noted"] = per_million(q, delivered=shares[NOTED_FILTER])
    return {
        "inputs_per_finding": {k: round(v, 4) for k, v in q.items()},
        "queue_share": {k: round(v, 4) for k, v in shares.items()},
        "usd_per_million_findings": columns,
        "fixed_usd_per_month": {
            "Secrets Manager: routing-key secret": SECRETS_MANAGER_SECRET_MONTH,
            # 2 warm containers re-reading the secret every 5 minutes (Powertools cache)
            "Secrets Manager: GetSecretValue": round(2 * 12 * 730 * SECRETS_MANAGER_CALL, 3),
            # the event source mapping's long polling of an idle queue: about 5 pollers x 3 receives a minute
            "SQS: empty receives while idle": round(5 * 3 * 60 * 730 * SQS_REQUEST, 3),
        },
        "prices": {
            "lambda_arm_gb_second": LAMBDA_ARM_GB_SECOND,
            "lambda_request": LAMBDA_REQUEST,
            "sqs_request": SQS_REQUEST,
            "dynamodb_wru": DDB_WRU,
            "dynamodb_rru": DDB_RRU,
            "eventbridge_custom_event": EVENTBRIDGE_CUSTOM_EVENT,
            "eventbridge_api_destination": EVENTBRIDGE_API_DESTINATION,
            "cloudwatch_logs_gb": CLOUDWATCH_LOGS_GB,
        },
        "assumptions": {
            "memory_mb": MEMORY_MB,
            "batch_size": BATCH_SIZE,
            "lambda_vcpu_share": round(MEMORY_MB / FULL_VCPU_MB, 3),
            "latency_ms": LATENCY_MS,
            "platform_log_bytes_per_invocation": PLATFORM_LOG_BYTES_PER_INVOCATION,
        },
    }


def render(cost: dict[str, Any]) -> str:
    cols = list(cost["usd_per_million_findings"])
    rows = sorted({k for c in cols for k in cost["usd_per_million_findings"][c]} - {"total"})
    rows = [r for r in rows if r != "lambda_ms_per_finding_modelled"] + ["total"]
    width = max(len(r) for r in rows)
    lines = ["USD per million findings".ljust(width) + "  " + "  ".join(c[:28].rjust(28) for c in cols)]
    for row in rows:
        cells = []
        for c in cols:
            v = cost["usd_per_million_findings"][c].get(row)
            cells.append(("-" if v is None else f"{v:.3f}").rjust(28))
        lines.append(row.ljust(width) + "  " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    path = Path((argv or sys.argv[1:] or [str(RESULTS_FILE)])[0])
    document = json.loads(path.read_text(encoding="utf-8"))
    cost = model(document["results"])
    print(render(cost))
    print(json.dumps(cost["inputs_per_finding"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
