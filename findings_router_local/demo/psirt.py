"""The demo's last section: the 3 a.m. PSIRT question, "which of our resources are affected by log4shell?".

`findings-router cve CVE-2021-44228 --env prod` (through `cli.main`, as a person would type it) against the local
Inspector / Security Hub stand-in serving a log4shell estate (`fakes.inspector.dataset`), Security Hub aggregating
Regions in eu-central-1. Prints the command's table, summary and notes, in about 20 lines.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TextIO

from findings_router_local.aws_local import local_aws_environment
from findings_router_local.fakes.inspector import LOG4SHELL, InspectorStandIn

WIDTH = "130"  # the demo's widest lines are about as wide
REGION = "eu-central-1"


def psirt_section(config_dir: Path, out: TextIO) -> int:
    """Runs the cve command against the stand-in and prints what it printed; returns its exit status."""
    from findings_router_local.cli import main

    command = ["cve", LOG4SHELL, "--env", "prod", "--regions", REGION]
    stdout, stderr = io.StringIO(), io.StringIO()
    with InspectorStandIn(aggregator_region=REGION) as standin:
        extra = {"COLUMNS": WIDTH, "AWS_EC2_METADATA_DISABLED": "true"}
        with (
            local_aws_environment(standin.base_url, extra),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            status = main(
                [*command, "--config-dir", str(config_dir), "--endpoint-url", standin.base_url, "--no-progress"]
            )
    out.write(
        "\nPSIRT at 3 a.m.: which of our resources have log4shell? Inspector and Security Hub (a stand-in: images, Lambda\n"
        "layers, Linux and Windows hosts in 5 accounts), asked from the delegated administrator:\n"
    )
    out.write(f"$ findings-router {' '.join(command)}\n")
    out.write(stdout.getvalue())
    out.write(stderr.getvalue())
    return status
