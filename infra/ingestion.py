"""Ingestion: Security Hub finding events on the default bus → an encrypted queue → the router function."""

from __future__ import annotations

from aws_cdk import Annotations, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from findings_router.config import Policy
from infra.definitions import SECURITYHUB_SOURCE, ResourceNames, detail_types, event_pattern, queue_settings


class Ingestion(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, policy: Policy, names: ResourceNames) -> None:
        super().__init__(scope, construct_id)
        self.settings = queue_settings(policy)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=names.dead_letter_queue,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.seconds(self.settings.dead_letter_retention_seconds),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=names.queue,
            # SQS-managed keys: EventBridge can deliver without a key policy, and the messages are encrypted at rest.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(self.settings.visibility_timeout_seconds),
            retention_period=Duration.seconds(self.settings.retention_seconds),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=self.settings.max_receive_count
            ),
        )
        self.rule = events.Rule(
            self,
            "SecurityHubFindingsRule",
            rule_name=names.rule,
            description=f"Security Hub finding events for findings-router ({policy.environment})",
            # Placeholder only: CDK's EventPattern type cannot express `$or`. The L1 property is replaced below by
            # the pattern from infra.definitions, the one the tests check against real events.
            event_pattern=events.EventPattern(source=[SECURITYHUB_SOURCE], detail_type=detail_types(policy)),
        )
        cfn_rule = self.rule.node.default_child
        assert isinstance(cfn_rule, events.CfnRule)
        cfn_rule.event_pattern = event_pattern(policy)
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
            batch_size=self.settings.batch_size,
            max_batching_window=(
                Duration.seconds(self.settings.batching_window_seconds)
                if self.settings.batching_window_seconds
                else None
            ),
            # The handler returns batchItemFailures: only failed messages come back and count towards the DLQ.
            report_batch_item_failures=True,
            max_concurrency=self.settings.max_concurrency,
        )
        function.add_event_source(source)
        if self.settings.max_concurrency is None:
            Annotations.of(self).add_warning_v2(
                "findings-router:reserved-concurrency-below-event-source-minimum",
                "function.reserved_concurrency is 1, below the SQS event source's minimum maximum-concurrency of 2: "
                "pollers can start more invocations than may run, throttled batches return to the queue, and each "
                "such receive counts towards ingestion.max_receive_count (dead-lettering good findings). "
                "Use reserved_concurrency >= 2.",
            )
        return source
