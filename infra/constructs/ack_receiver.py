"""The ack receiver: PagerDuty incident events (acknowledged, resolved, …) back into the dedup state and Security Hub.

Created when `acknowledgements.mode` is not "none". One Lambda from the router's package
(functions/findings_router/entrypoints/receive_acks.py), with one of two front doors:

* function_url (`WebhookFrontDoor`): a Lambda Function URL that PagerDuty's Webhooks v3 subscription POSTs to
  (`<url>webhooks/pagerduty`), every request checked against the subscription's signing secret in code;
* eventbridge (`PartnerBusFrontDoor`): a rule on the PagerDuty partner event bus (no public endpoint at all).

The front doors are not constructs of their own: what they create stays a direct child of the `AckReceiver` (or of
its function), at the construct path, and so with the logical id, it has always had.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from aws_cdk import Duration, Fn
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from findings_router.domain.model import Workflow
from infra.constructs.function import FunctionSpec, LambdaFunction, grant_securityhub_writeback
from infra.constructs.secrets import ReferencedSecret, RoutingKeySecret
from infra.contract import ACK_JSM_WEBHOOK_PATH, ACK_WEBHOOK_PATH, STATE_KEY_PATTERN, STORM_KEY_PATTERN
from infra.derived import EVENT_TARGET_MAX_EVENT_AGE_HOURS, EVENT_TARGET_RETRY_ATTEMPTS
from infra.event_patterns import PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE, PAGERDUTY_PARTNER_SOURCE_PREFIX, ack_event_pattern

# The dedup state (adapters/state_table.py DynamoDedupStore): batched reads (BatchGetItem), single reads (GetItem) and conditional
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


@dataclass(frozen=True)
class WebhookFrontDoorSettings:
    """acknowledgements.mode function_url."""

    mode: ClassVar[str] = "function_url"
    # acknowledgements.signing_secret: the webhook subscription's signing secret, by name or complete ARN.
    signing_secret: str | None


@dataclass(frozen=True)
class PartnerBusFrontDoorSettings:
    """acknowledgements.mode eventbridge."""

    mode: ClassVar[str] = "eventbridge"
    # acknowledgements.partner_event_source: the partner event bus's name.
    partner_event_source: str
    rule_name: str
    rule_description: str


@dataclass(frozen=True)
class AckReceiverSettings:
    """What the ack receiver may do beyond its function, computed from the policy by infra/stack.py."""

    front_door: WebhookFrontDoorSettings | PartnerBusFrontDoorSettings
    # `dynamodb:LeadingKeys` pattern of its own idempotency records (contract.ack_idempotency_key_pattern).
    idempotency_key_pattern: str
    # acknowledgements.rest_api_token_secret, or None.
    rest_api_token_secret: str | None
    # securityhub.writeback, and the workflow status it may set (contract.ack_workflow_status).
    securityhub_writeback: bool
    workflow_status: Workflow | None
    # acknowledgements.jsm_token_secret: JSM's outgoing webhooks come to `<Function URL>webhooks/jsm` with it.
    jsm_token_secret: str | None = None


class WebhookFrontDoor:
    """PagerDuty Webhooks v3 → a Function URL of `receiver`'s function; the signing secret readable by its role."""

    def __init__(self, receiver: AckReceiver, settings: WebhookFrontDoorSettings) -> None:
        self.signing_secret: ReferencedSecret | None = None
        if settings.signing_secret:
            # Only the webhook entry point verifies signatures; the EventBridge one never reads this secret.
            self.signing_secret = ReferencedSecret(
                receiver, "SigningSecret", secret_name_or_arn=settings.signing_secret, sid="ReadWebhookSigningSecret"
            )
            self.signing_secret.grant_read(receiver.role)
        # Auth type NONE on purpose: PagerDuty cannot sign AWS SigV4 requests, so IAM auth would refuse every
        # delivery. The endpoint is not open: the handler checks X-PagerDuty-Signature (HMAC-SHA256 of the raw
        # body with the subscription's signing secret) before it reads anything else and answers 401 without
        # any side effect when it does not match. Reserved concurrency bounds what unsigned traffic can cost.
        # No CORS: only PagerDuty's servers call it, never a browser.
        self.function_url = receiver.function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.NONE,
            invoke_mode=lambda_.InvokeMode.BUFFERED,
        )
        self.webhook_url = Fn.join("", [self.function_url.url, ACK_WEBHOOK_PATH])


