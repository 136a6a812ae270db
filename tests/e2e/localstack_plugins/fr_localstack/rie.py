"""A stand-in for LocalStack's Lambda runtime-init, run by the function's Python (`python -S -u rie.py PORT`).

Standard library only: nothing but the function package (/var/task) and the overlay is on sys.path. It speaks
LocalStack's runtime-init protocol:

* init: import the handler (module-level code runs, as in Lambda's init phase), then
  `POST {LOCALSTACK_RUNTIME_ENDPOINT}/status/{id}/ready`, or `/status/{id}/error` when the import failed;
* `POST http://127.0.0.1:PORT/invoke` `{"invoke-id", "invoked-function-arn", "payload", "trace-id"}`: answered at
  once, then the handler runs, and `/invocations/{id}/logs` then `/invocations/{id}/response` or `/error` are posted.

As in Lambda: one invocation at a time; START/END/REPORT lines (REPORT with the init duration on a cold start and
the process's peak memory); the function's timeout is enforced: the invocation ends with `Task timed out after N
seconds` and the runtime is started again (a fresh interpreter, init included) for the next one.

stdout and stderr are the environment's log file; each invocation's part of it goes to CloudWatch Logs.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sys
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # the plugin's own directory is not the function's

PORT = int(sys.argv[1])
RESTARTED = "--restarted" in sys.argv[2:]  # after a timeout: LocalStack already knows the environment is ready
ENDPOINT = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]
RUNTIME_ID = os.environ["LOCALSTACK_RUNTIME_ID"]
TIMEOUT_SECONDS = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or 3)
LOG_FD = 1  # stdout (and stderr) is the environment's log file
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_one_at_a_time = threading.Lock()


def post(path: str, body: Any) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        ENDPOINT + path, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with _opener.open(request, timeout=30) as response:
        response.read()


def error_body(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__),
    }


def log_offset() -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    return os.fstat(LOG_FD).st_size


def log_since(offset: int) -> str:
    end = log_offset()
    return os.pread(LOG_FD, max(0, end - offset), offset).decode(errors="replace")


class Context:
    """The handler's `context`, with the attributes Lambda's Python runtime gives it."""

    def __init__(self, request_id: str, arn: str | None, deadline: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self._deadline = deadline
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def peak_memory_mb() -> int:
    """This interpreter's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across fork and exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def restart() -> None:
    """What Lambda does after a timeout: a fresh runtime (init runs again); the port is bound again at once."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-S", "-u", os.path.abspath(__file__), str(PORT), "--restarted"])


_init_started = time.time()
try:  # the init phase: import the handler's module
    _module, _function = os.environ["_HANDLER"].rsplit(".", 1)
    handler = getattr(importlib.import_module(_module), _function)
except Exception as exc:
    traceback.print_exc()
    post(f"/status/{RUNTIME_ID}/error", error_body(exc))
    sys.exit(1)
_cold_start = {"init_ms": (time.time() - _init_started) * 1000}  # reported with the first invocation only


def invoke(invocation: dict[str, Any]) -> None:
    with _one_at_a_time:
        request_id = invocation["invoke-id"]
        offset, started = log_offset(), time.time()
        deadline = started + TIMEOUT_SECONDS
        os.environ["_X_AMZN_TRACE_ID"] = invocation.get("trace-id") or ""
        print(f"START RequestId: {request_id} Version: {os.environ.get('AWS_LAMBDA_FUNCTION_VERSION')}")
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                event = json.loads(invocation["payload"]) if invocation.get("payload") else {}
                context = Context(request_id, invocation.get("invoked-function-arn"), deadline)
                outcome["response"] = json.dumps(handler(event, context)).encode()
            except Exception as exc:
                traceback.print_exc()
                outcome["error"] = json.dumps(error_body(exc)).encode()

        worker = threading.Thread(target=call, name="handler", daemon=True)
        worker.start()
        worker.join(TIMEOUT_SECONDS)
        timed_out = worker.is_alive()
        if timed_out:
            stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            message = f"{stamp} {request_id} Task timed out after {TIMEOUT_SECONDS:.2f} seconds"
            print(message)
            outcome["error"] = json.dumps({"errorMessage": message, "errorType": "Sandbox.Timedout"}).encode()
        duration_ms = (time.time() - started) * 1000
        memory_mb = peak_memory_mb()
        init_ms = _cold_start.pop("init_ms", None)
        init = f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else ""
        print(f"END RequestId: {request_id}")
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Memory Size: {os.environ.get('AWS_LAMBDA_FUNCTION_MEMORY_SIZE')} MB\tMax Memory Used: {memory_mb} MB{init}"
        )
        post(f"/invocations/{request_id}/logs", {"logs": log_since(offset)})  # the logs before the result
        if "response" in outcome:
            post(f"/invocations/{request_id}/response", outcome["response"])
        else:
            post(f"/invocations/{request_id}/error", outcome["error"])
        if timed_out:
            restart()


class _Invocations(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        invocation = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(200)
        self.end_headers()
        threading.Thread(target=invoke, args=(invocation,), name="invoke", daemon=True).start()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the log file is the function's."""


server = ThreadingHTTPServer(("127.0.0.1", PORT), _Invocations)
threading.Thread(target=server.serve_forever, name="invocations", daemon=True).start()
if not RESTARTED:
    post(f"/status/{RUNTIME_ID}/ready", b"{}")
threading.Event().wait()
