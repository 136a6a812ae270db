"""What the deployed stack and local mode must agree on, as plain data: no `aws_cdk` import here.

The CDK constructs build the AWS resources from these values, and local mode (moto) creates the same table,
queues and secret from them, so a setting changed here changes both. Everything derives from the environment's
`Policy` (config/<env>.yaml), the same model the router Lambda loads at runtime.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from findings_router.adapters.securityhub import OCSF_STATUS, Workflow
from findings_router.domain.keys import ACK_IDEMPOTENCY_LABEL, KEY_PREFIX, STORM_PREFIX
from findings_router.domain.model import Severity
from findings_router.domain.normalize import SECURITYHUB_SOURCE
from findings_router.settings.load import DirValidation, ExpiredSuppressions, FieldProblem, validate_policy_dir
from findings_router.settings.schema import Policy

APP_NAME = "findings-router"

# ------------------------------------------------------------------------------------------ state table

# Contract with functions/findings_router/store.py (DynamoDedupStore): items are keyed by `pk` and expire via
# the `expires_at` epoch-seconds attribute.
STATE_TABLE_PARTITION_KEY = "pk"
STATE_TABLE_TTL_ATTRIBUTE = "expires_at"

# ------------------------------------------------------------------------------------------ router function

FUNCTION_HANDLER = "findings_router.entrypoints.route_findings.lambda_handler"
LAMBDA_TASK_ROOT = "/var/task"
# Inside the function package the validated policy sits at config/<env>.json, next to the code (see policy_json).
PACKAGED_CONFIG_DIR = "config"
POWERTOOLS_SERVICE_NAME = APP_NAME
METRICS_NAMESPACE = "FindingsRouter"
# Custom metrics the handler emits (Powertools EMF) with dimensions service + environment; shown on the dashboard.
ROUTING_METRICS = ("Pages", "Notifications", "Resolves", "Duplicates", "Drops", "Errors")

# CloudWatch Logs accepts only these retention periods (days); the config model allows any positive number.
LOG_RETENTION_DAYS_ALLOWED = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

# ------------------------------------------------------------------------------------------ ingestion

DETAIL_TYPE_IMPORTED = "Security Hub Findings - Imported"
DETAIL_TYPE_CUSTOM_ACTION = "Security Hub Findings - Custom Action"
DETAIL_TYPE_IMPORTED_V2 = "Findings Imported V2"

# AWS: "set the source queue's visibility timeout to at least six times the timeout of your function", so a
# batch whose invocation is throttled or retried is not handed to a second invocation while the first still runs.
VISIBILITY_TIMEOUT_FACTOR = 6
QUEUE_RETENTION_DAYS = 4
# Longer than the source queue's retention: a standard queue's DLQ keeps the original enqueue timestamp, so a
# shorter DLQ retention would delete dead letters before anyone looked at them.
DEAD_LETTER_RETENTION_DAYS = 14
SECONDS_PER_DAY = 86_400

# OCSF severity_id → our label, as findings_router.normalize reads it: 0 Unknown and 99 Other count as
# informational (normalize also falls back to the `severity` name, matched below too).
OCSF_SEVERITY_IDS: dict[Severity, tuple[int, ...]] = {
    Severity.INFORMATIONAL: (0, 1, 99),
    Severity.LOW: (2,),
    Severity.MEDIUM: (3,),
    Severity.HIGH: (4,),
    Severity.CRITICAL: (5, 6),
}
OCSF_SEVERITY_NAMES: dict[Severity, tuple[str, ...]] = {
    Severity.INFORMATIONAL: ("informational",),
    Severity.LOW: ("low",),
    Severity.MEDIUM: ("medium",),
    Severity.HIGH: ("high",),
    Severity.CRITICAL: ("critical", "fatal"),
}

# A finding Security Hub considers gone (findings_router.model.Finding.is_resolved). These must pass any severity
# pre-filter: without them a paged incident is never resolved.
ASFF_RESOLUTION_CONDITIONS: tuple[dict[str, Any], ...] = (
    {"RecordState": ["ARCHIVED"]},
    {"Compliance": {"Status": ["PASSED"]}},
    {"Workflow": {"Status": ["RESOLVED", "SUPPRESSED"]}},
    # Retired field that normalize still reads when Workflow.Status is absent.
    {"WorkflowState": ["RESOLVED"]},
)
OCSF_RESOLUTION_CONDITIONS: tuple[dict[str, Any], ...] = (
    {"status_id": [3, 4, 5]},  # Suppressed, Resolved, Archived
    {"activity_id": [3]},  # Close
    {"compliance": {"status_id": [1]}},  # Pass
    {"compliance": {"status": [{"equals-ignore-case": "pass"}, {"equals-ignore-case": "passed"}]}},
)


# ------------------------------------------------------------------------------------------ ack receiver

# functions/findings_router/ack_handler.py: one module, one entry point per acknowledgements.mode.
ACK_HANDLERS = {
    "function_url": "findings_router.entrypoints.receive_acks.function_url_handler",
    "eventbridge": "findings_router.entrypoints.receive_acks.eventbridge_handler",
}
# The handler's route (ack_handler.WEBHOOK_PATH) relative to the Function URL, which always ends in "/".
ACK_WEBHOOK_PATH = "webhooks/pagerduty"
# PagerDuty gives up on a delivery that has not answered 2xx within 5 s (and retries it); a webhook either
# finishes well inside that or is better abandoned and retried than left running.
ACK_TIMEOUT_SECONDS = 10
ACK_MEMORY_MB = 256
# PagerDuty's EventBridge integration: events on the partner event bus, sources aws.partner/pagerduty.com/<name>.
PAGERDUTY_PARTNER_SOURCE_PREFIX = "aws.partner/pagerduty.com/"
PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE = "PagerDuty Webhook"
# EventBridge → Lambda delivery: EventBridge's own retries (its maxima, stated explicitly), then the target's DLQ.
EVENT_TARGET_RETRY_ATTEMPTS = 185
EVENT_TARGET_MAX_EVENT_AGE_HOURS = 24

# ------------------------------------------------------------------------------------------ meta-alerts

META_ALERT_HANDLER = "findings_router.entrypoints.page_alarms.lambda_handler"
META_ALERT_MEMORY_MB = 256
# Room beyond the notifier's retry budget and one request timeout: cold start and the secret lookup.
META_ALERT_TIMEOUT_MARGIN_SECONDS = 15
# Lambda's asynchronous invocations (SNS, EventBridge): retries after a failed run before the function's DLQ.
ASYNC_RETRY_ATTEMPTS = 2
# A meta-alert older than this is not sent out of order (a late trigger could re-open an alarm that is OK by
# now); it waits in the DLQ for a person instead.
META_ALERT_MAX_EVENT_AGE_HOURS = 1


def stack_name(environment: str) -> str:
    return f"FindingsRouter-{environment}"


@dataclass(frozen=True)
class ResourceNames:
    """Physical names, the same in every account, so runbooks and local mode can name things directly.

    The environment is part of each name: two environments may share an account and region. IAM roles keep
    generated names because role names are global and one environment may be deployed in several regions.
    """

    state_table: str
    queue: str
    dead_letter_queue: str
    function: str
    log_group: str
    rule: str
    alarm_topic: str
    dashboard: str
    alarm_prefix: str
    routing_key_secret: str
    # The ack receiver (acknowledgements.mode function_url or eventbridge).
    ack_function: str
    ack_log_group: str
    ack_rule: str
    ack_dead_letter_queue: str
    # Meta-alerts: findings-router's own alarms to PagerDuty.
    meta_alert_function: str
    meta_alert_log_group: str
    meta_alert_dead_letter_queue: str
    # Alarms about the meta-alert path itself: email only, never back into the meta-alert function.
    meta_alarm_topic: str


def resource_names(policy: Policy) -> ResourceNames:
    prefix = f"{APP_NAME}-{policy.environment}"
    function = f"{prefix}-router"
    ack_function = f"{prefix}-ack-receiver"
    meta_alert_function = f"{prefix}-meta-alerts"
    return ResourceNames(
        state_table=f"{prefix}-state",
        queue=f"{prefix}-findings",
        dead_letter_queue=f"{prefix}-findings-dlq",
        function=function,
        log_group=f"/aws/lambda/{function}",
        rule=f"{prefix}-securityhub-findings",
        alarm_topic=f"{prefix}-alarms",
        dashboard=prefix,
        alarm_prefix=prefix,
        routing_key_secret=policy.notifier.routing_key_secret,
        ack_function=ack_function,
        ack_log_group=f"/aws/lambda/{ack_function}",
        ack_rule=f"{prefix}-pagerduty-acks",
        ack_dead_letter_queue=f"{prefix}-ack-dlq",
        meta_alert_function=meta_alert_function,
        meta_alert_log_group=f"/aws/lambda/{meta_alert_function}",
        meta_alert_dead_letter_queue=f"{prefix}-meta-alerts-dlq",
        meta_alarm_topic=f"{prefix}-meta-alarms",
    )


# ------------------------------------------------------------------------------------------ event pattern

# EventBridge's default quota for the size of an event pattern, in characters (adjustable to 4096 on request).
EVENT_PATTERN_MAX_CHARS = 2048
# The longest ARN Security Hub can give this stack's action target (partition, region and account at their longest),
# used to size the pattern at synth: the deployed pattern holds the real ARN, resolved by CloudFormation.
_LONGEST_ACTION_TARGET_ARN_PREFIX = "arn:aws-iso-b:securityhub:ap-southeast-5:123456789012:action/custom/"


def action_target_arn(action_id: str, *, region: str, account: str, partition: str = "aws") -> str:
    """The ARN of a Security Hub custom action target (`AWS::SecurityHub::ActionTarget`), the value Security Hub puts
    in `resources` of the action's `Security Hub Findings - Custom Action` events."""
    return f"arn:{partition}:securityhub:{region}:{account}:action/custom/{action_id}"


