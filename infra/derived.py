"""Settings computed from the environment's policy, and the checks that it can be deployed: no `aws_cdk` here.

Queue settings, function timeouts and sizes, retention periods (one table of the log retention periods AWS accepts),
and `deployment_checks`: what the config model accepts but AWS would reject. Local mode creates its queues from the
same `QueueSettings`, and `validate-config` runs the same checks as synth (`validate_deployment_config`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from findings_router.settings.baseline import Baseline, baseline_of, baseline_problems, disabled_control_expiry
from findings_router.settings.load import DirValidation, ExpiredSuppressions, FieldProblem, validate_policy_dir
from findings_router.settings.schema import Policy
from infra.contract import notifier_secrets
from infra.event_patterns import EVENT_PATTERN_MAX_CHARS, event_pattern_size, ingestion_filter

SECONDS_PER_DAY = 86_400

# ------------------------------------------------------------------------------------------ retention

# CloudWatch Logs accepts only these retention periods (days); the config model allows any positive number. Each is
# named as its member of aws_cdk.aws_logs.RetentionDays, which the function constructs look it up by (the CDK enum's
# values are its member names, not days). The only table of them: validation lists its keys.
LOG_RETENTION_DAYS: dict[int, str] = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}

# ------------------------------------------------------------------------------------------ queues

# AWS: "set the source queue's visibility timeout to at least six times the timeout of your function", so a
# batch whose invocation is throttled or retried is not handed to a second invocation while the first still runs.
VISIBILITY_TIMEOUT_FACTOR = 6
QUEUE_RETENTION_DAYS = 4
# Longer than the source queue's retention: a standard queue's DLQ keeps the original enqueue timestamp, so a
# shorter DLQ retention would delete dead letters before anyone looked at them.
DEAD_LETTER_RETENTION_DAYS = 14


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


# ------------------------------------------------------------------------------------------ ack receiver

# PagerDuty gives up on a delivery that has not answered 2xx within 5 s (and retries it); a webhook either
# finishes well inside that or is better abandoned and retried than left running.
ACK_TIMEOUT_SECONDS = 10
ACK_MEMORY_MB = 256
# EventBridge → Lambda delivery: EventBridge's own retries (its maxima, stated explicitly), then the target's DLQ.
EVENT_TARGET_RETRY_ATTEMPTS = 185
EVENT_TARGET_MAX_EVENT_AGE_HOURS = 24

# ------------------------------------------------------------------------------------------ meta-alerts

META_ALERT_MEMORY_MB = 256
# The canary function: one BatchImportFindings call (botocore's standard retries within).
CANARY_TIMEOUT_SECONDS = 30
# The digest pages through Inspector (25 findings a page, throttled): minutes for a large estate, never the hot path.
PSIRT_DIGEST_TIMEOUT_SECONDS = 600
PSIRT_DIGEST_MEMORY_MB = 512
# Room beyond the notifier's retry budget and one request timeout: cold start and the secret lookup.
META_ALERT_TIMEOUT_MARGIN_SECONDS = 15
# Lambda's asynchronous invocations (SNS, EventBridge): retries after a failed run before the function's DLQ.
ASYNC_RETRY_ATTEMPTS = 2
# A meta-alert older than this is not sent out of order (a late trigger could re-open an alarm that is OK by
# now); it waits in the DLQ for a person instead.
META_ALERT_MAX_EVENT_AGE_HOURS = 1


def meta_alert_timeout_seconds(policy: Policy) -> int:
    """Long enough for the notifier's whole retry budget plus one last request, so a page is never cut off."""
    retry = policy.notifier.retry
    return math.ceil(retry.budget_seconds + retry.timeout_seconds) + META_ALERT_TIMEOUT_MARGIN_SECONDS


