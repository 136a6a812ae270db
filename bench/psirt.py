"""Bench: `findings-router cve` over 10,000 findings (issue 16): wall time, API calls, findings per second.

The local Inspector / Security Hub stand-in (`findings_router_local.fakes.inspector`) serves 10,000 synthetic
findings of CVE-2021-44228 (ECR images, Lambda functions, EC2 instances in four accounts; one Region) over HTTP on
127.0.0.1, and their Security Hub OCSF copies. The command's own code runs against it, as a person would run it
(`--source auto`: Inspector `ListFindings`, 25 findings a page whatever `maxResults` says, cross-checked with Security
Hub `GetFindingsV2`, 100 a page), with a table written to a counting sink. Measured: the wall time of the sweep and
of the report (merge, summary, table), the API calls per operation (counted by the stand-in), findings per second.

Figures only, no target (timings are never asserted). The stand-in runs in the same process (threads) and shares
its CPUs; a real service adds its latency per call, so the API call count is the figure that carries over:
`calls x latency` is the floor of a real run (e.g. 500 calls x 150 ms = 75 s). `python -m bench.psirt [--quick]`
runs it alone.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import BenchResult, CountingSink

FINDINGS = 10_000
QUICK_FINDINGS = 500
REGION = "eu-central-1"


def measure(findings: int, *, transport: str = "http") -> dict[str, Any]:
    """One run over `findings` findings; `transport` "http" (the stand-in on 127.0.0.1) or "in-process" (no socket:
    botocore hands each request to the stand-in; for tests that may not open one)."""
    import boto3

    from findings_router.psirt.report import summarize
    from findings_router.psirt.sweep import SweepRequest, client_factory, sweep
    from findings_router_local.cve import CveRun, report
    from findings_router_local.fakes.inspector import LOG4SHELL, InspectorStandIn, synthetic_findings

    started = time.perf_counter()
    standin = InspectorStandIn(synthetic_findings(findings, seed="bench"))
    setup = time.perf_counter() - started
    session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
    request = SweepRequest(cves=(LOG4SHELL,), regions=(REGION,))
    sink = CountingSink()
    with standin:
        if transport == "http":
            clients = client_factory(session, endpoint_url=standin.base_url)
        else:
            clients = client_factory(session, endpoint_url="http://127.0.0.1:9", on_client=standin.attach)
        swept_at = time.perf_counter()
        result = sweep(request, clients)
        swept = time.perf_counter() - swept_at
        reported_at = time.perf_counter()
        status = report(request, result, CveRun(output="table", out=sink, err=CountingSink(), environments={}))  # type: ignore[arg-type]
        reported = time.perf_counter() - reported_at
    summary = summarize(result.rows)
    calls = dict(standin.calls)
    total = swept + reported
    return {
        "findings": findings,
        "transport": transport,
        "rows": summary.rows,
        "confirmed_by_security_hub": summary.confirmed,
        "exit_status": status,
        "api_calls": calls,
        "api_calls_total": sum(calls.values()),
        "client_counted_calls": result.stats.total,
        "sweep_seconds": round(swept, 3),
        "report_seconds": round(reported, 3),
        "total_seconds": round(total, 3),
        "findings_per_second": round(findings / total, 1) if total else None,
        "ms_per_api_call": round(1000 * swept / max(sum(calls.values()), 1), 2),
        "table_lines": sink.lines,
        "setup_seconds": round(setup, 2),
    }


def run(findings: int = FINDINGS, *, transport: str = "http") -> BenchResult:
    started = time.perf_counter()
    out = measure(findings, transport=transport)
    calls = out["api_calls"]
    listed = calls.get("inspector2:ListFindings", 0)
    v2 = calls.get("securityhub:GetFindingsV2", 0)
    figure = (
        f"{findings:,} findings: {out['total_seconds']:.1f} s, {out['api_calls_total']} API calls "
        f"({listed} ListFindings + {v2} GetFindingsV2), {out['findings_per_second']:,.0f} findings/s"
    )
    return BenchResult(
        name="psirt_cve",
        title=f"findings-router cve over {findings:,} Inspector findings (local stand-in, {transport})",
        figure=figure,
        target="- (figures only)",
        passed=None,
        details=out,
        notes=[
            "the stand-in shares the process and its CPUs; against AWS add each call's latency: the call count is "
            "what carries over (ListFindings returns at most 25 findings a page, GetFindingsV2 100)",
            "sweep: paging, parsing (botocore) and rows; report: merge, summary and the table (to a counting sink)",
        ],
        seconds=time.perf_counter() - started,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.psirt", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FINDINGS:,} findings instead of {FINDINGS:,}")
    parser.add_argument("--findings", type=int, help="how many findings the stand-in serves")
    parser.add_argument("--in-process", action="store_true", help="serve the clients in-process (no HTTP)")
    args = parser.parse_args(argv)
    findings = args.findings or (QUICK_FINDINGS if args.quick else FINDINGS)
    result = run(findings, transport="in-process" if args.in_process else "http")
    print(result.figure)
    for key, value in result.details.items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