def action_target_properties(policy: Policy) -> dict[str, str] | None:
    """`AWS::SecurityHub::ActionTarget` properties of the environment's own custom action; None without one.

    The console lists the action by its Name (Security Hub: at most 20 characters) under Actions, with the
    Description next to it: both say what choosing it does, for which environment.
    """
    action = policy.custom_action
    if action is None:
        return None
    env = policy.environment
    verb = {"page": "Page", "notify": "Notify", "policy": "Send to"}[action.mode]
    # "Page on-call prod"; an environment name too long for that keeps its name and drops "on-call".
    name = next(n for n in (f"{verb} on-call {env}", f"{verb} {env}", f"{verb} on-call") if len(n) <= 20)
    effect = {
        "page": f"findings-router: pages the {env} on-call engineer in PagerDuty (high urgency) for each selected "
        "active finding, whatever its severity or the policy rules.",
        "notify": f"findings-router: notifies the {env} on-call engineer in PagerDuty at low urgency (no page) for "
        "each selected active finding, whatever its severity or the policy rules.",
        "policy": f"findings-router: sends the selected findings to the {env} routing policy, whose rules decide "
        "whether on-call is paged, notified or not told.",
    }[action.mode]
    scope = "" if policy.all_accounts else f" Ignores findings of accounts outside {env}."
    return {"Id": action.id, "Name": name, "Description": effect + scope}


