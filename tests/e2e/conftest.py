"""Session fixtures of the end-to-end run (`make e2e`, docs/e2e.md): LocalStack started, the project's PagerDuty
stand-in (and the JSM and webhook stand-ins of the policies' other notifiers), and every environment's synthesized
stack deployed. The tests then drive the stacks in file order:
test_1_deploy, test_2_findings, ..., test_9_teardown. A new step is a new test (or file) using `deployment`.

Run only through tests/e2e/run.sh (`make e2e`), which installs, synthesizes, and runs pytest inside a network
namespace of its own with `--confcutdir=tests/e2e` (tests/conftest.py's directory markers do not apply here, and
`make test` never collects this directory: pyproject.toml's `norecursedirs`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from findings_router_local.fakes.inspector import InspectorStandIn
from findings_router_local.fakes.pagerduty import PagerDutyReceiver
from tests.e2e.harness import deploy
from tests.e2e.harness.aws import Aws
from tests.e2e.harness.environments import (
    REPO,
    Environment,
    create_prerequisites,
    environments,
    start_stand_ins,
)
from tests.e2e.harness.localstack import REGION, Installation, running
from tests.e2e.harness.report import MemorySampler, Phases
from tests.e2e.harness.session import Deployment


@pytest.fixture(scope="session")
def run_dir() -> Path:
    value = os.environ.get("FR_E2E_RUN_DIR")
    if not value:
        raise pytest.UsageError("FR_E2E_RUN_DIR not set: run the end-to-end tests with `make e2e`")
    return Path(value)


@pytest.fixture(scope="session")
def phases(run_dir: Path) -> Phases:
    return Phases(run_dir / "phases.tsv")


@pytest.fixture(scope="session", autouse=True)
def memory(run_dir: Path) -> Iterator[MemorySampler]:
    with MemorySampler(run_dir / "memory.txt") as sampler:
        yield sampler


@pytest.fixture(scope="session")
def localstack(run_dir: Path, phases: Phases, memory: MemorySampler) -> Iterator[None]:
    installation = Installation.from_environ()
    server = running(run_dir, installation)
    with phases.timed("start LocalStack"):
        server.__enter__()
    try:
        yield
    finally:
        with phases.timed("stop LocalStack (and everything it started)"):
            server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pagerduty() -> Iterator[PagerDutyReceiver]:
    """The project's Events v2 stand-in (validates every event), on 127.0.0.1 inside the run's namespace."""
    receiver = PagerDutyReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(scope="session")
def inspector() -> Iterator[InspectorStandIn]:
    """Inspector (which LocalStack does not emulate) for the PSIRT digest: the project's stand-in with its log4shell
    estate, on 127.0.0.1 inside the run's namespace; the functions reach it through AWS_ENDPOINT_URL_INSPECTOR2."""
    with InspectorStandIn() as standin:
        yield standin


@pytest.fixture(scope="session")
def environments_with_stand_ins(pagerduty: PagerDutyReceiver) -> Iterator[dict[str, Environment]]:
    """Every environment, with a stand-in for each of its other notifiers (`notifiers`: the project's JSM stand-in,
    webhook receivers), started on 127.0.0.1 inside the run's namespace next to the PagerDuty stand-in."""
    envs = environments()
    started = []
    try:
        for env in envs.values():
            started += start_stand_ins(env, pagerduty)
        yield envs
    finally:
        for receiver in started:
            receiver.stop()


@pytest.fixture(scope="session")
def deployment(
    localstack: None,
    pagerduty: PagerDutyReceiver,
    inspector: InspectorStandIn,
    environments_with_stand_ins: dict[str, Environment],
    phases: Phases,
) -> Deployment:
    """Every environment's stack from cdk.out (`make synth`), deployed as docs/deploy.md says: the secrets and the
    partner event bus first, then bootstrap, assets and `CreateStack`, all stacks at once."""
    aws = Aws()
    envs = environments_with_stand_ins
    stacks = deploy.read_assembly(REPO / "cdk.out")
    missing = [e.stack for e in envs.values() if e.stack not in stacks]
    assert not missing, f"cdk.out has no stack for {missing} (run `make synth`); it has {sorted(stacks)}"
    regions = {stacks[e.stack].region for e in envs.values()}
    assert regions == {REGION}, f"the stacks are synthesized for {regions}; this run serves {REGION}"
    overlay = Installation.from_environ().overlay
    unshadowed = deploy.native_modules_not_in_overlay(REPO / "cdk.out", overlay)
    assert not unshadowed, (
        f"the function package has native modules the overlay ({overlay}) does not replace for this machine: "
        f"{unshadowed}; add their distributions to NATIVE_PACKAGES in tests/e2e/install.sh"
    )
    result = Deployment(aws, pagerduty, envs, stacks, phases, inspector=inspector)
    # LocalStack starts DynamoDB Local (a JVM, seconds) at the first DynamoDB call: meanwhile, not in the stacks' time.
    warm_up = ThreadPoolExecutor(1)
    dynamodb_ready = warm_up.submit(aws.client("dynamodb").list_tables)
    with phases.timed("deploy: secrets, partner bus, bootstrap, assets"):
        for env in envs.values():
            create_prerequisites(aws, env)
        bucket = deploy.bootstrap(aws, [stacks[e.stack] for e in envs.values()], aws.account)
        zips = REPO / ".cache" / "e2e" / "asset-zips"
        deploy.prune_zip_cache(zips, REPO / "cdk.out")
        with ThreadPoolExecutor(len(envs)) as pool:
            for future in [
                pool.submit(deploy.publish_assets, aws, stacks[e.stack], aws.account, zips) for e in envs.values()
            ]:
                future.result()

    dynamodb_ready.result(timeout=120)
    warm_up.shutdown()

    def create(env: Environment) -> None:
        artifact = stacks[env.stack]
        template, result.injected[env.stack] = deploy.inject_stand_ins(
            artifact.template, pagerduty.url, env.notifier_urls, inspector.base_url
        )
        started = time.monotonic()
        env.stack_id = deploy.create_stack(aws, artifact, template, bucket)
        deploy.wait_stack(aws.client("cloudformation"), env.stack_id, "CREATE_COMPLETE")
        result.seconds[env.stack] = time.monotonic() - started
        env.outputs = deploy.stack_outputs(aws.client("cloudformation"), env.stack_id)

    with phases.timed("deploy: CreateStack of every stack, in parallel"), ThreadPoolExecutor(len(envs)) as pool:
        for created in [pool.submit(create, env) for env in envs.values()]:
            created.result()
    for stack, seconds in sorted(result.seconds.items()):
        phases.record(f"  {stack} CREATE_COMPLETE after", seconds)
    _ready_at.append(time.monotonic())
    return result


# ------------------------------------------------------------------------------------------ time per test file

_ready_at: list[float] = []  # when `deployment` was ready: the first file's time starts there
_file_started: dict[str, float] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _file_started.setdefault(item.path.name, time.monotonic())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a file's last test ran (before the session's fixtures are torn down): its wall time, as a phase."""
    if nextitem is not None and nextitem.path == item.path:
        return
    run_dir = os.environ.get("FR_E2E_RUN_DIR")
    if run_dir:
        started = max([_file_started[item.path.name], *_ready_at])
        count = sum(1 for i in item.session.items if i.path == item.path)
        Phases(Path(run_dir) / "phases.tsv").record(f"{item.path.name} ({count} tests)", time.monotonic() - started)
