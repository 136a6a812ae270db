"""What the session fixtures hand the tests (tests/e2e/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from findings_router_local.fakes.inspector import InspectorStandIn
from findings_router_local.fakes.pagerduty import PagerDutyReceiver
from tests.e2e.harness.aws import Aws
from tests.e2e.harness.deploy import StackArtifact
from tests.e2e.harness.environments import Environment
from tests.e2e.harness.report import Phases


@dataclass
class Deployment:
    """Every environment's stack, deployed in LocalStack; its functions send to `pagerduty`, and to the stand-ins of
    the policy's other notifiers (`Environment.targets`)."""

    aws: Aws
    pagerduty: PagerDutyReceiver
    environments: dict[str, Environment]
    stacks: dict[str, StackArtifact]
    phases: Phases
    seconds: dict[str, float] = field(default_factory=dict)  # stack -> seconds from CreateStack to CREATE_COMPLETE
    # stack -> functions given EVENTS_URL (and NOTIFIER_URLS, when the environment has other notifiers)
    injected: dict[str, list[str]] = field(default_factory=dict)
    inspector: InspectorStandIn | None = None  # Inspector for the PSIRT digest (LocalStack has none)