def _severity_conditions_asff(labels: list[Severity]) -> list[dict[str, Any]]:
    return [{"Severity": {"Label": [label.value for label in labels]}}]


def _severity_conditions_ocsf(labels: list[Severity]) -> list[dict[str, Any]]:
    ids = sorted({i for label in labels for i in OCSF_SEVERITY_IDS[label]})
    names = [name for label in labels for name in OCSF_SEVERITY_NAMES[label]]
    return [
        {"severity_id": ids},
        {"severity": [{"equals-ignore-case": name} for name in names]},
    ]


def _accounts(policy: Policy) -> list[str] | None:
    # Sorted so the synthesized template does not change with the order of accounts in the YAML file.
    return None if policy.all_accounts else sorted(policy.accounts)


def detail_types(policy: Policy) -> list[str]:
    types = [DETAIL_TYPE_IMPORTED]
    if policy.custom_action is not None:
        types.append(DETAIL_TYPE_CUSTOM_ACTION)
    if policy.ingestion.include_ocsf:
        types.append(DETAIL_TYPE_IMPORTED_V2)
    return types


def _branch(detail_type: str, findings: dict[str, Any], **top_level: list[Any]) -> dict[str, Any]:
    branch: dict[str, Any] = {"detail-type": [detail_type], **top_level}
    if findings:
        branch["detail"] = {"findings": findings}
    return branch


