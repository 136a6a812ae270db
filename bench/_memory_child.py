"""Run in a fresh interpreter by bench.memory: do one thing, then write the peak RSS (ru_maxrss) to a file.

usage: python -m bench._memory_child MODE RESULT_FILE [SQS_EVENT_FILE]
MODE: boto3 | boto3_client | handler_import | invoke
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import sys
import time
from typing import Any


class _Context:
    function_name = "findings-router-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:111122223333:function:findings-router-bench"
    memory_limit_in_mb = 256
    aws_request_id = "bench"
    log_group_name = "/aws/lambda/findings-router-bench"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 120_000


def _vmhwm_kb() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _runtime() -> Any:
    """The router's runtime as the function builds it from its environment (set by bench.memory's parent), but for
    the Security Hub write-back: moto has no BatchUpdateFindings, so the recording twin stands in (as in the
    integration tests)."""
    from findings_router.adapters.memory import RecordingSecurityHub
    from findings_router.bootstrap import RuntimeEnv, build_router
    from findings_router.settings.load import load_policy

    env = RuntimeEnv.from_environ()
    policy = load_policy(env.policy_file)
    return build_router(
        env, policy=policy, securityhub=RecordingSecurityHub() if policy.securityhub.writeback else None
    )


def main() -> None:
    mode, result_file = sys.argv[1], sys.argv[2]
    out: dict[str, object] = {"mode": mode}
    start = time.perf_counter()
    if mode == "boto3":
        import boto3

        del boto3
    elif mode == "boto3_client":
        import boto3

        boto3.client("dynamodb")
    elif mode == "handler_import":
        import findings_router.entrypoints.route_findings  # noqa: F401
    elif mode == "invoke":
        from findings_router.entrypoints import route_findings as handler

        with open(sys.argv[3], encoding="utf-8") as f:
            event = json.load(f)
        handler.install(_runtime())
        sink = io.StringIO()
        handler.logger.registered_handler.setStream(sink)  # type: ignore[attr-defined]
        with contextlib.redirect_stdout(sink):
            response = handler.lambda_handler(event, _Context())
        out["failures"] = len(response.get("batchItemFailures", []))
        out["records"] = len(event["Records"])
        out["log_bytes"] = len(sink.getvalue().encode())
    else:
        raise SystemExit(f"unknown mode {mode}")
    out["seconds"] = time.perf_counter() - start
    # ru_maxrss survives fork+exec on Linux: a child of a big process reports the parent's peak. VmHWM is the
    # peak of this process's own address space, which exec starts afresh.
    out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["vmhwm_kb"] = _vmhwm_kb()
    with open(result_file, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
