"""What the deployed stack, local mode and the functions must agree on, as plain data: no `aws_cdk` import here.

Names, the state table's schema and keys, the functions' handlers and environment variables, and what each function
may write back to Security Hub. The CDK constructs build the AWS resources from these values, and local mode (moto)
creates the same table, queues and secret from them, so a setting changed here changes both. Everything derives from
the environment's `Policy` (config/<env>.yaml), the same model the router Lambda loads at runtime.

Its CDK-free siblings: infra/event_patterns.py (the EventBridge patterns) and infra/derived.py (queue settings,
timeouts, retention, and the checks synth and `validate-config` make).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from findings_router.adapters.securityhub import OCSF_STATUS
from findings_router.adapters.silences import SILENCE_ATTRIBUTE
from findings_router.adapters.state_table import INDEX_PARTITION_KEY, INDEX_PROJECTED, INDEX_SORT_KEY, TIME_INDEX
from findings_router.domain.keys import ACK_IDEMPOTENCY_LABEL, KEY_PREFIX, SILENCE_PREFIX, STORM_PREFIX
from findings_router.domain.model import Workflow
from findings_router.settings.schema import Policy

APP_NAME = "findings-router"

# ------------------------------------------------------------------------------------------ state table

# Contract with functions/findings_router/adapters/state_table.py (DynamoDedupStore): items are keyed by `pk` and expire via
# the `expires_at` epoch-seconds attribute.
STATE_TABLE_PARTITION_KEY = "pk"
STATE_TABLE_TTL_ATTRIBUTE = "expires_at"
# Its one global secondary index (adapters/state_table.py TIME_INDEX): sparse, the silences and the episodes owing a
# page a silence held back, by time; the silence's JSON and the episode's `silenced_by` projected.
STATE_TABLE_TIME_INDEX = TIME_INDEX
STATE_TABLE_INDEX_KEYS = (INDEX_PARTITION_KEY, INDEX_SORT_KEY)
STATE_TABLE_INDEX_PROJECTED = (*INDEX_PROJECTED, SILENCE_ATTRIBUTE)

# ------------------------------------------------------------------------------------------ router function

FUNCTION_HANDLER = "findings_router.entrypoints.route_findings.lambda_handler"
LAMBDA_TASK_ROOT = "/var/task"
# Inside the function package the validated policy sits at config/<env>.json, next to the code (see policy_json).
PACKAGED_CONFIG_DIR = "config"
POWERTOOLS_SERVICE_NAME = APP_NAME
METRICS_NAMESPACE = "FindingsRouter"
# Custom metrics the handler emits (Powertools EMF) with dimensions service + environment; shown on the dashboard.
ROUTING_METRICS = ("Pages", "Notifications", "Resolves", "Duplicates", "Drops", "Errors")

# ------------------------------------------------------------------------------------------ ack receiver

# functions/findings_router/entrypoints/receive_acks.py: one module, one entry point per acknowledgements.mode.
ACK_HANDLERS = {
    "function_url": "findings_router.entrypoints.receive_acks.function_url_handler",
    "eventbridge": "findings_router.entrypoints.receive_acks.eventbridge_handler",
}
# The handler's route (entrypoints/receive_acks.py WEBHOOK_PATH) relative to the Function URL, which always ends in "/".
ACK_WEBHOOK_PATH = "webhooks/pagerduty"
ACK_JSM_WEBHOOK_PATH = "webhooks/jsm"  # entrypoints/receive_acks.py JSM_WEBHOOK_PATH

# ------------------------------------------------------------------------------------------ meta-alerts

META_ALERT_HANDLER = "findings_router.entrypoints.page_alarms.lambda_handler"

# ------------------------------------------------------------------------------------------ the pager's pager

CANARY_HANDLER = "findings_router.entrypoints.run_canary.lambda_handler"
PSIRT_DIGEST_HANDLER = "findings_router.entrypoints.psirt_digest.lambda_handler"
SILENCE_SWEEP_HANDLER = "findings_router.entrypoints.sweep_silences.lambda_handler"
# Metrics the alarms watch (functions/findings_router/entrypoints/: observability.CANARY_COMPLETED_METRIC,
# route_findings.FINDINGS_RECEIVED_METRIC, receive_acks' AcksRejected); tests/infra checks they are the same names.
CANARY_COMPLETED_METRIC = "CanaryCompleted"
FINDINGS_RECEIVED_METRIC = "FindingsReceived"
ACKS_REJECTED_METRIC = "AcksRejected"


def stack_name(environment: str) -> str:
    return f"FindingsRouter-{environment}"


# ------------------------------------------------------------------------------------------ the baseline stack

# The environment's security services (config/<env>.yaml `baseline:`; infra/baseline/, docs/baseline.md): a stack of
# its own, deployed before the router's and independent of it.
BASELINE_HANDLERS = {
    "preflight": "findings_router.baseline.preflight.lambda_handler",
    "guardduty": "findings_router.baseline.guardduty.lambda_handler",
    "securityhub": "findings_router.baseline.securityhub.lambda_handler",
    "config": "findings_router.baseline.config_recorder.lambda_handler",
    "inspector": "findings_router.baseline.inspector.lambda_handler",
    "cloudtrail": "findings_router.baseline.cloudtrail.lambda_handler",
}


def baseline_stack_name(environment: str) -> str:
    return f"FindingsBaseline-{environment}"


@dataclass(frozen=True)
class BaselineNames:
    """Physical names of the baseline stack's custom resource functions (one per service handler, each with its own
    role) and of what `manage` creates with a name."""

    prefix: str
    functions: dict[str, str]
    log_groups: dict[str, str]
    trail: str
    config_recorder: str
    delivery_channel: str


def baseline_names(environment: str) -> BaselineNames:
    prefix = f"{APP_NAME}-{environment}-baseline"
    functions = {service: f"{prefix}-{service}" for service in BASELINE_HANDLERS}
    return BaselineNames(
        prefix=prefix,
        functions=functions,
        log_groups={service: f"/aws/lambda/{name}" for service, name in functions.items()},
        trail=f"{APP_NAME}-{environment}",
        config_recorder=f"{APP_NAME}-{environment}",
        delivery_channel=f"{APP_NAME}-{environment}",
    )


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
    # The canary (canary.enabled): a scheduled function importing the synthetic finding.
    canary_function: str
    canary_log_group: str
    canary_schedule: str
    # The PSIRT digest (psirt_digest.enabled): a scheduled function reading Inspector.
    psirt_digest_function: str
    psirt_digest_log_group: str
    psirt_digest_schedule: str
    # The silence sweep: a scheduled function paging what a silence held back once it ends.
    silence_sweep_function: str
    silence_sweep_log_group: str
    silence_sweep_schedule: str


def resource_names(policy: Policy) -> ResourceNames:
    prefix = f"{APP_NAME}-{policy.environment}"
    function = f"{prefix}-router"
    ack_function = f"{prefix}-ack-receiver"
    meta_alert_function = f"{prefix}-meta-alerts"
    canary_function = f"{prefix}-canary"
    psirt_digest_function = f"{prefix}-psirt-digest"
    silence_sweep_function = f"{prefix}-silence-sweep"
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
        canary_function=canary_function,
        canary_log_group=f"/aws/lambda/{canary_function}",
        canary_schedule=f"{prefix}-canary-schedule",
        psirt_digest_function=psirt_digest_function,
        psirt_digest_log_group=f"/aws/lambda/{psirt_digest_function}",
        psirt_digest_schedule=f"{prefix}-psirt-digest-schedule",
        silence_sweep_function=silence_sweep_function,
        silence_sweep_log_group=f"/aws/lambda/{silence_sweep_function}",
        silence_sweep_schedule=f"{prefix}-silence-sweep-schedule",
    )


# ------------------------------------------------------------------------------------------ function environments


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


# acknowledgements.mode eventbridge with JSM's webhooks: one function behind both front doors.
ACK_HANDLER_BOTH = "findings_router.entrypoints.receive_acks.lambda_handler"


def ack_handler(policy: Policy) -> str | None:
    """The ack receiver's handler for the environment's acknowledgements.mode; None when there is no receiver."""
    acks = policy.acknowledgements
    if acks.mode == "eventbridge" and acks.jsm_token_secret:
        return ACK_HANDLER_BOTH
    return ACK_HANDLERS.get(acks.mode)


def notifier_secrets(policy: Policy) -> list[tuple[str, str, str]]:
    """(notifier name, field, secret) of every secret the policy's `notifiers` read when sending (not `notifier`'s
    routing key, which the stack grants on its own)."""
    fields = ("routing_key_secret", "api_key_secret", "url_secret", "signing_secret")
    return [
        (name, field, secret)
        for name, config in policy.notifiers.items()
        for field in fields
        if isinstance(secret := getattr(config, field, None), str)
    ]


def ack_function_environment(policy: Policy, table_name: str) -> dict[str, str]:
    """The ack receiver's environment: the router's (same policy file, same table, same metrics namespace) but for
    the dead-letter queue, which only the router writes to.

    The dedup state and Powertools' idempotency records share the table (key `pk`, expiry `expires_at`).
    """
    return _base_environment(policy, table_name)


def meta_alert_environment(policy: Policy) -> dict[str, str]:
    """The meta-alert function needs only the policy file (notifier settings and the routing key's secret)."""
    return {"POLICY_FILE": f"{LAMBDA_TASK_ROOT}/{packaged_policy_path(policy)}"}


def canary_environment(policy: Policy) -> dict[str, str]:
    """The canary function: the policy file (its environment's name) and where its metrics go."""
    return {
        "POLICY_FILE": f"{LAMBDA_TASK_ROOT}/{packaged_policy_path(policy)}",
        "POWERTOOLS_SERVICE_NAME": POWERTOOLS_SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    }


def silence_sweep_environment(policy: Policy, table_name: str) -> dict[str, str]:
    """The silence sweep: the router's policy file and state table, and where its metrics go."""
    return _base_environment(policy, table_name)


def psirt_digest_environment(policy: Policy) -> dict[str, str]:
    """The PSIRT digest: the policy file (digest settings, notifiers) and where its metrics go; the construct adds
    REPORT_BUCKET when it writes reports."""
    return canary_environment(policy)


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
    as findings_router.adapters.securityhub maps it), and nothing else.

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

