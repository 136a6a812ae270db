"""The Lambda runtime executor `local`: an execution environment is one local process, not a container.

LocalStack's own Lambda service keeps doing everything else (versions, environments and their concurrency, event
source mappings, async invocations and their retries, Function URLs, CloudWatch Logs); only the part that would start
a container is replaced. Each environment runs `rie.py`, a stand-in for LocalStack's runtime-init that speaks the
same HTTP protocol, with the runtime's Python, in a private mount namespace (`unshare -m`) where

* the unzipped function package is mounted **read-only** at /var/task (the handler, and `POLICY_FILE`
  /var/task/config/<env>.json, work unchanged);
* /tmp is a private 512 MB tmpfs, as each Lambda sandbox has its own;
* nothing of the interpreter's site-packages is visible (`python -S`): only the package, and the overlay.

Settings, from the LocalStack process's environment:

* FR_E2E_LAMBDA_PYTHON312 (and FR_E2E_LAMBDA_PYTHON313): the interpreter for that runtime;
* FR_E2E_LAMBDA_OVERLAY: a directory put before /var/task on PYTHONPATH, holding host-architecture wheels of the
  package's native modules (the package is built for arm64; this host may not be).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from typing import Any

from plux import Plugin

RIE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rie.py")
RUNTIME_PYTHONS = {"python3.12": "FR_E2E_LAMBDA_PYTHON312", "python3.13": "FR_E2E_LAMBDA_PYTHON313"}
OVERLAY = os.environ.get("FR_E2E_LAMBDA_OVERLAY", "")
STOP_GRACE_SECONDS = 5
# Mount the package read-only at /var/task and give the sandbox its own /tmp (unless something it needs lives under
# /tmp), then run the runtime's Python.
SANDBOX_SCRIPT = (
    "set -e; mount -t tmpfs -o size=16m tmpfs /var; mkdir -p /var/task /var/runtime; "
    'mount --bind "$0" /var/task; mount -o remount,bind,ro /var/task; '
    'if [ "$FR_E2E_PRIVATE_TMP" = 1 ]; then mount -t tmpfs -o size=512m tmpfs /tmp; fi; '
    'unset FR_E2E_PRIVATE_TMP; cd /var/task; exec "$@"'
)


class LocalRuntimeExecutorPlugin(Plugin):
    namespace = "localstack.lambda.runtime_executor"
    name = "local"

    def load(self, *args: Any, **kwargs: Any) -> type:
        return _executor_class()


def runtime_python(runtime: str | None) -> str:
    variable = RUNTIME_PYTHONS.get(runtime or "")
    python = os.environ.get(variable) if variable else None
    if not python:
        known = ", ".join(f"{r} ({v})" for r, v in RUNTIME_PYTHONS.items())
        raise RuntimeError(f"executor 'local': no interpreter for runtime {runtime!r}; set one of: {known}")
    return python


def _executor_class() -> type:
    """Built on first use, so that importing this module (plux's discovery) imports nothing of LocalStack's."""
    from localstack import config
    from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint, StatusErrorException
    from localstack.services.lambda_.invocation.runtime_executor import RuntimeExecutor
    from localstack.utils.net import get_free_tcp_port

    class LocalRuntimeExecutor(RuntimeExecutor):
        def __init__(self, id: str, function_version: Any) -> None:
            super().__init__(id=id, function_version=function_version)
            self.executor_endpoint = ExecutorEndpoint(self.id)
            self.proc: subprocess.Popen[bytes] | None = None
            self.log_path: str | None = None
            self._stopping = False

        def start(self, env_vars: dict[str, Any]) -> None:
            self.executor_endpoint.start()
            python = runtime_python(self.function_version.config.runtime)
            port = get_free_tcp_port()
            code_dir = str(self.function_version.config.code.get_unzipped_code_location())
            env = {k: str(v) for k, v in env_vars.items()}
            env.update(
                PATH=os.environ.get("PATH", "/usr/bin:/bin"),
                LANG="en_US.UTF-8",
                HOME="/tmp",
                PYTHONPATH=":".join(p for p in (OVERLAY, "/var/task") if p),
                PYTHONDONTWRITEBYTECODE="1",
            )
            fd, self.log_path = tempfile.mkstemp(prefix=f"lambda-{self.id}-", suffix=".log")
            paths = (code_dir, RIE, python, OVERLAY, self.log_path)
            hidden = [p for p in paths if p.startswith("/var/")]
            if hidden:
                os.close(fd)
                raise RuntimeError(
                    f"executor 'local': /var is replaced in the sandbox, so these cannot be there: {hidden}"
                )
            env["FR_E2E_PRIVATE_TMP"] = "0" if any(p.startswith("/tmp/") for p in paths) else "1"
            command = ["unshare", "-m", "--propagation", "private", "sh", "-c", SANDBOX_SCRIPT, code_dir]
            command += [python, "-S", "-u", RIE, str(port)]
            try:
                self.proc = subprocess.Popen(command, env=env, stdout=fd, stderr=subprocess.STDOUT, cwd="/")
            finally:
                os.close(fd)
            self.executor_endpoint.container_address = "127.0.0.1"
            self.executor_endpoint.container_port = port
            threading.Thread(target=self._watch_startup, name=f"lambda-watch-{self.id}", daemon=True).start()
            self.executor_endpoint.wait_for_startup()

        def _watch_startup(self) -> None:
            """A process that dies before it reports ready fails the start at once (not after the startup timeout)."""
            assert self.proc is not None
            self.proc.wait()
            future = self.executor_endpoint.startup_future
            if self._stopping or future is None or future.done():
                return
            with contextlib.suppress(Exception):  # it may have become done meanwhile
                future.set_exception(
                    StatusErrorException(
                        f"Lambda process exited with status {self.proc.returncode} before it was ready",
                        payload=self.get_logs().encode(),
                    )
                )

        def stop(self) -> None:
            self._stopping = True
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            with contextlib.suppress(Exception):
                self.executor_endpoint.shutdown()

        def get_address(self) -> str:
            return "127.0.0.1"

        def get_endpoint_from_executor(self) -> str:
            return "127.0.0.1"  # becomes the host of AWS_ENDPOINT_URL inside the function

        def get_runtime_endpoint(self) -> str:
            prefix = self.executor_endpoint.get_endpoint_prefix()
            return f"http://127.0.0.1:{config.GATEWAY_LISTEN[0].port}{prefix}"

        def invoke(self, payload: dict[str, Any]) -> Any:
            return self.executor_endpoint.invoke(payload)

        def get_logs(self) -> str:
            if not self.log_path:
                return ""
            try:
                with open(self.log_path, encoding="utf-8", errors="replace") as log:
                    return log.read()
            except OSError:
                return ""

        @classmethod
        def prepare_version(cls, function_version: Any) -> None:
            runtime_python(function_version.config.runtime)  # an unknown runtime fails the function's creation
            if function_version.config.code:
                function_version.config.code.prepare_for_execution()  # unzip, once per code object

        @classmethod
        def cleanup_version(cls, function_version: Any) -> None:
            pass  # the unzipped code is shared by versions; LocalStack removes it with the code object

        @classmethod
        def validate_environment(cls) -> bool:
            return True

    return LocalRuntimeExecutor
