"""`findings-router`: demo, replay (dry run), explain, validate-config; status, redrive, cve, silence and
shadow-report (the commands that call AWS)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from findings_router import __version__
from findings_router.settings.load import EXPIRY_WARNING_DAYS, PolicyError, load_policy, policy_path
from findings_router.settings.schema import Policy

CONFIG_DIR_VARIABLE = "FINDINGS_ROUTER_CONFIG_DIR"
LOCAL_CONFIG_DIR = Path("config")


class UsageError(Exception):
    """A one-line message for the user; exit status 2."""


def config_dir(args: argparse.Namespace) -> Path:
    """--config-dir, else $FINDINGS_ROUTER_CONFIG_DIR, else ./config: the first that is given, which must exist."""
    given: Path | None = args.config_dir
    source = "--config-dir"
    if given is None and os.environ.get(CONFIG_DIR_VARIABLE):
        given, source = Path(os.environ[CONFIG_DIR_VARIABLE]), CONFIG_DIR_VARIABLE
    if given is None:
        if LOCAL_CONFIG_DIR.is_dir():
            return LOCAL_CONFIG_DIR
        raise UsageError(
            f"no policy directory: --config-dir is not given, {CONFIG_DIR_VARIABLE} is not set, and there is no "
            f"./config in {Path.cwd()}"
        )
    if not given.is_dir():
        raise UsageError(f"{source} {given}: not a directory")
    return given


def _policy(args: argparse.Namespace) -> Policy:
    return load_policy(policy_path(config_dir(args), args.env))


def _silences_file(path: Path | None) -> list[Any]:
    """`--silences FILE` of replay and explain: what `silence list --output json` prints."""
    if path is None:
        return []
    from findings_router.domain.silences import SilenceError, silences_from_json

    try:
        return list(silences_from_json(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--silences {path}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    except SilenceError as exc:
        raise UsageError(f"--silences {path}: {exc}") from None


def _cmd_replay(args: argparse.Namespace) -> int:
    from findings_router_local.replay import run_replay

    policy = _policy(args)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    fmt = "table" if args.format == "text" else args.format
    return run_replay(
        policy,
        list(args.files),
        fmt,
        progress=progress,
        summary=not args.quiet,
        silences=_silences_file(args.silences),
        shadow=args.shadow,
    )


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

EXIT_CODES = f"""\
exit status (every command):
  {EXIT_OK}  done
  {EXIT_FAILED}  a check found something: validate-config found a problem, status found dead letters or an alarm,
     redrive left messages it could not move, cve found affected resources, shadow-report found findings that differ
  {EXIT_USAGE}  bad input or usage: a policy file that is not valid, input that cannot be read, AWS not reachable