# The dedup state's items: `fr1-` and a hash (findings_router.domain.keys.dedup_key); the storm counters, which only the
# router reads and writes, are `fr1-storm-…` (findings_router.domain.keys.storm_key). IAM `StringLike` patterns of
# `dynamodb:LeadingKeys` (`*` matches any run of characters).
STATE_KEY_PATTERN = f"{KEY_PREFIX}*"
STORM_KEY_PATTERN = f"{STORM_PREFIX}*"
# The silences (`fr1-silence-<env>-<id>`): written by the `findings-router silence` commands, read by the functions
# through the time index only.
SILENCE_KEY_PATTERN = f"{SILENCE_PREFIX}*"
# Powertools' idempotency records (DynamoDBPersistenceLayer with the default key layout): the partition key is
# "<AWS_LAMBDA_FUNCTION_NAME>.<label>#<hash of the idempotency key>": the ack receiver passes
# `key_prefix=ack_idempotency_prefix(function name)` to `idempotent_function` (aws_lambda_powertools/utilities/
# idempotency/persistence/base.py: `configure` and `_get_hashed_idempotency_key`), with the label fixed in
# findings_router.domain.keys so that moving code never changes the keys.
ACK_IDEMPOTENT_FUNCTION = ACK_IDEMPOTENCY_LABEL