def event_pattern(policy: Policy, *, action_target_arn: str | None = None) -> dict[str, Any]:
    """The EventBridge pattern of the ingestion rule (default bus).

    Only findings of the environment's `accounts` pass: ASFF `AwsAccountId`, OCSF `cloud.account.uid` (no condition
    for ["*"]). With `ingestion.severity_labels`, such a finding must also have one of those labels *or* be a
    resolution (archived, PASSED, RESOLVED/SUPPRESSED, OCSF equivalents), so incidents still resolve. Custom Action
    events pass only for the environment's own action target (`action_target_arn`, required when the policy has
    `custom_action`) and whatever their severity: an operator sent them by hand. Without `custom_action` no Custom
    Action event passes. Insight Results and other detail-types never match: they carry no findings.

    Matching descends into the `detail.findings` array: an object pattern matches when one element matches all of
    it ("array consistency", Event Ruler's `rulesForJSONEvent`), so the account and the label or resolution must be
    those of the same finding. `$or` compiles into one sub-pattern per branch (nested `$or`s multiply), and needs at
    least two branches: a single remaining branch is written without it.

    The action target is matched by its exact ARN, not by a `suffix` on `:action/custom/<id>`: the rule is on this
    account's and region's default bus, where only this stack's action target has that ARN, while a suffix would
    also admit the same id's events forwarded from another account's or region's bus. The ARN is an argument so
    this stays plain data: the stack passes CloudFormation's value for its action target, tests a literal ARN.
    """
    accounts = _accounts(policy)
    labels = policy.ingestion.severity_labels
    # Sorted so the synthesized template does not change with the order of labels in the YAML file.
    ordered = sorted(set(labels), key=lambda s: s.rank) if labels else []
    asff_account: dict[str, Any] = {"AwsAccountId": accounts} if accounts else {}
    ocsf_account: dict[str, Any] = {"cloud": {"account": {"uid": accounts}}} if accounts else {}

    imported = dict(asff_account)
    if ordered:
        imported["$or"] = [*_severity_conditions_asff(ordered), *ASFF_RESOLUTION_CONDITIONS]
    branches = [_branch(DETAIL_TYPE_IMPORTED, imported)]
    if policy.custom_action is not None:
        if action_target_arn is None:
            raise ValueError("the policy has a custom_action: event_pattern needs its action_target_arn")
        branches.append(_branch(DETAIL_TYPE_CUSTOM_ACTION, dict(asff_account), resources=[action_target_arn]))
    if policy.ingestion.include_ocsf:
        imported_v2 = dict(ocsf_account)
        if ordered:
            imported_v2["$or"] = [*_severity_conditions_ocsf(ordered), *OCSF_RESOLUTION_CONDITIONS]
        branches.append(_branch(DETAIL_TYPE_IMPORTED_V2, imported_v2))

    # Branches that only name a detail-type (no account or severity condition) are one branch.
    plain = [b for b in branches if set(b) == {"detail-type"}]
    conditioned = [b for b in branches if set(b) != {"detail-type"}]
    if plain:
        conditioned.insert(0, {"detail-type": [t for b in plain for t in b["detail-type"]]})
    if len(conditioned) == 1:
        return {"source": [SECURITYHUB_SOURCE], **conditioned[0]}
    return {"source": [SECURITYHUB_SOURCE], "$or": conditioned}


def event_pattern_size(policy: Policy) -> int:
    """Characters of the deployed pattern at most (JSON with spaces; the action target's ARN at its longest)."""
    arn = None
    if policy.custom_action is not None:
        arn = _LONGEST_ACTION_TARGET_ARN_PREFIX + policy.custom_action.id
    return len(json.dumps(event_pattern(policy, action_target_arn=arn)))


# ------------------------------------------------------------------------------------------ queues


@dataclass(frozen=True)
class QueueSettings:
    visibility_timeout_seconds: int
    retention_seconds: int
    dead_letter_retention_seconds: int
    max_receive_count: int
    batch_size: int
    # Lambda allows batches above 10 SQS messages only with a batching window; 0 means none (lowest latency).
    batching_window_seconds: int
    # SQS event source maximum concurrency (2–1000), or None when reserved concurrency is below its minimum.
    max_concurrency: int | None

    def queue_attributes(self, dead_letter_queue_arn: str) -> dict[str, str]:
        """SQS CreateQueue attributes of the findings queue (local mode uses these with moto)."""
        return {
            "VisibilityTimeout": str(self.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(self.retention_seconds),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": self.max_receive_count}
            ),
        }

    def dead_letter_queue_attributes(self) -> dict[str, str]:
        return {
            "MessageRetentionPeriod": str(self.dead_letter_retention_seconds),
            "SqsManagedSseEnabled": "true",
        }