policy files: --config-dir, else ${CONFIG_DIR_VARIABLE}, else ./config.
"""

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
    from infra.derived import validate_deployment_config

    today = dt.datetime.now(dt.UTC).date()
    result = validate_deployment_config(config_dir(args), today=today, expired_suppressions="error")
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

    policy = _policy(args)
    return explain_command(
        policy,
        list(args.files),
        output=args.output,
        out=sys.stdout,
        err=sys.stderr,
        silences=_silences_file(args.silences),
    )


def _target_url(text: str) -> tuple[str, str]:
    name, _, url = text.partition("=")
    if not name or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=http(s)://…")
    return name, url


def _cmd_demo(args: argparse.Namespace) -> int:
    from findings_router_local.demo import run_demo

    return run_demo(
        config_dir(args), args.events_url, flaky=args.flaky, verbose=args.verbose, target_urls=dict(args.target_url)
    )


def _cmd_redrive(args: argparse.Namespace) -> int:
    from findings_router_local.redrive import redrive, sqs_client

    policy = _policy(args)
    with _aws_errors("redrive"):
        sqs = sqs_client(region=args.region or policy.region, profile=args.profile, endpoint_url=args.endpoint_url)
        report = redrive(sqs, policy, max_messages=args.max, dry_run=args.dry_run, out=sys.stdout)
    return EXIT_FAILED if report.failed else EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from findings_router_local.aws_access import AwsClients
    from findings_router_local.status import status_command

    policy = _policy(args)
    with _aws_errors("status"):
        clients = AwsClients(profile=args.profile, region=args.region or policy.region, endpoint_url=args.endpoint_url)
        return status_command(clients, policy, output=args.output, out=sys.stdout)


def _cmd_silence(args: argparse.Namespace) -> int:
    from findings_router.domain.silences import SilenceError
    from findings_router_local.aws_access import AwsClients
    from findings_router_local.silence import silence_command

    policy = _policy(args)
    with _aws_errors("silence"):
        clients = AwsClients(profile=args.profile, region=args.region or policy.region, endpoint_url=args.endpoint_url)
        try:
            return silence_command(args, policy, clients, sys.stdout)
        except SilenceError as exc:
            raise UsageError(f"silence {args.action}: {exc}") from None


def _cmd_shadow_report(args: argparse.Namespace) -> int:
    from findings_router.domain.silences import SilenceError
    from findings_router_local.aws_access import AwsClients
    from findings_router_local.shadow_report import shadow_report_command

    policy = _policy(args)
    with _aws_errors("shadow-report"):
        clients = AwsClients(profile=args.profile, region=args.region or policy.region, endpoint_url=args.endpoint_url)
        try:
            return shadow_report_command(policy, clients, args.since, args.output, sys.stdout, sys.stderr)
        except SilenceError as exc:
            raise UsageError(f"shadow-report: {exc}") from None


SILENCE_EPILOG = f"""\
a silence holds back the pages and notifications of the findings it matches (every finding with --all) while it is
active: their episodes are still tracked, resolves still go out (an incident paged before the silence still closes),
and what it held back pages when it ends or is expired (checked every silences.sweep_minutes) if the finding is still
active and the policy still pages it. Matchers are a rule's `match` fields: --match severity=HIGH --match
account=111122223333 --match resource_tag.team=iot-* (a field repeated matches any of its values; different fields
must all hold). The router applies a new silence or an expiry within a minute. docs/runbook.md.

exit status:
  {EXIT_OK}  done
  {EXIT_USAGE}  bad input (no comment, no end, too long, an unknown field or id) or AWS not reachable
"""


CVE_EPILOG = f"""\
every resource affected by these CVEs, from Amazon Inspector (ListFindings; Windows KB findings through their related
CVEs), cross-checked with Security Hub (GetFindingsV2, else GetFindings). Run it from the Inspector / Security Hub
delegated administrator account, or with a role there: a member account sees only its own findings. IAM:
inspector2:ListFindings, securityhub:GetFindings (and inspector2:ListFindingAggregations for the progress total).
The 3 a.m. playbook: docs/psirt.md.

exit status:
  {EXIT_OK}  no affected resource found
  {EXIT_FAILED}  affected resources found
  {EXIT_USAGE}  bad usage (an id that is not a CVE, KB or GHSA id, a bad --since) or AWS error (a permission, a Region)