# ------------------------------------------------------------------------------------------ deployment checks


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
        (("monitoring", "meta_alert_routing_key_secret"), policy.monitoring.meta_alert_routing_key_secret),
        (("canary", "routing_key_secret"), policy.canary.routing_key_secret),
        (("canary", "heartbeat_url_secret"), policy.canary.heartbeat_url_secret),
        (("acknowledgements", "jsm_token_secret"), acks.jsm_token_secret),
        *((("notifiers", name, field), secret) for name, field, secret in notifier_secrets(policy)),
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
    if days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
        problems.append(
            FieldProblem(
                ("function", "log_retention_days"), f"{days} is not a CloudWatch Logs retention period ({allowed})"
            )
        )
    ingestion = policy.ingestion
    if ingestion.resolutions == "noted" and (
        not policy.securityhub.writeback or getattr(policy, "mode", "") == "shadow"
    ):
        problems.append(
            FieldProblem(
                ("ingestion", "resolutions"),
                "noted admits a PASSED result only when findings-router noted the finding, which it does only with "
                "securityhub.writeback on (and not in mode shadow): use resolutions: all",
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
                "environment), or drop ingestion.severity_labels or ingestion.include_ocsf (the policy's own filter "
                "already gave way to the accounts alone)",
            )
        )
    return problems + channel_checks(policy) + baseline_checks(policy)


def baseline_checks(policy: Policy) -> list[FieldProblem]:
    """The `baseline:` section (settings/baseline.py): what its model cannot check alone, because it needs
    `production` (the defaults) or a table of infra/ (log retention periods). Part of `deployment_checks`; the
    disabled controls' expiry is checked with the date (`validate_deployment_config`)."""
    baseline = baseline_of(policy)
    return [] if baseline is None else baseline_section_problems(baseline, production=policy.production)


def baseline_section_problems(baseline: Baseline, *, production: bool) -> list[FieldProblem]:
    """`baseline_checks` of a `Baseline` and the environment's kind (the baseline stack checks what it is given)."""
    problems = [
        FieldProblem(("baseline", *loc), message) for loc, message in baseline_problems(baseline, production=production)
    ]
    trail = baseline.cloudtrail
    if trail is not None and trail.mode == "manage" and trail.cloudwatch_logs_retention_days not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(d) for d in LOG_RETENTION_DAYS)
        problems.append(
            FieldProblem(
                ("baseline", "cloudtrail", "cloudwatch_logs_retention_days"),
                f"{trail.cloudwatch_logs_retention_days} is not a CloudWatch Logs retention period ({allowed})",
            )
        )
    return problems


def baseline_expiry(validation: DirValidation, today: dt.date, *, expired_as_warning: bool) -> DirValidation:
    """`validation` with the disabled controls of each file's `baseline:` checked against `today`, as suppressions
    are (settings/load.py suppression_expiry): past its `expires` an error (a warning with `expired_as_warning`, as
    synth has it), expiring soon a warning."""
    files = {}
    for path, checked in validation.files.items():
        baseline = baseline_of(checked.policy)
        if baseline is None:
            files[path] = checked
            continue
        errors, warnings = list(checked.errors), list(checked.warnings)
        for loc, message, expired in disabled_control_expiry(baseline, today):
            warning = not expired or expired_as_warning
            (warnings if warning else errors).append(checked.problem(("baseline", *loc), message, warning=warning))
        files[path] = replace(checked, errors=tuple(errors), warnings=tuple(warnings))
    return replace(validation, files=files)


