"""What every findings-router Lambda shares: the one code package, Python 3.12 on arm64, its own log group and role.

`LambdaFunction` is the base of the router, the ack receiver and the meta-alert constructs: each is one such
function, set up from the `FunctionSpec` the stack computes from the policy, plus its own grants and triggers. Also
the code asset (`function_code`), the cdk-nag acknowledgement of the pinned runtime and the Security Hub write-back
grant (router and ack receiver).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    Acknowledgment,
    AssetHashType,
    BundlingOptions,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from findings_router.domain.model import Workflow
from infra.contract import securityhub_writeback_condition
from infra.derived import ASYNC_RETRY_ATTEMPTS, DEAD_LETTER_RETENTION_DAYS, LOG_RETENTION_DAYS
from infra.packaging import FUNCTIONS_DIR, FunctionPackage, find_target_python

# BatchUpdateFindings (ASFF) and BatchUpdateFindingsV2 (OCSF) are one IAM action. The Service Authorization Reference
# lists two resource types for it: `hub` (arn:…:hub/default) and `hubv2` (arn:…:hubv2/<HubV2Id>, one per account and
# region, its id generated when the new Security Hub is enabled and not known at synth).
SECURITYHUB_WRITEBACK_ACTION = "securityhub:BatchUpdateFindings"
HUB_V2_RESOURCE_NAME = "*"


@dataclass(frozen=True)
class FunctionSpec:
    """One function's settings, computed from the policy by infra/stack.py.

    `dead_letter_queue_name` is for functions invoked asynchronously: Lambda retries a failed run
    ASYNC_RETRY_ATTEMPTS times, then sends the event to that encrypted queue; `max_event_age_hours` drops (into that
    queue) an event older than that instead of running it late.
    """

    function_name: str
    log_group_name: str
    description: str
    role_description: str
    handler: str
    memory_mb: int
    timeout_seconds: int
    environment: Mapping[str, str]
    # function.log_retention_days: one of derived.LOG_RETENTION_DAYS (deployment_checks refuses any other).
    log_retention_days: int
    # Production: the log group outlives the stack.
    retain_logs: bool
    reserved_concurrency: int | None = None
    dead_letter_queue_name: str | None = None
    max_event_age_hours: int | None = None


@jsii.implements(ILocalBundling)
class _LocalPackageBuilder:
    """CDK local bundling: builds the package in this process instead of a Docker container."""

    def __init__(self, package: FunctionPackage) -> None:
        self._package = package

    # jsii hands the bundling options over positionally or by keyword depending on the caller; neither is needed.
    def try_bundle(self, output_dir: str, *_options: Any, **_keyword_options: Any) -> bool:
        target_python = None
        if self._package.include_dependencies:
            target_python = find_target_python()
            if target_python is None:
                print(
                    "findings-router: no CPython 3.12 found (python3.12, pyenv or FINDINGS_ROUTER_PY312): the "
                    "function package ships sources only, so every cold start compiles them",
                    file=sys.stderr,
                )
        self._package.build(Path(output_dir), target_python=target_python)
        return True


def function_code(package: FunctionPackage, *, environment: str) -> lambda_.Code:
    """The functions' code asset for one environment (`environment`), built from `package`.

    A package with `include_dependencies=False` leaves out the third-party packages (no pip, no network): the stack
    then synthesizes in milliseconds for tests, but such a package cannot run on Lambda.
    """
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        # The package also holds the policy file and the dependencies, which live outside functions/: hash what
        # was built, not the source directory, so a policy change always ships.
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds. This is the image Docker bundling would use.
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
            local=_LocalPackageBuilder(package),
            # Only to tell the environments' bundling runs apart (CDK derives its temporary directory from these).
            environment={
                "FINDINGS_ROUTER_ENVIRONMENT": environment,
                "FINDINGS_ROUTER_DEPENDENCIES": "included" if package.include_dependencies else "left-out",
            },
        ),
    )


def log_retention(days: int) -> logs.RetentionDays:
    """The `logs.RetentionDays` member of a retention period in days (derived.LOG_RETENTION_DAYS)."""
    return logs.RetentionDays[LOG_RETENTION_DAYS[days]]


def function_log_group(
    scope: Construct, construct_id: str, *, name: str, retention_days: int, retain: bool
) -> logs.LogGroup:
    """A function's log group, created by the stack rather than by Lambda on first write: retention and removal
    are ours (function.log_retention_days; retained in production)."""
    return logs.LogGroup(
        scope,
        construct_id,
        log_group_name=name,
        retention=log_retention(retention_days),
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
    )


def acknowledge_pinned_runtime(function: lambda_.Function) -> None:
    """cdk-nag L1 (not the newest Python runtime), on the CfnFunction only: no other resource inherits it."""
    cfn_function = function.node.default_child
    assert cfn_function is not None
    Validations.of(cfn_function).acknowledge(
        Acknowledgment(
            id="AwsSolutions-L1",
            reason=(
                "python3.12 on purpose: the package is built from requirements-lambda.lock, resolved for CPython "
                "3.12 on aarch64 (pydantic-core and PyYAML ship compiled wheels per Python version); a newer "
                "runtime means re-resolving the lock and a deliberate redeploy, not a silent default change."
            ),
        )
    )


def _nag_flatten(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in a finding id (its `flattenCfnReference`)."""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, items = value["Fn::Join"]
        return str(delimiter).join(_nag_flatten(item) for item in items)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{_nag_flatten(value['Ref'])}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        return f"<{_nag_flatten(resource)}.{_nag_flatten(attribute)}>"
    return json.dumps(value, separators=(",", ":"))


