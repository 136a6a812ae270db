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
from collections import Counter
from typing import Any

from bench.common import BenchResult
from bench.local import local_router
from bench.workload import critical_pages_only, generate, pages_only, resend

WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def _written_key(params: dict[str, Any]) -> str | None:
    item = params.get("Item") or params.get("Key") or {}
    pk = item.get("pk", {})
    return pk.get("S") if isinstance(pk, dict) else None


def _purpose(params: dict[str, Any]) -> str:
    """What a write is for, from its key: a finding's dedup state, a storm counter, or something else."""
    key = _written_key(params) or ""
    if key.endswith("#count"):
        return "storm counter"
    if key.startswith("fr1-"):
        return "dedup state"
    return "other"


def _keys(events: list[dict[str, Any]], dedup: Any) -> set[str]:
    """The state keys of `events`' findings under the policy's `dedup` settings (control and vulnerability folds)."""
    from findings_router.domain.keys import dedup_key
    from findings_router.domain.normalize import normalize_event

    fold = (dedup.fold_control_findings, dedup.fold_vulnerabilities)
    return {dedup_key(f, *fold) for e in events for f in normalize_event(e).findings}


def _measure(
    local: Any, batch: list[dict[str, Any]], known: list[dict[str, Any]], known_keys: set[str], fresh_keys: set[str]
) -> dict[str, Any]:
    """Deliver `batch` in one invocation and break down every request it made."""
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
    params = local.calls.dynamodb_params
    writes_made = [(op, p) for op, p in params if op in WRITE_OPERATIONS]
    conditional = [(op, p) for op, p in writes_made if "ConditionExpression" in p]
    unconditional = [(op, p) for op, p in writes_made if "ConditionExpression" not in p]
    gets = [p for op, p in params if op == "BatchGetItem"]
    pd_keys = [r.json.get("dedup_key") for r in pd_requests if isinstance(r.json, dict)]
    return {
        "findings": len(batch),
        "dynamodb_calls_by_operation": ddb_calls,
        "dynamodb_http_attempts": local.calls.dynamodb_http_attempts,
        "aws_calls_all_clients": api_calls,
        "securityhub_writeback_calls": hub_calls,
        "securityhub_writeback_calls_for_repeats": hub_for_repeats,
        "batch_reads": ddb_calls.get("BatchGetItem", 0),
        "other_reads": {k: v for k, v in ddb_calls.items() if k not in WRITE_OPERATIONS and k != "BatchGetItem"},
        "keys_in_batch_reads": sum(len(t["Keys"]) for p in gets for t in p["RequestItems"].values()),
        # Findings folded onto one key (a control across standards, a CVE per account) share one read.
        "distinct_keys": len(known_keys | fresh_keys),
        "conditional_writes": len(conditional),
        "conditional_writes_by_purpose": dict(Counter(_purpose(p) for _, p in conditional)),
        "unconditional_writes": len(unconditional),
        "all_dynamodb_writes": len(writes_made),
        "writes_by_purpose": dict(Counter(f"{op} {_purpose(p)}" for op, p in writes_made)),
        "writes_for_repeats": sum(1 for _, p in writes_made if _written_key(p) in known_keys),
        "pagerduty_http_calls": len(pd_requests),
        "pagerduty_http_for_repeats": sum(1 for k in pd_keys if k in known_keys),
        "pagerduty_http_for_new": sum(1 for k in pd_keys if k in fresh_keys),
        "requests_per_finding": round((sum(api_calls.values()) + len(pd_requests)) / len(batch), 3),
    }


def _age_states(local: Any, keys: set[str], hours: float) -> None:
    """Make the stored states look last seen `hours` ago (Security Hub re-sends a control every 12-24 h)."""
    import datetime as dt

    then = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).isoformat(timespec="seconds").replace("+00:00", "Z")
    for key in keys:
        local.ddb.update_item(
            TableName=local.table,
            Key={"pk": {"S": key}},
            UpdateExpression="SET last_seen = :t",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":t": {"S": then}},
        )


def _forget_storm_windows(local: Any) -> None:
    """The warm-up's findings were paged on earlier days: their storm windows are long over (the counter items
    expired, the container that counted them is gone). Without this, 95 new findings within seconds would be a
    storm under the shipped policy, fold most of them, and the measured batch would fall into its window."""
    items = local.ddb.scan(TableName=local.table, ProjectionExpression="pk")["Items"]
    for item in items:
        if item["pk"]["S"].endswith("#count"):
            local.ddb.delete_item(TableName=local.table, Key={"pk": item["pk"]})
    local.new_runtime()  # a new container: no storm counts held in memory