SQS_EVENT_SOURCE_MIN_CONCURRENCY = 2
SQS_BATCH_SIZE_WITHOUT_WINDOW = 10


def queue_settings(policy: Policy) -> QueueSettings:
    reserved = policy.function.reserved_concurrency
    window = 1 if policy.ingestion.batch_size > SQS_BATCH_SIZE_WITHOUT_WINDOW else 0
    return QueueSettings(
        # AWS adds the batching window to the six function timeouts.
        visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * policy.function.timeout_seconds + window,
        retention_seconds=QUEUE_RETENTION_DAYS * SECONDS_PER_DAY,
        dead_letter_retention_seconds=DEAD_LETTER_RETENTION_DAYS * SECONDS_PER_DAY,
        max_receive_count=policy.ingestion.max_receive_count,
        batch_size=policy.ingestion.batch_size,
        batching_window_seconds=window,
        # Pollers never start more invocations than the function may run, so messages are not throttled back
        # to the queue (each throttled receive counts towards maxReceiveCount and can dead-letter good messages).
        max_concurrency=reserved if reserved >= SQS_EVENT_SOURCE_MIN_CONCURRENCY else None,
    )


# ------------------------------------------------------------------------------------------ function


def packaged_policy_path(policy: Policy) -> str:
    """Where the environment's policy file is inside the function package, relative to the package root."""
    return f"{PACKAGED_CONFIG_DIR}/{policy.environment}.json"


def _base_environment(policy: Policy, table_name: str) -> dict[str, str]:
    return {
        "POLICY_FILE": f"{LAMBDA_TASK_ROOT}/{packaged_policy_path(policy)}",
        "STATE_TABLE_NAME": table_name,
        "POWERTOOLS_SERVICE_NAME": POWERTOOLS_SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    }


def function_environment(policy: Policy, table_name: str, *, dead_letter_queue_url: str) -> dict[str, str]:
    """The router's environment variables. Non-secret only: the routing key is read from Secrets Manager.

    `DEAD_LETTER_QUEUE_URL` is the ingestion dead-letter queue (`ResourceNames.dead_letter_queue`): the router parks a
    message whose delivery failed permanently there at once, instead of letting it be received
    `ingestion.max_receive_count` times first.
    """
    return {**_base_environment(policy, table_name), "DEAD_LETTER_QUEUE_URL": dead_letter_queue_url}


def ack_handler(policy: Policy) -> str | None:
    """The ack receiver's handler for the environment's acknowledgements.mode; None when there is no receiver."""
    return ACK_HANDLERS.get(policy.acknowledgements.mode)


def ack_function_environment(policy: Policy, table_name: str) -> dict[str, str]:
    """The ack receiver's environment: the router's (same policy file, same table, same metrics namespace) but for
    the dead-letter queue, which only the router writes to.

    The dedup state and Powertools' idempotency records share the table (key `pk`, expiry `expires_at`).
    """
    return _base_environment(policy, table_name)


# ------------------------------------------------------------------------------------------ Security Hub write-back

# securityhub:BatchUpdateFindings authorizes BatchUpdateFindings (ASFF) and BatchUpdateFindingsV2 (OCSF). Its condition
# keys (Service Authorization Reference, AWS Security Hub) are `securityhub:ASFFSyntaxPath/<ASFF field>` and
# `securityhub:OCSFSyntaxPath/<field>` (SeverityId, StatusId, Comment), "the specified fields and values in the
# request", type String; a `Null` condition tests whether the request sets a field (user guide "BatchUpdateFindings
# for customers"; API reference BatchUpdateFindingsV2). Field paths as AWS's own managed policy
# AWSSystemsManagerOpsDataSyncServiceRolePolicy (v2) writes them.
ASFF_KEY = "securityhub:ASFFSyntaxPath/"
OCSF_KEY = "securityhub:OCSFSyntaxPath/"
ASFF_WORKFLOW_STATUS = "Workflow.Status"
OCSF_STATUS_ID = "StatusId"
# Every other field customers can update (ASFF: Confidence, Criticality, Note, RelatedFindings, Severity, Types,
# UserDefinedFields, VerificationState, Workflow; OCSF: Comment, SeverityId, StatusId). The functions write only
# the note / comment and, depending on the function, one workflow status.
ASFF_FIELDS_NEVER_WRITTEN = (
    "Confidence",
    "Criticality",
    "RelatedFindings",
    "Severity.Label",
    "Severity.Normalized",
    "Severity.Product",
    "Types",
    "UserDefinedFields.key",
    "UserDefinedFields.value",
    "VerificationState",
)
OCSF_FIELDS_NEVER_WRITTEN = ("SeverityId",)