def grant_securityhub_writeback(role: iam.Role, *, workflow_status: Workflow | None) -> iam.PolicyStatement:
    """BatchUpdateFindings (V1 and V2) on this account's and region's hubs only, for a note / comment and at most
    `workflow_status` (contract.securityhub_writeback_condition): no severity, types, user-defined fields, etc.

    Findings of member accounts are updated through the administrator's hub, so no other account is named. Which
    account's findings may be updated is not expressible: BatchUpdateFindings has no condition key for it (only
    aws:ResourceTag and the ASFF/OCSF field paths; securityhub:TargetAccount is BatchImportFindings' alone, and the
    finding identifiers are not field paths). Limiting write-back to the environment's `accounts` is the functions'
    job (Policy.in_scope before every update).
    """
    stack = Stack.of(role)
    hub_v2 = stack.format_arn(service="securityhub", resource="hubv2", resource_name=HUB_V2_RESOURCE_NAME)
    statement = iam.PolicyStatement(
        sid="UpdateFindingWorkflow",
        actions=[SECURITYHUB_WRITEBACK_ACTION],
        resources=[stack.format_arn(service="securityhub", resource="hub", resource_name="default"), hub_v2],
        conditions=securityhub_writeback_condition(workflow_status),
    )
    role.add_to_policy(statement)
    default_policy = role.node.find_child("DefaultPolicy").node.default_child
    assert default_policy is not None
    Validations.of(default_policy).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{_nag_flatten(stack.resolve(hub_v2))}]",
            reason=(
                "BatchUpdateFindingsV2 (OCSF findings) is authorized on the account's hubv2 resource, whose ARN "
                "ends in an id generated when the new Security Hub is enabled. There is one hubv2 per account and "
                "region, and this ARN is pinned to the stack's own account and region, so the wildcard matches "
                "exactly that one hub; the action is the single BatchUpdateFindings, and its conditions allow a "
                "note and at most one workflow status, no other finding field."
            ),
        )
    )
    return statement


class LambdaFunction(Construct):
    """One findings-router Lambda and what it needs to run, as children `LogGroup`, `Role`, `Function` (and
    `DeadLetterQueue`): the stack's one package (`code`) on Python 3.12, arm64, set up as `spec` says.

    Its own role instead of AWSLambdaBasicExecutionRole, whose log permissions cover every log group: it may write
    to its own log group and nothing else until the subclass grants more.

    With `spec.dead_letter_queue_name` (functions invoked asynchronously) Lambda retries a failed run
    ASYNC_RETRY_ATTEMPTS times, then sends the event to that encrypted queue (`self.dead_letter_queue`, else None).
    """

    def __init__(self, scope: Construct, construct_id: str, *, spec: FunctionSpec, code: lambda_.Code) -> None:
        super().__init__(scope, construct_id)
        self.log_group = function_log_group(
            self, "LogGroup", name=spec.log_group_name, retention_days=spec.log_retention_days, retain=spec.retain_logs
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=spec.role_description,
        )
        self.dead_letter_queue: sqs.Queue | None = None
        if spec.dead_letter_queue_name is not None:
            self.dead_letter_queue = sqs.Queue(
                self,
                "DeadLetterQueue",
                queue_name=spec.dead_letter_queue_name,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(DEAD_LETTER_RETENTION_DAYS),
            )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=spec.function_name,
            description=spec.description,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=spec.handler,
            code=code,
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            reserved_concurrent_executions=spec.reserved_concurrency,
            environment=dict(spec.environment),
            role=self.role,
            log_group=self.log_group,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=None if self.dead_letter_queue is None else ASYNC_RETRY_ATTEMPTS,
            max_event_age=None if spec.max_event_age_hours is None else Duration.hours(spec.max_event_age_hours),
        )
        acknowledge_pinned_runtime(self.function)
        self.log_group.grant_write(self.role)

    def run_every(
        self, *, rule_name: str, description: str, every: Duration, retry_attempts: int, max_event_age: Duration
    ) -> events.Rule:
        """An EventBridge schedule invoking the function every `every` (the canary, the PSIRT digest, the silence
        sweep): a failed run is retried `retry_attempts` times, and a run that could not start within
        `max_event_age` is dropped (the next one is due)."""
        rule = events.Rule(
            self, "Schedule", rule_name=rule_name, description=description, schedule=events.Schedule.rate(every)
        )
        rule.add_target(
            targets.LambdaFunction(self.function, retry_attempts=retry_attempts, max_event_age=max_event_age)
        )
        return rule
