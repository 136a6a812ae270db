"""The benchmark suite runs (at tiny sizes) and reports what docs/performance.md relies on.

No timing assertions: only that every bench runs end to end and its result has the expected structure. The
figures themselves come from `make bench`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import aws_requests, coldstart, cpu, memory, scaling, throughput
from bench.__main__ import main, render_table
from bench.common import BenchResult
from bench.workload import finding_count, generate, steady_state, uniquify


def check(result: BenchResult, name: str, *, ratio: bool = True) -> dict:
    assert isinstance(result, BenchResult)
    assert result.name == name
    assert result.figure and result.target and result.title
    assert result.passed in (True, False, None)
    if ratio:
        assert isinstance(result.ratio, float) and result.ratio > 0
    assert result.seconds > 0
    json.dumps(result.to_dict())  # what results.json will hold
    return result.details


def test_workload_copies_are_distinct_findings_and_repeats_are_the_same():
    from findings_router.domain.keys import dedup_key
    from findings_router.domain.normalize import normalize_event

    events = generate(30, seed="test")
    keys = [dedup_key(f) for e in events for f in normalize_event(e).findings]
    legacy = sum(1 for e in events if finding_count(e) == 2 and e["detail-type"].endswith("Imported"))
    assert len(set(keys)) >= len(events) - legacy  # the legacy two-standard findings share a key on purpose
    traffic = steady_state(events[:10], events[10:12], 50, seed="test")
    assert traffic.findings == 50
    assert traffic.findings - traffic.repeats == sum(finding_count(e) for e in events[10:12])
    again = uniquify(events[0], "x")
    assert again["detail"]["findings"][0] != events[0]["detail"]["findings"][0]


def test_ingestion_bench():
    from bench import ingestion

    details = check(ingestion.run(events=300), "ingestion")
    shares = details["share_reaching_queue"]
    assert set(shares) >= {"policy (shipped: resolutions all)", "policy, resolutions noted", "none (accounts only)"}
    assert shares["none (accounts only)"] == 1.0
    assert shares["policy, resolutions noted"] <= shares["policy (shipped: resolutions all)"] < 1.0
    assert details["needed_but_filtered"] == dict.fromkeys(shares, 0)  # behaviour, not timing: no lost page


def test_realistic_day_is_a_weighted_mix_of_fixtures():
    from bench.workload import REALISTIC_DAY, realistic_day

    assert abs(sum(w for _, _, w in REALISTIC_DAY) - 100) < 1e-6
    day = realistic_day(200, seed="test")
    assert (
        len({e["detail"]["findings"][0].get("Id") or e["detail"]["findings"][0]["finding_info"]["uid"] for _, e in day})
        == 200
    )


def test_cpu_bench():
    details = check(cpu.run(findings=40, repetitions=2, component_loops=1), "cpu_per_finding")
    assert details["findings"] == 40
    assert details["us_per_finding_ours"] > 0 and details["us_per_finding_json_loads"] > 0
    assert {"normalize", "policy", "decide", "json_loads"} <= set(details["components_us_per_finding"])
    assert details["profile_top_self_time"]


def test_cold_start_bench():
    result = coldstart.run(rounds=1, importtime_runs=1, secondary=False)
    details = check(result, "cold_start")
    assert {"boto3_client", "lambda_init"} <= set(details["ms_above_pass"])
    assert details["importtime_lambda_init"]["handler_direct_imports_ms"]
    assert details["importtime_boto3_client"]["self_time_by_package_ms"]
    # Behaviour, not timing: the init builds what a request needs, no HTTP client (the first page imports it).
    assert details["init_imports_requests"] is False


def test_the_lambda_environment_is_the_functions():
    environment = coldstart.lambda_environment(Path("/tmp/functions"), coldstart.CONFIG_DIR / "prod.yaml")
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] and environment["DEAD_LETTER_QUEUE_URL"]
    assert environment["POWERTOOLS_SERVICE_NAME"] == "findings-router"


def test_parse_importtime():
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |   yaml.reader\n"
        "import time:        50 |        150 | yaml\n"
    )
    assert coldstart.parse_importtime(stderr) == [(1, "yaml.reader", 100, 100), (0, "yaml", 50, 150)]


@pytest.mark.integration
def test_requests_bench():
    details = check(aws_requests.run(repeats=9, new=1), "requests_per_finding", ratio=False)
    assert details["findings"] == 10
    assert details["dynamodb_calls_by_operation"]["BatchGetItem"] >= 1
    # Every key of the batch read, each once (folded findings share a key), in batch reads.
    assert details["keys_in_batch_reads"] >= details["distinct_keys"] > 0
    assert details["pagerduty_http_for_repeats"] == 0  # behaviour, not timing: a repeat never pages
    assert details["writes_for_repeats"] == 0


@pytest.mark.integration
def test_throughput_bench():
    details = check(throughput.run(findings=40, repetitions=1), "throughput")
    assert details["findings"] == 40
    assert details["invocations"] == 4
    assert details["dynamodb_calls"]["BatchGetItem"] == 4
    assert details["baseline_conditional_failures"] == 0
    assert details["log_bytes_per_finding"] > 0


@pytest.mark.integration
def test_memory_bench():
    mem, size = memory.run(runs=1, findings=5, include_dependencies=False, modes=("boto3", "invoke"))
    details = check(mem, "memory")
    assert details["peak_rss_mb"]["invoke"] > 0 and details["peak_rss_mb"]["boto3"] > 0
    size_details = check(size, "package_size", ratio=False)
    assert size_details.get("error") is None, size_details
    assert size_details["zipped_mb"] > 0
    assert "findings_router (our code)" in size_details["by_group_mb"]


def test_scaling_bench():
    details = check(scaling.run(stream_findings=40, repetitions=1, sizes=(1, 10)), "scaling")
    assert set(details["pure_us_per_finding"]) == {"1", "10"}
    assert set(details["handler_us_per_finding"]) == {"1", "10"}
    assert details["handler_profile_share_batch_10"]


def test_cost_model_from_measured_inputs():
    from bench import cost

    results = [
        {
            "name": "throughput",
            "details": {
                "findings": 1000,
                "dynamodb_calls": {"BatchGetItem": 100, "PutItem": 50, "UpdateItem": 40},
                "batch_get_items_per_finding": 0.1,
                "put_item_bytes_mean": 800,
                "pagerduty_posts_per_finding": 0.04,
                "securityhub_calls_per_finding": 0.04,
                "log_bytes_per_finding": 800,
            },
        },
        {
            "name": "requests_per_finding",
            "details": {"findings": 100, "aged_repeats": {"dynamodb_calls_by_operation": {"PutItem": 100}}},
        },
        {"name": "scaling", "details": {"handler_us_per_finding": {"10": 150.0}}},
    ]
    model = cost.model(results)
    steady = model["usd_per_million_findings"]["findings_router_steady_state"]
    aged = model["usd_per_million_findings"]["findings_router_resends_past_touch_interval"]
    assert steady["total"] > 0 and aged["total"] > steady["total"]
    assert model["usd_per_million_findings"]["api_destination_every_finding"]["total"] == 0.2
    assert "total" in cost.render(model)
    # With the ingestion bench's shares: per million findings Security Hub emits, a share reaching the queue.
    results.append(
        {
            "name": "ingestion",
            "details": {"share_reaching_queue": {cost.SHIPPED_FILTER: 0.5, cost.NOTED_FILTER: 0.1}},
        }
    )
    filtered = cost.model(results)["usd_per_million_findings"]
    assert filtered["findings_router_policy_filter_noted"]["total"] < filtered["findings_router_policy_filter"]["total"]
    assert filtered["findings_router_policy_filter"]["total"] < steady["total"]
    assert filtered["api_destination_policy_filter"]["total"] == 0.1
    # What a page costs does not shrink with the share.
    for line in ("DynamoDB writes: dedup state", "DynamoDB writes: storm counters"):
        assert filtered["findings_router_policy_filter"][line] == steady[line]


def test_main_writes_results_and_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = BenchResult(name="fake", title="t", figure="1.00x", target="<= 2x", passed=True, ratio=1.0, seconds=0.1)
    monkeypatch.setattr("bench.__main__.BENCHES", {"fake": lambda quick: [fake]})
    out = tmp_path / "results.json"
    assert main(["--quick", "--output", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["quick"] is True
    assert [r["name"] for r in document["results"]] == ["fake"]
    assert "PASS" in render_table([fake])