def ack_idempotency_key_pattern(names: ResourceNames) -> str:
    """`dynamodb:LeadingKeys` pattern of the ack receiver's idempotency records (only its own function's)."""
    return f"{names.ack_function}.{ACK_IDEMPOTENT_FUNCTION}#*"


def state_table_definition(table_name: str) -> dict[str, Any]:
    """DynamoDB CreateTable parameters of the state table (local mode uses these with moto)."""
    partition, sort = STATE_TABLE_INDEX_KEYS
    return {
        "TableName": table_name,
        "KeySchema": [{"AttributeName": STATE_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"} for name in (STATE_TABLE_PARTITION_KEY, partition, sort)
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": STATE_TABLE_TIME_INDEX,
                "KeySchema": [
                    {"AttributeName": partition, "KeyType": "HASH"},
                    {"AttributeName": sort, "KeyType": "RANGE"},
                ],
                "Projection": {"NonKeyAttributes": list(STATE_TABLE_INDEX_PROJECTED), "ProjectionType": "INCLUDE"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def state_table_ttl_specification() -> dict[str, Any]:
    """DynamoDB UpdateTimeToLive `TimeToLiveSpecification` of the state table."""
    return {"AttributeName": STATE_TABLE_TTL_ATTRIBUTE, "Enabled": True}
