"""Ingestion: Security Hub finding events on the default bus → an encrypted queue → the router function.

The rule's pattern is `infra.event_patterns.event_pattern`: the environment's accounts and, with `ingestion.filter:
policy`, only what the policy's rules could page or notify (plus resolutions), compiled at synth, so what cannot
matter never costs a queue message or an invocation. Also the environment's own Security Hub custom action (when the
policy has `custom_action`): the rule admits only that action's events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Annotations, CfnResource, Duration, Token, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from findings_router.domain.normalize import SECURITYHUB_SOURCE
from infra.derived import QueueSettings

# aws-cdk-lib's CfnActionTarget (L1) is newer than the pinned aws-cdk-lib for Python (2.275.0): the resource is
# declared as a plain CfnResource with the type's documented properties (Id, Name, Description; Fn::GetAtt
# ActionTargetArn). The same release's synth-time "CloudFormation Validate" plugin has no schema for the type either
# and reports F3006 (unknown resource type): acknowledged on this one resource (ACTION_TARGET_UNKNOWN_TYPE).
ACTION_TARGET_TYPE = "AWS::SecurityHub::ActionTarget"
ACTION_TARGET_UNKNOWN_TYPE = "CloudFormation-Validate::F3006"


@dataclass(frozen=True)
class IngestionSettings:
    """What the ingestion construct builds, computed from the policy by infra/stack.py."""

    queue_name: str
    dead_letter_queue_name: str
    rule_name: str
    rule_description: str
    queue: QueueSettings
    # `AWS::SecurityHub::ActionTarget` properties of the environment's custom action
    # (event_patterns.action_target_properties); None without one.
    action_target: Mapping[str, str] | None
    # The finding event detail-types the rule admits (event_patterns.detail_types).
    detail_types: tuple[str, ...]
    # The rule's event pattern given the action target's ARN (event_patterns.event_pattern): the ARN is a
    # CloudFormation value of the action target this construct creates, so the pattern is made here.
    event_pattern: Callable[[str | None], dict[str, Any]]


class Ingestion(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: IngestionSettings) -> None:
        super().__init__(scope, construct_id)
        self.queue_settings = settings.queue
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=settings.dead_letter_queue_name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.seconds(self.queue_settings.dead_letter_retention_seconds),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=settings.queue_name,
            # SQS-managed keys: EventBridge can deliver without a key policy, and the messages are encrypted at rest.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(self.queue_settings.visibility_timeout_seconds),
            retention_period=Duration.seconds(self.queue_settings.retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=self.queue_settings.max_receive_count
            ),
        )
        # The environment's own custom action: operators choose it in the Security Hub console (Actions), Security Hub
        # sends the selected findings as `Security Hub Findings - Custom Action` events whose `resources` hold its ARN.
        self.action_target: CfnResource | None = None
        self.action_target_arn: str | None = None
        if settings.action_target is not None:
            self.action_target = CfnResource(
                self, "CustomAction", type=ACTION_TARGET_TYPE, properties=dict(settings.action_target)
            )
            Validations.of(self.action_target).acknowledge(
                Acknowledgment(
                    id=ACTION_TARGET_UNKNOWN_TYPE,
                    reason=(
                        "AWS::SecurityHub::ActionTarget is a published CloudFormation resource type (Template "
                        "Reference; registry schema with Id, Name, Description and the read-only ActionTargetArn, "
                        "also in cfn-lint's schemas, which test_cfn_lint_is_clean runs), but aws-cdk-lib 2.275.0 "
                        "ships neither its L1 class nor its schema. Drop this when aws-cdk-lib >= 2.276.0 "
                        "(securityhub.CfnActionTarget) is locked."
                    ),
                )
            )
            self.action_target_arn = Token.as_string(self.action_target.get_att("ActionTargetArn"))
        self.rule = events.Rule(
            self,
            "SecurityHubFindingsRule",
            rule_name=settings.rule_name,
            description=settings.rule_description,
            # Placeholder only: CDK's EventPattern type cannot express `$or`. The L1 property is replaced below by
            # the pattern from infra.event_patterns, the one the tests check against real events.
            event_pattern=events.EventPattern(source=[SECURITYHUB_SOURCE], detail_type=list(settings.detail_types)),
        )
        cfn_rule = self.rule.node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        cfn_rule.event_pattern = settings.event_pattern(self.action_target_arn)
        self.rule.add_target(
            targets.SqsQueue(
                self.queue,
                # Events EventBridge cannot deliver (after its own retries for up to 24 h) land in the same DLQ,
                # whose alarm then fires: one place to look for anything lost.
                dead_letter_queue=self.dead_letter_queue,
            )
        )

    def connect(self, function: lambda_.IFunction) -> event_sources.SqsEventSource:
        """Let `function` consume the queue in batches, reporting failed messages individually."""
        source = event_sources.SqsEventSource(
            self.queue,
            batch_size=self.queue_settings.batch_size,
            max_batching_window=(
                Duration.seconds(self.queue_settings.batching_window_seconds)
                if self.queue_settings.batching_window_seconds
                else None
            ),
            # The handler returns batchItemFailures: only failed messages come back and count towards the DLQ.
            report_batch_item_failures=True,
            max_concurrency=self.queue_settings.max_concurrency,
        )
        function.add_event_source(source)
        if self.queue_settings.max_concurrency is None:
            Annotations.of(self).add_warning_v2(
                "findings-router:reserved-concurrency-below-event-source-minimum",
                "function.reserved_concurrency is 1, below the SQS event source's minimum maximum-concurrency of 2: "
                "pollers can start more invocations than may run, throttled batches return to the queue, and each "
                "such receive counts towards ingestion.max_receive_count (dead-lettering good findings). "
                "Use reserved_concurrency >= 2.",
            )
        return source
