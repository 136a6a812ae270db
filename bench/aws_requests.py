"""Bench 3: requests per finding for a batch of 100 findings, 95 of them re-sends of already-paged findings.

The real handler runs against moto's server and the local PagerDuty receiver. A first pass delivers the 95
findings (batches of 10, as Lambda would), which pages each of them once. Then one invocation carries 100
records: the 95 again (new EventBridge ids, same findings) and 5 new CRITICAL findings. Counted for that
invocation: DynamoDB calls by operation (botocore `before-call` / `before-send` hooks on the handler's client),
every AWS call of any client (Secrets Manager included), and HTTP requests that reached the PagerDuty receiver.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.common import BenchResult
from bench.local import local_router
from bench.workload import critical_pages_only, generate, pages_only, resend


def _keys(events: list[dict[str, Any]], fold: bool) -> set[str]:
    from findings_router.dedup import dedup_key
    from findings_router.normalize import normalize_event

    return {dedup_key(f, fold) for e in events for f in normalize_event(e).findings}


def run(repeats: int = 95, new: int = 5) -> BenchResult:
    started = time.perf_counter()
    known = generate(repeats, seed="requests-known", keep=pages_only)
    fresh = generate(new, seed="requests-new", keep=critical_pages_only)
    with local_router() as local:
        fold = local.runtime().policy.dedup.fold_control_findings
        known_keys, fresh_keys = _keys(known, fold), _keys(fresh, fold)
        for i in range(0, len(known), 10):
            local.invoke(known[i : i + 10])
        warm_pages = local.pagerduty_requests()

        batch = [resend(e) for e in known] + fresh
        random.Random("requests").shuffle(batch)
        local.reset_counts()
        before = local.pagerduty_requests()
        local.invoke(batch)
        pd_requests = local.receiver.requests[before:]

        ddb_calls = dict(local.calls.dynamodb_calls)
        hub_calls = local.securityhub_calls()
        api_calls = {**dict(local.calls.api_calls), **hub_calls}
        known_ids = {f.get("Id") or f.get("finding_info", {}).get("uid") for e in known for f in e["detail"]["findings"]}
        hub_for_repeats = sum(
            1 for u in (local.hub.updates if local.hub is not None else []) for r in u.refs if r.id in known_ids
        )
        puts = [p for op, p in local.calls.dynamodb_params if op == "PutItem"]
        gets = [p for op, p in local.calls.dynamodb_params if op == "BatchGetItem"]
        keys_read = sum(len(t["Keys"]) for p in gets for t in p["RequestItems"].values())
        writes_for_repeats = sum(1 for p in puts if p["Item"]["pk"]["S"] in known_keys)
        pd_keys = [r.json.get("dedup_key") for r in pd_requests if isinstance(r.json, dict)]
        http_for_repeats = sum(1 for k in pd_keys if k in known_keys)
        http_for_new = sum(1 for k in pd_keys if k in fresh_keys)
        attempts = local.calls.dynamodb_http_attempts

    batch_reads = ddb_calls.get("BatchGetItem", 0)
    writes = ddb_calls.get("PutItem", 0) + ddb_calls.get("UpdateItem", 0)
    other_ddb = {k: v for k, v in ddb_calls.items() if k not in ("BatchGetItem", "PutItem")}
    findings = len(batch)
    aws_total = sum(api_calls.values())
    passed = (
        batch_reads == 1
        and writes <= new
        and writes_for_repeats == 0
        and http_for_repeats == 0
        and hub_for_repeats == 0
        and not other_ddb
    )
    per_finding = (aws_total + len(pd_requests)) / findings
    return BenchResult(
        name="requests_per_finding",
        title="Requests for 100 findings (95 repeats of paged findings + 5 new CRITICAL)",
        figure=(
            f"{batch_reads} BatchGetItem, {writes} PutItem, {sum(hub_calls.values())} BatchUpdateFindings, "
            f"{len(pd_requests)} HTTP; repeats: {writes_for_repeats} writes, {http_for_repeats} HTTP; "
            f"{per_finding:.2f} req/finding"
        ),
        target=f"1 batched read, <= {new} conditional writes, 0 HTTP for repeats",
        passed=passed,
        ratio=None,
        details={
            "findings": findings,
            "repeats": len(known),
            "new_critical": len(fresh),
            "dynamodb_calls_by_operation": ddb_calls,
            "dynamodb_http_attempts": attempts,
            "aws_calls_all_clients": api_calls,
            "securityhub_writeback_calls": hub_calls,
            "securityhub_writeback_calls_for_repeats": hub_for_repeats,
            "keys_in_batch_reads": keys_read,
            "conditional_writes": len(puts),
            "conditional_writes_for_repeats": writes_for_repeats,
            "pagerduty_http_calls": len(pd_requests),
            "pagerduty_http_for_repeats": http_for_repeats,
            "pagerduty_http_for_new": http_for_new,
            "pagerduty_calls_in_warm_up": warm_pages,
            "requests_per_finding": round(per_finding, 3),
        },
        notes=[
            "Security Hub write-back (BatchUpdateFindings, one call per page today) goes to the recording twin "
            "because moto lacks the API; its calls are counted as the real adapter would make them",
            "the routing key comes from Secrets Manager through Powertools' 5-minute cache: fetched once in the "
            "warm-up, so no GetSecretValue in the measured invocation",
        ],
        seconds=time.perf_counter() - started,
    )
