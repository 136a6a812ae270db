"""The ack receiver: PagerDuty incident events (acknowledged, resolved, …) back into the dedup state and Security Hub.

Created when `acknowledgements.mode` is not "none". One Lambda from the router's package
(functions/findings_router/ack_handler.py), with one of two front doors:

* function_url: a Lambda Function URL that PagerDuty's Webhooks v3 subscription POSTs to
  (`<url>webhooks/pagerduty`), every request checked against the subscription's signing secret in code;
* eventbridge: a rule on the PagerDuty partner event bus (no public endpoint at all).
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Fn
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from findings_router.settings.schema import Policy
from infra.definitions import (
    ACK_MEMORY_MB,
    ACK_TIMEOUT_SECONDS,
    ACK_WEBHOOK_PATH,
    EVENT_TARGET_MAX_EVENT_AGE_HOURS,
    EVENT_TARGET_RETRY_ATTEMPTS,
    PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE,
    PAGERDUTY_PARTNER_SOURCE_PREFIX,
    STATE_KEY_PATTERN,
    STORM_KEY_PATTERN,
    ResourceNames,
    ack_event_pattern,
    ack_function_environment,
    ack_handler,
    ack_idempotency_key_pattern,
    ack_workflow_status,
)
from infra.lambda_function import PythonFunction, grant_securityhub_writeback
from infra.secrets import ReferencedSecret, RoutingKeySecret

# The dedup state (store.py DynamoDedupStore): batched reads (BatchGetItem), single reads (GetItem) and conditional
# writes (PutItem) of `fr1-…` items. Never the router's storm counters (`fr1-storm-…`).
ACK_STATE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem")
# Powertools' idempotency layer keeps one record per webhook in the same table: GetItem, PutItem (the conditional
# lock), UpdateItem (the result), DeleteItem (the record of a failed run, so the retry runs again).
ACK_IDEMPOTENCY_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
# No Scan, no Query: their LeadingKeys would not bound what they read.

LEADING_KEYS = "dynamodb:LeadingKeys"


def leading_keys_condition(like: str, *, not_like: str | None = None) -> dict[str, dict[str, Any]]:
    """Items whose partition key matches `like` (and not `not_like`), for single-item and batch item actions.

    DynamoDB: "you must use the ForAllValues modifier when using LeadingKeys" (every key of a batch must match);
    ForAllValues is also true when the request has no such key, so `Null: false` requires one (IAM user guide,
    multivalued context keys).
    """
    condition: dict[str, dict[str, Any]] = {
        "Null": {LEADING_KEYS: "false"},
        "ForAllValues:StringLike": {LEADING_KEYS: [like]},
    }
    if not_like is not None:
        condition["ForAllValues:StringNotLike"] = {LEADING_KEYS: [not_like]}
    return condition


class AckReceiver(PythonFunction):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        names: ResourceNames,
        table: dynamodb.ITable,
        routing_key: RoutingKeySecret,
        code: lambda_.Code,
    ) -> None:
        settings = policy.acknowledgements
        handler = ack_handler(policy)
        if handler is None:
            raise ValueError("acknowledgements.mode is none: there is no ack receiver to build")
        super().__init__(
            scope,
            construct_id,
            policy=policy,
            code=code,
            function_name=names.ack_function,
            log_group_name=names.ack_log_group,
            description=f"PagerDuty incident events to findings-router state and Security Hub ({policy.environment})",
            role_description=f"findings-router {policy.environment}: PagerDuty acknowledgements to state and Security Hub",
            handler=handler,
            memory_mb=ACK_MEMORY_MB,
            timeout_seconds=ACK_TIMEOUT_SECONDS,
            environment=ack_function_environment(policy, table.table_name),
            # Caps what a flood of (even unsigned) requests can cost; PagerDuty retries throttled deliveries.
            reserved_concurrency=settings.reserved_concurrency,
            # Only EventBridge invokes asynchronously: events it could not deliver (EventBridge's retries) and events
            # whose processing failed after Lambda's retries both end in the dead-letter queue, where an alarm
            # watches them.
            dead_letter_queue_name=names.ack_dead_letter_queue if settings.mode == "eventbridge" else None,
        )
        self.mode = settings.mode
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DedupState",
                actions=list(ACK_STATE_ACTIONS),
                resources=[table.table_arn],
                conditions=leading_keys_condition(STATE_KEY_PATTERN, not_like=STORM_KEY_PATTERN),
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="IdempotencyRecords",
                actions=list(ACK_IDEMPOTENCY_ACTIONS),
                resources=[table.table_arn],
                conditions=leading_keys_condition(ack_idempotency_key_pattern(names)),
            )
        )
        self.secrets: list[ReferencedSecret] = []
        if settings.mode == "function_url" and settings.signing_secret:
            # Only the webhook entry point verifies signatures; the EventBridge one never reads this secret.
            self.secrets.append(
                ReferencedSecret(
                    self, "SigningSecret", secret_name_or_arn=settings.signing_secret, sid="ReadWebhookSigningSecret"
                )
            )
        if settings.rest_api_token_secret:
            self.secrets.append(
                ReferencedSecret(
                    self,
                    "RestApiToken",
                    secret_name_or_arn=settings.rest_api_token_secret,
                    sid="ReadPagerDutyRestApiKey",
                )
            )
        for secret in self.secrets:
            secret.grant_read(self.role)
        # PagerDuty Events API v2 resolves for an episode's sibling incidents, with the notifier's routing key.
        routing_key.grant_read(self.role)
        if policy.securityhub.writeback:
            # Notes on acknowledge/resolve; workflow RESOLVED only with resolve_workflow_on_operator_resolve.
            grant_securityhub_writeback(self.role, workflow_status=ack_workflow_status(policy))

        self.function_url: lambda_.FunctionUrl | None = None
        self.webhook_url: str | None = None
        self.rule: events.Rule | None = None
        if settings.mode == "function_url":
            # Auth type NONE on purpose: PagerDuty cannot sign AWS SigV4 requests, so IAM auth would refuse every
            # delivery. The endpoint is not open: the handler checks X-PagerDuty-Signature (HMAC-SHA256 of the raw
            # body with the subscription's signing secret) before it reads anything else and answers 401 without
            # any side effect when it does not match. Reserved concurrency bounds what unsigned traffic can cost.
            # No CORS: only PagerDuty's servers call it, never a browser.
            self.function_url = self.function.add_function_url(
                auth_type=lambda_.FunctionUrlAuthType.NONE,
                invoke_mode=lambda_.InvokeMode.BUFFERED,
            )
            self.webhook_url = Fn.join("", [self.function_url.url, ACK_WEBHOOK_PATH])
        else:
            assert settings.partner_event_source is not None  # the config model requires it for this mode
            # The partner event bus exists once the partner event source is associated with it (docs/deploy.md);
            # its name is the event source's name. Only PagerDuty can put events on it: trust comes from the bus.
            bus = events.EventBus.from_event_bus_name(self, "PartnerEventBus", settings.partner_event_source)
            self.rule = events.Rule(
                self,
                "PartnerEventsRule",
                rule_name=names.ack_rule,
                description=f"PagerDuty incident events for findings-router ({policy.environment})",
                event_bus=bus,
                event_pattern=events.EventPattern(
                    source=events.Match.prefix(PAGERDUTY_PARTNER_SOURCE_PREFIX),
                    detail_type=[PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE],
                ),
            )
            # The pattern the tests check against real events is the one in infra.definitions.
            cfn_rule = self.rule.node.default_child
            assert isinstance(cfn_rule, events.CfnRule)
            cfn_rule.event_pattern = ack_event_pattern()
            self.rule.add_target(
                targets.LambdaFunction(
                    self.function,
                    retry_attempts=EVENT_TARGET_RETRY_ATTEMPTS,
                    max_event_age=Duration.hours(EVENT_TARGET_MAX_EVENT_AGE_HOURS),
                    dead_letter_queue=self.dead_letter_queue,
                )
            )