def run(repeats: int = 95, new: int = 5, aged_hours: float = 18.0) -> BenchResult:
    started = time.perf_counter()
    known = generate(repeats, seed="requests-known", keep=pages_only)
    fresh = generate(new, seed="requests-new", keep=critical_pages_only)
    fresh_aged = generate(new, seed="requests-new-aged", keep=critical_pages_only)
    with local_router(shipped_storms=True) as local:
        dedup = local.runtime().policy.dedup
        known_keys = _keys(known, dedup)
        for i in range(0, len(known), 10):
            local.invoke(known[i : i + 10])
            _forget_storm_windows(local)  # paged over earlier days, never as a storm
        warm_pages = local.pagerduty_requests()

        batch = [resend(e) for e in known] + fresh
        random.Random("requests").shuffle(batch)
        m = _measure(local, batch, known, known_keys, _keys(fresh, dedup))

        # the same re-sends as they really arrive: last seen 12-24 h ago, past the dedup touch interval
        touch_hours = local.runtime().policy.dedup.touch_interval_hours
        _age_states(local, known_keys, aged_hours)
        aged_batch = [resend(e) for e in known] + fresh_aged
        random.Random("requests-aged").shuffle(aged_batch)
        aged = _measure(local, aged_batch, known, known_keys, _keys(fresh_aged, dedup))

    # Each new page is recorded before it is sent and confirmed after (write-ahead, docs/dedup.md): two writes.
    writes_per_page = 2
    passed = (
        m["batch_reads"] == 1
        and m["conditional_writes"] <= writes_per_page * new
        and m["writes_for_repeats"] == 0
        and m["pagerduty_http_for_repeats"] == 0
        and m["securityhub_writeback_calls_for_repeats"] == 0
        and not m["other_reads"]
    )
    by_purpose = m["conditional_writes_by_purpose"]
    extra = f" ({', '.join(f'{n} {k}' for k, n in by_purpose.items())})" if len(by_purpose) > 1 else ""
    if m["unconditional_writes"]:
        extra += f" +{m['unconditional_writes']} unconditional"
    return BenchResult(
        name="requests_per_finding",
        title=f"Requests for {len(batch)} findings ({len(known)} repeats of paged findings + {len(fresh)} new CRITICAL)",
        figure=(
            f"{m['batch_reads']} BatchGetItem, {m['conditional_writes']} conditional writes{extra}, "
            f"{sum(m['securityhub_writeback_calls'].values())} BatchUpdateFindings, "
            f"{m['pagerduty_http_calls']} HTTP; repeats: {m['writes_for_repeats']} writes, "
            f"{m['pagerduty_http_for_repeats']} HTTP; {m['requests_per_finding']:.2f} req/finding"
        ),
        target=f"1 batched read, <= {writes_per_page * new} conditional writes (2 per page), 0 HTTP for repeats",
        passed=passed,
        ratio=None,
        details={
            **m,
            "repeats": len(known),
            "new_critical": len(fresh),
            "pagerduty_calls_in_warm_up": warm_pages,
            "all_writes_within_target": m["all_dynamodb_writes"] <= writes_per_page * new,
            "aged_repeats": {
                "last_seen_hours_ago": aged_hours,
                "touch_interval_hours": touch_hours,
                **{
                    k: aged[k]
                    for k in (
                        "dynamodb_calls_by_operation",
                        "writes_by_purpose",
                        "writes_for_repeats",
                        "pagerduty_http_for_repeats",
                        "requests_per_finding",
                    )
                },
            },
        },
        notes=[
            "Security Hub write-back (BatchUpdateFindings, one call per page today) goes to the recording twin "
            "because moto lacks the API; its calls are counted as the real adapter would make them",
            f"aged_repeats: the same re-sends after their states were backdated {aged_hours:g} h (Security Hub re-sends "
            "every 12-24 h): each one past the touch interval refreshes its state item, one PutItem per repeat",
            "the routing key comes from Secrets Manager through Powertools' 5-minute cache: fetched once in the "
            "warm-up, so no GetSecretValue in the measured invocation",
            "policy: config/prod.yaml with its own storm settings (threshold 10, reserved concurrency 2): each "
            "container holds a group's first 5 new problems of a window in memory and writes the 6th with them, so "
            "the 5 new findings write no storm counter; the warm-up's storm windows are cleared first (those "
            "findings were paged on earlier days)",
        ],
        seconds=time.perf_counter() - started,
    )
