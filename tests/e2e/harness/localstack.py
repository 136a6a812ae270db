"""LocalStack on this machine, without Docker: its filesystem under the run directory, started, waited for, stopped.

The run directory (`.cache/e2e/run-<pid>/`) holds everything LocalStack writes: `fs/` (FILESYSTEM_ROOT: its
package directories, where DynamoDB Local and the "Java 21" it asks for are linked in from the install, so it
downloads nothing), `tmp/` (TMPDIR: unzipped function code, each Lambda process's log file), `cache/`
(XDG_CACHE_HOME: its plugin index) and `localstack.log`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

GATEWAY = "127.0.0.1:4566"
ENDPOINT = f"http://{GATEWAY}"
REGION = "us-east-1"  # the region the stacks are synthesized for (checked against cdk.out by the deploy)
READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


class LocalStackError(RuntimeError):
    pass


@dataclass(frozen=True)
class Installation:
    """What tests/e2e/install.sh put under .cache/e2e/, and the interpreters found by tests/e2e/run.sh."""

    venv: Path
    lambda_python312: Path
    overlay: Path
    dynamodb_local: Path
    java_home: Path

    @classmethod
    def from_environ(cls) -> Installation:
        names = {
            "venv": "FR_E2E_LOCALSTACK_VENV",
            "lambda_python312": "FR_E2E_LAMBDA_PYTHON312",
            "overlay": "FR_E2E_LAMBDA_OVERLAY",
            "dynamodb_local": "FR_E2E_DYNAMODB_LOCAL",
            "java_home": "FR_E2E_JAVA_HOME",
        }
        missing = [v for v in names.values() if not os.environ.get(v)]
        if missing:
            raise LocalStackError(f"{', '.join(missing)} not set: run the end-to-end tests with `make e2e`")
        return cls(**{field: Path(os.environ[var]) for field, var in names.items()})


def prepare_filesystem(run_dir: Path, installation: Installation) -> Path:
    """LocalStack's FILESYSTEM_ROOT, with DynamoDB Local and Java linked where its installer looks for them
    (`<root>/usr/lib/localstack/<package>/<version>`, the "static libs" target: present, so nothing is installed)."""
    root = run_dir / "fs"
    libs = root / "usr" / "lib" / "localstack"
    (libs / "dynamodb-local").mkdir(parents=True, exist_ok=True)
    (libs / "java").mkdir(parents=True, exist_ok=True)
    links = {libs / "dynamodb-local" / "2": installation.dynamodb_local, libs / "java" / "21": installation.java_home}
    for link, target in links.items():
        if not link.exists():
            link.symlink_to(target.resolve(), target_is_directory=True)
    for marker in (libs / "dynamodb-local" / "2" / "DynamoDBLocal.jar", libs / "java" / "21" / "bin" / "java"):
        if not marker.exists():
            raise LocalStackError(f"{marker} missing: run tests/e2e/install.sh again (rm -rf .cache/e2e/stamps)")
    return root


def environment(run_dir: Path, installation: Installation) -> dict[str, str]:
    """LocalStack's environment: bound to 127.0.0.1 only, no DNS server, no outbound calls, its files in the run
    directory, Lambda through our `local` executor (docs/e2e.md lists why each is set)."""
    for sub in ("tmp", "cache"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(run_dir),
        "LANG": "C.UTF-8",
        "GATEWAY_LISTEN": GATEWAY,
        "GATEWAY_SERVER": "hypercorn",  # the default (twisted) server binds 0.0.0.0 whatever GATEWAY_LISTEN says
        "LOCALSTACK_HOST": GATEWAY,  # queue URLs, Function URLs, AWS_ENDPOINT_URL need no DNS
        "SQS_ENDPOINT_STRATEGY": "path",
        "FILESYSTEM_ROOT": str(prepare_filesystem(run_dir, installation)),
        "OVERRIDE_IN_DOCKER": "0",  # this machine may look like a container; keep LocalStack in its own directory
        "TMPDIR": str(run_dir / "tmp"),
        "XDG_CACHE_HOME": str(run_dir / "cache"),
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DYNAMODB_IN_MEMORY": "1",
        "LAMBDA_RUNTIME_EXECUTOR": "local",
        # An idle SQS event source mapping polls at most every 10 s by default; Lambda's long-polls, so a message is
        # picked up within a second or so: 1 s is closer, and each step of the run waits less.
        "LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC": "1",
        "FR_E2E_LAMBDA_PYTHON312": str(installation.lambda_python312),
        "FR_E2E_LAMBDA_OVERLAY": str(installation.overlay),
    }


def health() -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"{ENDPOINT}/_localstack/health", timeout=2) as response:
            return dict(json.loads(response.read()))
    except (OSError, ValueError, urllib.error.URLError):
        return None


@contextlib.contextmanager
def running(run_dir: Path, installation: Installation) -> Iterator[subprocess.Popen[bytes]]:
    """LocalStack started in its own process group, ready; stopped with everything it started on exit."""
    if health() is not None:
        raise LocalStackError(f"something already answers on {GATEWAY}: is another `make e2e` running here?")
    log = (run_dir / "localstack.log").open("wb")
    process = subprocess.Popen(
        [str(installation.venv / "bin" / "python"), "-m", "localstack.runtime.main"],
        env=environment(run_dir, installation),
        cwd=run_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_ready(process, run_dir / "localstack.log")
        yield process
    finally:
        stop(process)
        log.close()


def wait_ready(process: subprocess.Popen[bytes], log: Path, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackError(f"LocalStack exited with status {process.returncode}:\n{_tail(log)}")
        status = health()
        if status is not None and "lambda" in dict(status.get("services") or {}):  # type: ignore[call-overload]
            return
        time.sleep(0.2)
    raise LocalStackError(f"LocalStack not ready on {GATEWAY} within {timeout:.0f} s:\n{_tail(log)}")


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM (LocalStack stops DynamoDB Local and the Lambda processes itself), then SIGKILL to its whole
    process group, whatever is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the group is LocalStack's own (start_new_session)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"
