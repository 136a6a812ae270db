"""Builds the CDK app: one `FindingsRouter-<env>` stack per environment, and one `FindingsBaseline-<env>` stack per
environment whose policy has a `baseline:` section (infra/baseline/, docs/baseline.md), with cdk-nag's AwsSolutions
checks on all of them.

Context (``cdk synth -c key=value``):
  env     an environment name (config/<env>.yaml), or several separated by commas; default: every config file.
  bundle  "false" leaves the third-party dependencies out of the function package (fast offline synth for tests
          and reviews; such a package cannot run, never deploy it).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from findings_router.settings.baseline import baseline_of
from findings_router.settings.schema import Policy
from infra.baseline.stack import FindingsBaselineStack
from infra.contract import baseline_stack_name, stack_name
from infra.derived import validate_deployment_config
from infra.packaging import CONFIG_DIR
from infra.stack import FindingsRouterStack

FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class UnknownEnvironmentError(ValueError):
    pass


def select_policies(policies: dict[str, Policy], selection: str | None) -> dict[str, Policy]:
    if not selection:
        return policies
    wanted = [name.strip() for name in selection.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in policies]
    if unknown:
        raise UnknownEnvironmentError(
            f"unknown environment {', '.join(unknown)}: configured are {', '.join(sorted(policies))}"
            " (one config/<env>.yaml each)"
        )
    return {name: policies[name] for name in wanted}


def context_flag(app: App, key: str, default: bool) -> bool:
    value = app.node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in FALSE_WORDS


def stack_environment(policy: Policy) -> Environment:
    """The config file pins account/region when it names them; otherwise the CLI's credentials decide.

    Both unknown (offline synth): an environment-agnostic stack, which is fine to synthesize and review.
    """
    return Environment(
        account=policy.account or os.environ.get("CDK_DEFAULT_ACCOUNT"),
        region=policy.region or os.environ.get("CDK_DEFAULT_REGION"),
    )


def _print_warning(message: str) -> None:
    print(message, file=sys.stderr)


def build(
    app: App,
    *,
    config_dir: Path = CONFIG_DIR,
    environments: str | None = None,
    include_dependencies: bool = True,
    today: dt.date | None = None,
    warn: Callable[[str], None] = _print_warning,
) -> dict[str, FindingsRouterStack]:
    """Add the selected environments' stacks to `app` and run cdk-nag on all of them at synth.

    The config directory gets the checks of `validate-config` (infra.derived.validate_deployment_config): any
    error raises `PolicyError` (file:line: field: …); warnings go to `warn`. An expired suppression is only a warning
    here (`validate-config` fails on it): a date must never block an urgent deploy. `today` defaults to the UTC date.
    """
    if today is None:
        today = dt.datetime.now(dt.UTC).date()
    validation = validate_deployment_config(config_dir, today=today, expired_suppressions="warning")
    for problem in validation.warnings:
        warn(str(problem))
    policies = select_policies(validation.raise_for_errors(), environments)
    stacks = {
        name: FindingsRouterStack(
            app,
            stack_name(name),
            policy=policy,
            include_dependencies=include_dependencies,
            config_dir=config_dir,
            env=stack_environment(policy),
        )
        for name, policy in policies.items()
    }
    build_baselines(app, policies, include_dependencies=include_dependencies, config_dir=config_dir)
    # cdk-nag 3 is a policy-validation plugin: an unacknowledged finding fails `app.synth()` (and `cdk synth`).
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stacks


def build_baselines(
    app: App, policies: dict[str, Policy], *, include_dependencies: bool = True, config_dir: Path = CONFIG_DIR
) -> dict[str, FindingsBaselineStack]:
    """Add `FindingsBaseline-<env>` for each of `policies` with a `baseline:` section (`build` calls it with the
    selected environments; `baseline_stacks` finds them again). Independent of the router stacks: no reference
    between them, so each deploys on its own (the baseline first)."""
    return {
        name: FindingsBaselineStack(
            app,
            baseline_stack_name(name),
            policy=policy,
            baseline=baseline,
            include_dependencies=include_dependencies,
            config_dir=config_dir,
            env=stack_environment(policy),
        )
        for name, policy in policies.items()
        if (baseline := baseline_of(policy)) is not None
    }


def baseline_stacks(app: App) -> dict[str, FindingsBaselineStack]:
    """The baseline stacks `build` added to `app`, by environment."""
    return {child.policy.environment: child for child in app.node.children if isinstance(child, FindingsBaselineStack)}


def build_from_context(app: App) -> dict[str, FindingsRouterStack]:
    return build(
        app,
        environments=app.node.try_get_context("env"),
        include_dependencies=context_flag(app, "bundle", default=True),
    )