"""


def _cmd_cve(args: argparse.Namespace) -> int:
    from findings_router.settings.load import load_policy_dir
    from findings_router_local.cve import CveError, cve_command

    policy = None
    policies: dict[str, Policy] = {}
    if args.env is not None:
        directory = config_dir(args)
        policy = load_policy(policy_path(directory, args.env))
        policies = load_policy_dir(directory)
    elif args.config_dir is not None or os.environ.get(CONFIG_DIR_VARIABLE) or LOCAL_CONFIG_DIR.is_dir():
        policies = load_policy_dir(config_dir(args))  # only for the env column: who owns which account
    with _aws_errors("cve"):
        try:
            return cve_command(args, policies=policies, policy=policy)
        except CveError as exc:
            raise UsageError(f"cve: {exc}") from None


@contextlib.contextmanager
def _aws_errors(command: str) -> Iterator[None]:
    from findings_router_local.aws_access import AwsAccessError

    try:
        yield
    except AwsAccessError as exc:
        raise UsageError(f"{command}: {exc}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def _policy_options(command: argparse.ArgumentParser, *, env: bool = True) -> None:
    if env:
        command.add_argument("--env", required=True, help="environment: reads <config-dir>/<env>.yaml (or .yml)")
    command.add_argument(
        "--config-dir",
        type=Path,
        default=None,
        help="policy directory (default: $FINDINGS_ROUTER_CONFIG_DIR, else ./config)",
    )


def _aws_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--profile", help="AWS profile (as the AWS CLI's --profile)")
    command.add_argument("--region", help="default: the policy's region, else your AWS configuration")
    command.add_argument("--endpoint-url", help="send every AWS call here (e.g. a local moto server)")


def _add_replay_parser(sub: Any) -> None:
    replay = sub.add_parser("replay", help="dry-run a policy over exported findings (no AWS calls)")
    _policy_options(replay)
    replay.add_argument(
        "--output",
        "--format",
        dest="format",
        choices=("table", "text", "json", "csv"),
        default="table",
        help="table or text (the same: fitted to the terminal), json (JSON lines) or csv; the summary line goes to "
        "stderr for json and csv",
    )
    replay.add_argument("-q", "--quiet", action="store_true", help="no summary line for json and csv output")
    replay.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr for long inputs (default: when stderr is a terminal)",
    )
    replay.add_argument(
        "--silences",
        type=Path,
        metavar="FILE",
        help="apply these silences (as `silence list --output json` prints them) at each finding's time",
    )
    replay.add_argument(
        "--shadow",
        action="store_true",
        help="decide with the rules marked `shadow: true` too (what shadow mode records); default: the live rules",
    )
    replay.add_argument(
        "files", nargs="+", help="EventBridge events, get-findings output, findings or JSON lines; - for stdin"
    )
    replay.set_defaults(func=_cmd_replay)


def _add_silence_parser(sub: Any) -> None:
    silence = sub.add_parser(
        "silence",
        help="hold back pages of matching findings (or all) for a while, without losing them: add, list, expire",
        description="Silences in a deployed environment's state table (docs/runbook.md).",
        epilog=SILENCE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = silence.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="add a silence", epilog=SILENCE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _policy_options(add)
    _aws_options(add)
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--match", action="append", metavar="FIELD=VALUE", help="a rule's match field and value (repeatable)"
    )
    what.add_argument("--all", action="store_true", help="every finding of the environment: stop paging now")
    end = add.add_mutually_exclusive_group(required=True)
    end.add_argument("--duration", metavar="4h", help="how long: 90m, 4h, 2d, 1h30m")
    end.add_argument("--until", metavar="TIME", help="when it ends: 2026-11-21T18:00Z (or with an offset)")
    add.add_argument("--starts-at", metavar="TIME", help="when it starts (default: now)")
    add.add_argument("--comment", required=True, help="why: a change, an incident, a ticket (required)")
    add.add_argument("--author", help="who (default: your user name)")
    listing = actions.add_parser("list", help="the silences: active, to come, and ended within the retention")
    _policy_options(listing)
    _aws_options(listing)
    listing.add_argument("--output", choices=("table", "json"), default="table")
    expiring = actions.add_parser("expire", help="end a silence now: what it held back pages if still active")
    expiring.add_argument("id", help="the silence's id (silence list)")
    _policy_options(expiring)
    _aws_options(expiring)
    expiring.add_argument("--author", help="who (default: your user name)")
    silence.set_defaults(func=_cmd_silence)


def _add_shadow_report_parser(sub: Any) -> None:
    shadow = sub.add_parser(
        "shadow-report",
        help="what the shadow policy (mode: shadow, rules with shadow: true) would have paged against the live one",
        description="Compare the shadow and live decisions recorded in the state table (docs/configuration.md).",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _policy_options(shadow)
    _aws_options(shadow)
    shadow.add_argument(
        "--since", default="7d", metavar="7d|DATE", help="the period: 7d, 24h, 90m, or a date (default 7d)"
    )
    shadow.add_argument(
        "--output", choices=("table", "json", "csv"), default="table", help="csv: the findings that differ"
    )
    shadow.set_defaults(func=_cmd_shadow_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="findings-router",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_replay_parser(sub)

    demo = sub.add_parser("demo", help="run the real router end to end locally (moto + a local PagerDuty receiver)")
    _policy_options(demo, env=False)
    demo.add_argument(
        "--events-url",
        help="send to this PagerDuty-compatible Events v2 endpoint instead of the built-in receiver",
    )
    demo.add_argument(
        "--target-url",
        action="append",
        default=[],
        metavar="NAME=URL",
        type=_target_url,
        help="send the policy's notifier NAME (a JSM or webhook one) to this URL instead of its built-in stand-in "
        "(repeatable)",
    )
    demo.add_argument(
        "--flaky",
        action="store_true",
        help="the built-in receiver answers 500/429/drops for a while: watch retries deliver every page once",
    )
    demo.add_argument(
        "-v", "--verbose", action="store_true", help="every decision, incident, state and write-back per environment"
    )
    demo.set_defaults(func=_cmd_demo)

    redrive = sub.add_parser("redrive", help="move dead-lettered findings back to the queue once the cause is fixed")
    _policy_options(redrive)
    _aws_options(redrive)
    redrive.add_argument("--max", type=_positive, help="move at most this many messages")
    redrive.add_argument("--dry-run", action="store_true", help="count and list what would move; move nothing")
    redrive.set_defaults(func=_cmd_redrive)

    status = sub.add_parser(
        "status",
        help="what is open now in a deployed environment: episodes, dead letters, queue age, alarms, last page",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _policy_options(status)
    _aws_options(status)
    status.add_argument("--output", choices=("table", "text", "json"), default="table", help="table (= text) or json")
    status.set_defaults(func=_cmd_status)

    explain = sub.add_parser(
        "explain", help="show how the policy decides each finding: every suppression and rule, and why it matched"
    )
    _policy_options(explain)
    explain.add_argument("--output", choices=("text", "json"), default="text")
    explain.add_argument(
        "--silences",
        type=Path,
        metavar="FILE",
        help="silences as `silence list --output json` prints them: shows which hold the finding back",
    )
    explain.add_argument("files", nargs="+", help="findings or events as replay reads them; - for stdin")
    explain.set_defaults(func=_cmd_explain)

    cve = sub.add_parser(
        "cve",
        help="every resource affected by a CVE across the organization (Inspector, Security Hub): the PSIRT report",
        description="Which of our resources are affected by CVE-X? (docs/psirt.md)",
        epilog=CVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cve.add_argument(
        "ids", nargs="+", metavar="ID", help="CVE-YYYY-NNNN (also KB… or GHSA-… ids); - reads ids from stdin"
    )
    cve.add_argument(
        "--env",
        help="environment: only its accounts (<config-dir>/<env>.yaml), its region by default; omitted: every account "
        "(the env column still names each account's environment)",
    )
    _policy_options(cve, env=False)
    _aws_options(cve)
    cve.add_argument(
        "--regions",
        metavar="A,B",
        help="Regions to look in, comma-separated (the Inspector delegated administrator is regional); default: "
        "--region, else the policy's psirt_digest.regions or region, else your AWS configuration",
    )
    cve.add_argument("--output", choices=("table", "json", "csv"), default="table", help="table (default), json or csv")
    cve.add_argument(
        "--since",
        metavar="DATE|7d",
        help="what changed since then: new, changed and (closed in Inspector) fixed; a date, a date and time, or "
        "7d / 24h / 90m",
    )
    cve.add_argument(
        "--source",
        choices=("auto", "inspector", "securityhub"),
        default="auto",
        help="auto (default): Inspector, cross-checked with Security Hub v2, else v1; or one of them alone",
    )
    cve.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress on stderr (default: when stderr is a terminal)",
    )
    cve.set_defaults(func=_cmd_cve)

    _add_silence_parser(sub)
    _add_shadow_report_parser(sub)

    validate = sub.add_parser(
        "validate-config",
        help="check every <config-dir>/*.yaml (and *.yml) policy file as synth does",
        description="Check every <config-dir>/<env>.yaml (and <env>.yml) policy file.",
        epilog=VALIDATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _policy_options(validate, env=False)
    validate.set_defaults(func=_cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PolicyError as exc:  # every command reads policy files: one clear message, exit status 2
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"findings-router: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