def channel_checks(policy: Policy) -> list[FieldProblem]:
    """The pager's pager: the canary and the meta-alerts must not depend on the channel they watch, and production
    must have somewhere to send the meta-alert function's own failures (docs/canary.md)."""
    problems = []
    findings_key = policy.notifier.routing_key_secret
    canary_key = policy.canary.routing_key_secret
    if policy.canary_enabled and not canary_key:
        enabled = "the default in production" if policy.canary.enabled is None else "canary.enabled"
        problems.append(
            FieldProblem(
                ("canary",),
                f"the canary is on ({enabled}) and needs routing_key_secret: the routing key of a separate "
                "PagerDuty service that pages nobody (or set enabled: false)",
            )
        )
    if canary_key is not None and canary_key == findings_key:
        problems.append(
            FieldProblem(
                ("canary", "routing_key_secret"),
                "must not be notifier.routing_key_secret: the canary would page on-call every few minutes",
            )
        )
    monitoring = policy.monitoring
    if monitoring.meta_alert_routing_key_secret is not None and monitoring.meta_alert_routing_key_secret in (
        findings_key,
        canary_key,
    ):
        problems.append(
            FieldProblem(
                ("monitoring", "meta_alert_routing_key_secret"),
                "must be a service of its own, not the notifier's or the canary's (omit it to share the notifier's)",
            )
        )
    if not policy.production:
        return problems
    if not monitoring.alarm_emails:
        problems.append(
            FieldProblem(
                ("monitoring", "alarm_emails"),
                "production needs an address: the meta-alert function's own failures (PagerDuty unreachable, a "
                "revoked key) can only be emailed (no_alarm_emails_reason is for other environments)",
            )
        )
    own_channel = monitoring.meta_alert_routing_key_secret is not None or bool(monitoring.meta_alert_notify)
    if monitoring.meta_alerts != "off" and not own_channel:
        problems.append(
            FieldProblem(
                ("monitoring", "meta_alert_routing_key_secret"),
                "production needs one (or monitoring.meta_alert_notify): findings-router's own alarms must not "
                "depend on the integration they watch (the routing key of a separate PagerDuty service)",
            )
        )
    return problems


def deployment_problems(policy: Policy) -> list[str]:
    """`deployment_checks` as ``field: message`` lines (no file or line: for a `Policy` not read from a file)."""
    return [str(problem) for problem in deployment_checks(policy)]


def ingestion_filter_warning(policy: Policy) -> str | None:
    """Why the ingestion rule filters less than `ingestion.filter` asks (EventBridge's quota), or None: a synth and
    `validate-config` warning, never an error (a coarser filter admits more, so nothing is lost but money)."""
    chosen = ingestion_filter(policy)
    if not chosen.coarsened:
        return None
    if chosen.level == "policy":
        effect = f"it leaves out {', '.join(chosen.widened)}"
    elif chosen.level == "severity":
        effect = f"it filters on the labels the rules page ({', '.join(s.value for s in chosen.labels)}) instead"
    else:
        effect = "it admits every finding of the environment's accounts instead"
    return (
        f"filter {chosen.requested}: {chosen.reason}; {effect}. More findings reach the queue than the policy acts "
        "on (each costs SQS, Lambda and logs): simplify the rules' conditions, or set filter: severity"
    )


def ingestion_filter_warnings(validation: DirValidation) -> DirValidation:
    """`validation` with `ingestion_filter_warning` of each valid policy added to its warnings."""
    files = {}
    for path, checked in validation.files.items():
        message = ingestion_filter_warning(checked.policy) if checked.ok and checked.policy is not None else None
        if message is None:
            files[path] = checked
            continue
        warning = checked.problem(("ingestion", "filter"), message, warning=True)
        files[path] = replace(checked, warnings=(*checked.warnings, warning))
    return replace(validation, files=files)


def validate_deployment_config(
    config_dir: str | Path, *, today: dt.date | None, expired_suppressions: ExpiredSuppressions
) -> DirValidation:
    """Every check of a config directory that synth makes, with file:line: field: the policy model, the checks across
    files, `deployment_checks` and, given `today`, the expiry of the suppressions and of the baseline's disabled
    controls. `validate-config` runs exactly this with
    `expired_suppressions="error"` (CI fails), synth with `"warning"` (a date never blocks an urgent deploy)."""
    validation = ingestion_filter_warnings(
        validate_policy_dir(
            config_dir, today=today, expired_suppressions=expired_suppressions, checks=(deployment_checks,)
        )
    )
    if today is None:
        return validation
    return baseline_expiry(validation, today, expired_as_warning=expired_suppressions == "warning")