def securityhub_writeback_condition(workflow_status: Workflow | None) -> dict[str, dict[str, str]]:
    """The IAM condition of a BatchUpdateFindings grant that lets a function write a note (ASFF `Note`, OCSF
    `Comment`) and, when `workflow_status` is given, that one workflow status (ASFF `Workflow.Status`, OCSF `StatusId`
    as findings_router.securityhub maps it), and nothing else.

    In an Allow statement: every key of one operator must hold, so `Null: "true"` on each other field means "the
    request sets none of them"; `StringEqualsIfExists` lets a note-only request through and pins the status when
    one is set. (The user guide writes the same restriction as one Deny statement per field with `Null: "false"`.)
    """
    forbidden = [ASFF_KEY + field for field in ASFF_FIELDS_NEVER_WRITTEN]
    forbidden += [OCSF_KEY + field for field in OCSF_FIELDS_NEVER_WRITTEN]
    if workflow_status is None:
        forbidden += [ASFF_KEY + ASFF_WORKFLOW_STATUS, OCSF_KEY + OCSF_STATUS_ID]
    condition: dict[str, dict[str, str]] = {"Null": {key: "true" for key in forbidden}}
    if workflow_status is not None:
        condition["StringEqualsIfExists"] = {
            ASFF_KEY + ASFF_WORKFLOW_STATUS: workflow_status,
            OCSF_KEY + OCSF_STATUS_ID: str(OCSF_STATUS[workflow_status]),
        }
    return condition


# The router marks the findings it paged NOTIFIED (a notification gets a note only).
ROUTER_WORKFLOW_STATUS: Workflow = "NOTIFIED"


def ack_workflow_status(policy: Policy) -> Workflow | None:
    """The ack receiver resolves findings only with securityhub.resolve_workflow_on_operator_resolve."""
    return "RESOLVED" if policy.securityhub.resolve_workflow_on_operator_resolve else None


# ------------------------------------------------------------------------------------------ state table keys

# The dedup state's items: `fr1-` and a hash (findings_router.dedup.dedup_key); the storm counters, which only the
# router reads and writes, are `fr1-storm-…` (findings_router.storm.storm_key). IAM `StringLike` patterns of
# `dynamodb:LeadingKeys` (`*` matches any run of characters).
STATE_KEY_PATTERN = f"{KEY_PREFIX}*"
STORM_KEY_PATTERN = f"{STORM_PREFIX}*"
# Powertools' idempotency records (DynamoDBPersistenceLayer with the default key layout): the partition key is
# "<AWS_LAMBDA_FUNCTION_NAME>.<module>.<qualname>#<hash of the idempotency key>" of the function wrapped by
# `idempotent_function` (aws_lambda_powertools/utilities/idempotency/persistence/base.py: `configure` and
# `_get_hashed_idempotency_key`; base.py passes f"{function.__module__}.{function.__qualname__}"). In
# findings_router.ack_handler that function is `process`, defined inside `get_runtime`.
ACK_IDEMPOTENT_FUNCTION = ACK_IDEMPOTENCY_LABEL


def ack_idempotency_key_pattern(names: ResourceNames) -> str:
    """`dynamodb:LeadingKeys` pattern of the ack receiver's idempotency records (only its own function's)."""
    return f"{names.ack_function}.{ACK_IDEMPOTENT_FUNCTION}#*"


def ack_event_pattern() -> dict[str, Any]:
    """The rule on the PagerDuty partner event bus: PagerDuty's webhook events, nothing else."""
    return {
        "source": [{"prefix": PAGERDUTY_PARTNER_SOURCE_PREFIX}],
        "detail-type": [PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE],
    }


