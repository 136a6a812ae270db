"""`findings-router`: demo, replay (dry run), explain, validate-config, and redrive (the one command that calls AWS)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from findings_router.config import EXPIRY_WARNING_DAYS, PolicyError, load_policy, policy_path

DEFAULT_CONFIG_DIR = Path("config")


def _cmd_replay(args: argparse.Namespace) -> int:
    from findings_router_local.replay import run_replay

    policy = load_policy(policy_path(args.config_dir, args.env))
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    return run_replay(policy, [Path(p) for p in args.files], args.format, progress=progress)


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

VALIDATE_EPILOG = f"""\
checks every policy file as synth does (the model, the account scopes, the settings AWS would reject), and fails
on a suppression past its expires date; one expiring within {EXPIRY_WARNING_DAYS} days is a warning. Problems are printed as
file:line: field: message, warnings as file:line: field: warning: message (stderr).

exit status:
  {EXIT_OK}  every file is valid (warnings allowed)
  {EXIT_FAILED}  a check failed: an invalid file, an expired suppression, two environments sharing an account, ...
  {EXIT_USAGE}  bad usage: no such directory, or no <env>.yaml / <env>.yml policy file in it
"""


def _cmd_validate(args: argparse.Namespace) -> int:
    from infra.definitions import validate_deployment_config

    today = dt.datetime.now(dt.UTC).date()
    result = validate_deployment_config(args.config_dir, today=today, expired_suppressions="error")
    for problem in result.other:
        print(problem, file=sys.stderr)
    if result.usage_error is not None:
        print(result.usage_error, file=sys.stderr)
        return EXIT_USAGE
    for path, validation in result.files.items():
        for problem in validation.errors:
            print(problem, file=sys.stderr)
        if validation.ok and validation.policy is not None:
            policy = validation.policy
            print(f"{path}: ok ({len(policy.rules)} rules, {len(policy.suppressions)} suppressions)")
        for problem in validation.warnings:
            print(problem, file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def _cmd_explain(args: argparse.Namespace) -> int:
    from findings_router_local.explain import explain_command

    policy = load_policy(policy_path(args.config_dir, args.env))
    return explain_command(policy, list(args.files), output=args.output, out=sys.stdout, err=sys.stderr)


def _cmd_demo(args: argparse.Namespace) -> int:
    from findings_router_local.demo import run_demo

    return run_demo(args.config_dir, args.events_url, flaky=args.flaky)


def _cmd_redrive(args: argparse.Namespace) -> int:
    import boto3

    from findings_router_local.redrive import redrive

    policy = load_policy(policy_path(args.config_dir, args.env))
    sqs = boto3.client("sqs", region_name=args.region or policy.region, endpoint_url=args.endpoint_url)
    redrive(sqs, policy, max_messages=args.max, dry_run=args.dry_run, out=sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="findings-router", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    replay = sub.add_parser("replay", help="dry-run a policy over exported findings (no AWS calls)")
    replay.add_argument("--env", required=True, help="environment: reads <config-dir>/<env>.yaml (or .yml)")
    replay.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR)
    replay.add_argument("--format", choices=("table", "json"), default="table")
    replay.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr for long inputs (default: when stderr is a terminal)",
    )
    replay.add_argument("files", nargs="+", help="EventBridge events, get-findings output, findings or JSON lines")
    replay.set_defaults(func=_cmd_replay)

    demo = sub.add_parser("demo", help="run the real router end to end locally (moto + a local PagerDuty receiver)")
    demo.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR)
    demo.add_argument(
        "--events-url",
        help="send to this PagerDuty-compatible Events v2 endpoint instead of the built-in receiver",
    )
    demo.add_argument(
        "--flaky",
        action="store_true",
        help="the built-in receiver answers 500/429/drops for a while: watch retries deliver every page once",
    )
    demo.set_defaults(func=_cmd_demo)

    redrive = sub.add_parser("redrive", help="move dead-lettered findings back to the queue once the cause is fixed")
    redrive.add_argument("--env", required=True)
    redrive.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR)
    redrive.add_argument("--region", help="default: the policy's region, else your AWS configuration")
    redrive.add_argument("--endpoint-url", help="e.g. a local moto server")
    redrive.add_argument("--max", type=int, help="move at most this many messages")
    redrive.add_argument("--dry-run", action="store_true", help="list what would move; move nothing")
    redrive.set_defaults(func=_cmd_redrive)

    explain = sub.add_parser(
        "explain", help="show how the policy decides each finding: every suppression and rule, and why it matched"
    )
    explain.add_argument("--env", required=True, help="environment: reads <config-dir>/<env>.yaml (or .yml)")
    explain.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR)
    explain.add_argument("--output", choices=("text", "json"), default="text")
    explain.add_argument("files", nargs="+", help="findings or events as replay reads them; - for stdin")
    explain.set_defaults(func=_cmd_explain)

    validate = sub.add_parser(
        "validate-config",
        help="check every <config-dir>/*.yaml (and *.yml) policy file as synth does",
        description="Check every <config-dir>/<env>.yaml (and <env>.yml) policy file.",
        epilog=VALIDATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR)
    validate.set_defaults(func=_cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PolicyError as exc:  # every command reads policy files: one clear message, exit status 2
        print(exc, file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