class PartnerBusFrontDoor:
    """The PagerDuty partner event bus → a rule → `receiver`'s function, undeliverable events to its dead-letter
    queue."""

    def __init__(self, receiver: AckReceiver, settings: PartnerBusFrontDoorSettings) -> None:
        # EventBridge invokes asynchronously: the function spec names a dead-letter queue for this mode.
        assert receiver.dead_letter_queue is not None
        # The partner event bus exists once the partner event source is associated with it (docs/deploy.md);
        # its name is the event source's name. Only PagerDuty can put events on it: trust comes from the bus.
        bus = events.EventBus.from_event_bus_name(receiver, "PartnerEventBus", settings.partner_event_source)
        self.rule = events.Rule(
            receiver,
            "PartnerEventsRule",
            rule_name=settings.rule_name,
            description=settings.rule_description,
            event_bus=bus,
            event_pattern=events.EventPattern(
                source=events.Match.prefix(PAGERDUTY_PARTNER_SOURCE_PREFIX),
                detail_type=[PAGERDUTY_EVENTBRIDGE_DETAIL_TYPE],
            ),
        )
        # The pattern the tests check against real events is the one in infra.event_patterns.
        cfn_rule = self.rule.node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        cfn_rule.event_pattern = ack_event_pattern()
        self.rule.add_target(
            targets.LambdaFunction(
                receiver.function,
                retry_attempts=EVENT_TARGET_RETRY_ATTEMPTS,
                max_event_age=Duration.hours(EVENT_TARGET_MAX_EVENT_AGE_HOURS),
                dead_letter_queue=receiver.dead_letter_queue,
            )
        )


class AckReceiver(LambdaFunction):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        code: lambda_.Code,
        settings: AckReceiverSettings,
        table: dynamodb.ITable,
        routing_key: RoutingKeySecret,
    ) -> None:
        super().__init__(scope, construct_id, spec=spec, code=code)
        self.mode = settings.front_door.mode
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
                conditions=leading_keys_condition(settings.idempotency_key_pattern),
            )
        )
        # The front door before the other grants: the webhook's signing secret is the role's first secret.
        self.front_door: WebhookFrontDoor | PartnerBusFrontDoor
        self.function_url: lambda_.FunctionUrl | None = None
        self.webhook_url: str | None = None
        self.rule: events.Rule | None = None
        if isinstance(settings.front_door, WebhookFrontDoorSettings):
            webhook = WebhookFrontDoor(self, settings.front_door)
            self.function_url, self.webhook_url = webhook.function_url, webhook.webhook_url
            self.front_door = webhook
        else:
            partner_bus = PartnerBusFrontDoor(self, settings.front_door)
            self.rule = partner_bus.rule
            self.front_door = partner_bus
        self.jsm_webhook_url: str | None = None
        if settings.jsm_token_secret:
            ReferencedSecret(
                self, "JsmToken", secret_name_or_arn=settings.jsm_token_secret, sid="ReadJsmWebhookToken"
            ).grant_read(self.role)
            if self.function_url is None:
                # The partner bus carries PagerDuty's events only: JSM's webhooks need a URL. Auth type NONE as for
                # PagerDuty's: the handler checks the token header before anything else.
                self.function_url = self.function.add_function_url(
                    auth_type=lambda_.FunctionUrlAuthType.NONE, invoke_mode=lambda_.InvokeMode.BUFFERED
                )
            self.jsm_webhook_url = Fn.join("", [self.function_url.url, ACK_JSM_WEBHOOK_PATH])
        self.rest_api_token: ReferencedSecret | None = None
        if settings.rest_api_token_secret:
            self.rest_api_token = ReferencedSecret(
                self,
                "RestApiToken",
                secret_name_or_arn=settings.rest_api_token_secret,
                sid="ReadPagerDutyRestApiKey",
            )
            self.rest_api_token.grant_read(self.role)
        # PagerDuty Events API v2 resolves for an episode's sibling incidents, with the notifier's routing key.
        routing_key.grant_read(self.role)
        if settings.securityhub_writeback:
            # Notes on acknowledge/resolve; workflow RESOLVED only with resolve_workflow_on_operator_resolve.
            grant_securityhub_writeback(self.role, workflow_status=settings.workflow_status)