def meta_alert_environment(policy: Policy) -> dict[str, str]:
    """The meta-alert function needs only the policy file (notifier settings and the routing key's secret)."""
    return {"POLICY_FILE": f"{LAMBDA_TASK_ROOT}/{packaged_policy_path(policy)}"}


def meta_alert_timeout_seconds(policy: Policy) -> int:
    """Long enough for the notifier's whole retry budget plus one last request, so a page is never cut off."""
    retry = policy.notifier.retry
    return math.ceil(retry.budget_seconds + retry.timeout_seconds) + META_ALERT_TIMEOUT_MARGIN_SECONDS


def state_table_definition(table_name: str) -> dict[str, Any]:
    """DynamoDB CreateTable parameters of the state table (local mode uses these with moto)."""
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": STATE_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": STATE_TABLE_PARTITION_KEY, "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def state_table_ttl_specification() -> dict[str, Any]:
    """DynamoDB UpdateTimeToLive `TimeToLiveSpecification` of the state table."""
    return {"AttributeName": STATE_TABLE_TTL_ATTRIBUTE, "Enabled": True}


def _partial_secret_arn(secret: str | None) -> bool:
    # IAM matches the ARN literally: a partial ARN (without the random suffix) would be denied at runtime.
    return bool(secret and secret.startswith("arn:") and not re.search(r":secret:.+-[A-Za-z0-9]{6}$", secret))


def deployment_checks(policy: Policy) -> list[FieldProblem]:
    """Settings the config model accepts but AWS would reject at deploy time (or that would fail at runtime).

    One of the checks of `validate_deployment_config`, so `validate-config` and synth report them alike, with the
    file, line and field. The function package has no infra code: what it ships passed these at synth.
    """
    problems = []
    acks = policy.acknowledgements
    for loc, secret in (
        (("notifier", "routing_key_secret"), policy.notifier.routing_key_secret),
        (("acknowledgements", "signing_secret"), acks.signing_secret),
        (("acknowledgements", "rest_api_token_secret"), acks.rest_api_token_secret),
    ):
        if _partial_secret_arn(secret):
            problems.append(
                FieldProblem(
                    loc, "an ARN must be the secret's complete ARN (ending in -XXXXXX); or give the secret's name"
                )
            )
    if acks.mode != "none" and acks.rest_api_token_secret and not acks.rest_api_url.startswith("https://"):
        # The ack receiver sends the REST API key in a header to this URL.
        problems.append(
            FieldProblem(("acknowledgements", "rest_api_url"), f"{acks.rest_api_url} must be an https:// URL")
        )
    days = policy.function.log_retention_days
    if days not in LOG_RETENTION_DAYS_ALLOWED:
        allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS_ALLOWED)
        problems.append(
            FieldProblem(
                ("function", "log_retention_days"), f"{days} is not a CloudWatch Logs retention period ({allowed})"
            )
        )
    size = event_pattern_size(policy)
    if size > EVENT_PATTERN_MAX_CHARS:
        # Each account id appears once per finding type (ASFF, custom action, OCSF) in the ingestion rule's pattern.
        problems.append(
            FieldProblem(
                ("accounts",),
                f"{len(policy.accounts)} accounts make the ingestion rule's event pattern {size} characters, "
                f"above EventBridge's {EVENT_PATTERN_MAX_CHARS}-character quota: list fewer accounts (split the "
                "environment), or drop ingestion.severity_labels or ingestion.include_ocsf",
            )
        )
    return problems


def deployment_problems(policy: Policy) -> list[str]:
    """`deployment_checks` as ``field: message`` lines (no file or line: for a `Policy` not read from a file)."""
    return [str(problem) for problem in deployment_checks(policy)]


def validate_deployment_config(
    config_dir: str | Path, *, today: dt.date | None, expired_suppressions: ExpiredSuppressions
) -> DirValidation:
    """Every check of a config directory that synth makes, with file:line: field: the policy model, the checks across
    files, `deployment_checks` and, given `today`, the suppressions' expiry. `validate-config` runs exactly this with
    `expired_suppressions="error"` (CI fails), synth with `"warning"` (a date never blocks an urgent deploy)."""
    return validate_policy_dir(
        config_dir, today=today, expired_suppressions=expired_suppressions, checks=(deployment_checks,)
    )
