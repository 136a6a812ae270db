"""What the Lambda entry points share: building the runtime during init, and reading secrets."""

from __future__ import annotations

import os
from collections.abc import Callable


def build_during_init(build: Callable[[], object]) -> None:
    """Call `build` now when running in Lambda with a policy.

    Lambda runs init with burst CPU, whereas an invocation of a 256 MB function gets about a seventh of a vCPU:
    importing boto3, creating clients and validating the policy take several times longer there and delay the
    first page (or the first acknowledgement). Elsewhere (tests, demo, replay) runtimes are built on first use,
    after the environment is set up."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("POLICY_FILE"):
        build()
