"""Alarms: the alarms that say findings-router is not doing its job, and encrypted topics for them.

Every alarm on the alarm topic means "a finding (or an acknowledgement) may not have got through": a dead letter,
a failing or throttled function, a queue that is not being drained. They notify on ALARM and on OK, so whoever was
told also learns it recovered. The meta-alert function (infra/constructs/meta_alerts.py) is subscribed to that topic
and pages on-call through PagerDuty.

Alarms about the meta-alert function itself (its errors, its dead letters) go to a second topic that only emails:
were they on the alarm topic, a failing meta-alert function would be invoked about its own failure, fail again, and
flap its own alarm for as long as PagerDuty is unreachable.

The dashboard (infra/constructs/dashboard.py) shows `Alarms.alarms` once every function is watched.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Annotations, ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.contract import (
    ACKS_REJECTED_METRIC,
    CANARY_COMPLETED_METRIC,
    FINDINGS_RECEIVED_METRIC,
    METRICS_NAMESPACE,
    POWERTOOLS_SERVICE_NAME,
)

ALARM_PERIOD = Duration.minutes(5)
# Rejected webhook signatures per ALARM_PERIOD that alarm: a few are scanners; more is a flood, or every genuine
# webhook failing after a signing secret rotation.
REJECTED_WEBHOOKS_THRESHOLD = 5


def powertools_metric(environment: str, name: str, *, period: Duration, statistic: str = "Sum") -> cloudwatch.Metric:
    """A custom metric the functions emit with Powertools (EMF): namespace and `service` dimension from infra's
    contract, `environment` from the policy."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": POWERTOOLS_SERVICE_NAME, "environment": environment},
        statistic=statistic,
        period=period,
    )


@dataclass(frozen=True)
class AlarmSettings:
    """The alarms' settings, computed from the policy by infra/stack.py."""

    environment: str
    # Every alarm is named `<alarm_prefix>-<suffix>` (ResourceNames.alarm_prefix); the topics accept only those.
    alarm_prefix: str
    alarm_topic_name: str
    meta_alarm_topic_name: str
    # monitoring.alarm_emails, subscribed to both topics; monitoring.no_alarm_emails_reason says why there are none.
    alarm_emails: tuple[str, ...]
    no_alarm_emails_reason: str | None
    # monitoring.oldest_message_age_seconds
    oldest_message_age_seconds: int
    # Production: the topics' key outlives the stack.
    retain_key: bool


class Alarms(Construct):
    """The topics' key, the alarm topic, the email-only meta-alarm topic, and the alarms (`self.alarms`, in the order
    they were added): the router's and its queues' here, the ack receiver's and the meta-alert function's by
    `watch_ack_receiver` and `watch_meta_alerts`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AlarmSettings,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        # SNS's AWS managed key cannot be used by CloudWatch alarms: the topic needs a key whose policy lets
        # CloudWatch encrypt the notifications it publishes.
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"findings-router {settings.environment}: encrypts alarm notifications",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if settings.retain_key else RemovalPolicy.DESTROY,
        )
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishEncrypted",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                # In a key policy "*" means this key.
                resources=["*"],
            )
        )
        self._stack = stack
        self._settings = settings
        self.topic = self._topic(
            "AlarmTopic", settings.alarm_topic_name, f"findings-router {settings.environment} alarms"
        )
        self.meta_topic = self._topic(
            "MetaAlarmTopic",
            settings.meta_alarm_topic_name,
            f"findings-router {settings.environment}: meta-alert function alarms (email only)",
        )
        if not settings.alarm_emails and not settings.no_alarm_emails_reason:
            Annotations.of(self).add_warning_v2(
                "findings-router:no-alarm-emails",
                "monitoring.alarm_emails is empty: alarms about the meta-alert function itself reach nobody. It "
                "cannot page about its own failure (e.g. PagerDuty unreachable, wrong routing key), so those alarms "
                f"only email. In config/{settings.environment}.yaml add an address under monitoring.alarm_emails, or "
                'say why there is none: monitoring.no_alarm_emails_reason: "…" (that acknowledges this warning).',
            )
        self.alarms: list[cloudwatch.Alarm] = []

        self.dead_letters_alarm = self._dead_letters_alarm(
            "DeadLettersAlarm",
            "dead-letters",
            "Messages in the dead-letter queue: findings that could not be routed (see the router's logs for "
            "'dead-lettered'); redrive them once the cause is fixed.",
            dead_letter_queue,
        )
        self.errors_alarm = self._errors_alarm(
            "FunctionErrorsAlarm",
            "function-errors",
            "The router function failed (crash, timeout, or bad configuration); its batch will be retried.",
            function,
        )
        self.throttles_alarm = self._count_alarm(
            "FunctionThrottlesAlarm",
            "function-throttles",
            "The router function was throttled: findings wait, and throttled messages use up receive attempts.",
            function.metric_throttles(period=ALARM_PERIOD, statistic="Sum"),
        )
        max_age = settings.oldest_message_age_seconds
        self.oldest_message_alarm = self.add_alarm(
            "OldestMessageAgeAlarm",
            "oldest-message-age",
            f"A finding has waited more than {max_age} s in the queue: the router is not keeping up or not running.",
            metric=queue.metric_approximate_age_of_oldest_message(period=ALARM_PERIOD, statistic="Maximum"),
            threshold=max_age,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _topic(self, construct_id: str, topic_name: str, display_name: str) -> sns.Topic:
        topic = sns.Topic(
            self,
            construct_id,
            topic_name=topic_name,
            display_name=display_name,
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        # The SSL-only topic policy replaces SNS's default policy, so CloudWatch needs its own grant; limited to
        # this environment's alarms in this account.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": self._stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=f"{self._settings.alarm_prefix}-*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": self._stack.account},
                },
            )
        )
        for address in self._settings.alarm_emails:
            # Each address must confirm the subscription from the email SNS sends before it receives alarms.
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return topic

    def add_alarm(
        self,
        construct_id: str,
        suffix: str,
        description: str,
        *,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison_operator: cloudwatch.ComparisonOperator,
        treat_missing_data: cloudwatch.TreatMissingData,
        topic: sns.ITopic | None = None,
    ) -> cloudwatch.Alarm:
        """An alarm named `<prefix>-<suffix>` notifying `topic` (default: the alarm topic) on ALARM and on OK."""
        action = cloudwatch_actions.SnsAction(topic or self.topic)
        created = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._settings.alarm_prefix}-{suffix}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison_operator,
            treat_missing_data=treat_missing_data,
            evaluation_periods=1,
        )
        created.add_alarm_action(action)
        created.add_ok_action(action)
        self.alarms.append(created)
        return created

    def _count_alarm(
        self,
        construct_id: str,
        suffix: str,
        description: str,
        metric: cloudwatch.IMetric,
        topic: sns.ITopic | None = None,
    ) -> cloudwatch.Alarm:
        """Fires when `metric`, a count summed over ALARM_PERIOD, reaches one; no data means nothing happened."""
        return self.add_alarm(
            construct_id,
            suffix,
            description,
            metric=metric,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            topic=topic,
        )

    def _errors_alarm(
        self,
        construct_id: str,
        suffix: str,
        description: str,
        function: lambda_.IFunction,
        topic: sns.ITopic | None = None,
    ) -> cloudwatch.Alarm:
        return self._count_alarm(
            construct_id, suffix, description, function.metric_errors(period=ALARM_PERIOD, statistic="Sum"), topic
        )

    def _dead_letters_alarm(
        self, construct_id: str, suffix: str, description: str, queue: sqs.IQueue, topic: sns.ITopic | None = None
    ) -> cloudwatch.Alarm:
        return self.add_alarm(
            construct_id,
            suffix,
            description,
            metric=queue.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD, statistic="Maximum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # SQS stops reporting metrics for a queue nobody touches; keep the last state instead of going OK
            # while dead letters are still waiting.
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
            topic=topic,
        )

    def watch_ack_receiver(
        self, function: lambda_.IFunction, dead_letter_queue: sqs.IQueue | None, *, public_url: bool
    ) -> None:
        """The ack receiver's alarms page (alarm topic): a lost acknowledgement leaves Security Hub and the state
        out of date, and a broken receiver makes PagerDuty disable the webhook subscription. `dead_letter_queue`:
        the receiver's own (eventbridge mode), if any; `public_url`: behind a Function URL (function_url mode),
        where anyone can send requests and only the signature tells genuine webhooks apart."""
        self.ack_errors_alarm = self._errors_alarm(
            "AckReceiverErrorsAlarm",
            "ack-receiver-errors",
            "The ack receiver failed (crash, timeout, DynamoDB or Security Hub errors): PagerDuty retries webhooks "
            "(and disables a subscription after repeated failures); EventBridge events are retried, then "
            "dead-lettered.",
            function,
        )
        self.ack_throttles_alarm = self._count_alarm(
            "AckReceiverThrottlesAlarm",
            "ack-receiver-throttles",
            "The ack receiver was throttled (its reserved concurrency was exhausted): PagerDuty retries throttled "
            "webhooks, but a sustained flood delays acknowledgements. Check ack-receiver-rejected-signatures.",
            function.metric_throttles(period=ALARM_PERIOD, statistic="Sum"),
        )
        self.ack_rejected_alarm: cloudwatch.Alarm | None = None
        if public_url:
            self.ack_rejected_alarm = self._rejected_webhooks_alarm()
        self.ack_dead_letters_alarm: cloudwatch.Alarm | None = None
        if dead_letter_queue is not None:
            self.ack_dead_letters_alarm = self._dead_letters_alarm(
                "AckDeadLettersAlarm",
                "ack-dead-letters",
                "PagerDuty events from the partner event bus could not be processed: acknowledgements that did not "
                "reach the state or Security Hub. Re-invoke the ack receiver with each message body once fixed.",
                dead_letter_queue,
            )

    def _rejected_webhooks_alarm(self) -> cloudwatch.Alarm:
        return self.add_alarm(
            "AckReceiverRejectedAlarm",
            "ack-receiver-rejected-signatures",
            f"At least {REJECTED_WEBHOOKS_THRESHOLD} webhooks in 5 minutes had a bad or missing signature: a flood "
            "of forged requests at the public URL, or genuine webhooks signed with a secret we do not have (a "
            "rotation half done). See docs/runbook.md.",
            metric=powertools_metric(self._settings.environment, ACKS_REJECTED_METRIC, period=ALARM_PERIOD),
            threshold=REJECTED_WEBHOOKS_THRESHOLD,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def watch_canary(self, function: lambda_.IFunction, *, alarm_after_minutes: int) -> None:
        """The canary's alarms (alarm topic, so they page through the meta-alerts' own service): no run completed
        for `alarm_after_minutes` (no data counts: nothing completed), and the canary function failing."""
        self.canary_alarm = self._absence_alarm(
            "CanaryMissingAlarm",
            "canary-missing",
            f"No canary completed in {alarm_after_minutes} minutes: a synthetic finding imported into Security Hub "
            "did not make it to the canary's on-call service and back. Some hop of the page path is broken "
            "(Security Hub, EventBridge, the queue, the router, PagerDuty, the webhook). See docs/runbook.md.",
            CANARY_COMPLETED_METRIC,
            alarm_after_minutes,
        )
        self.canary_errors_alarm = self._errors_alarm(
            "CanaryErrorsAlarm",
            "canary-errors",
            "The canary function failed to import its synthetic finding (InvalidAccess: Security Hub or the "
            "account's own product integration disabled; AccessDenied; throttling past retries).",
            function,
        )

    def watch_psirt_digest(self, function: lambda_.IFunction) -> None:
        """The digest failing (Inspector access denied, throttling past retries, the report or notification not
        delivered): its period's CVEs are in no digest until someone runs `findings-router cve`."""
        self.psirt_digest_errors_alarm = self._errors_alarm(
            "PsirtDigestErrorsAlarm",
            "psirt-digest-errors",
            "The PSIRT digest failed (Inspector AccessDenied or not the delegated administrator, throttling past "
            "retries, the report or the notification not delivered). See docs/psirt.md.",
            function,
        )

    def watch_silence_sweep(self, function: lambda_.IFunction) -> None:
        """The sweep failing: pages a silence held back are not sent after it ended (the finding's next copy, 12-24 h
        later for a control, would send them)."""
        self.silence_sweep_errors_alarm = self._errors_alarm(
            "SilenceSweepErrorsAlarm",
            "silence-sweep-errors",
            "The silence sweep failed: a page held back by a silence that has ended could not be delivered (the "
            "on-call service refused or was unreachable), or the state table could not be read. It retries every "
            "run. See docs/runbook.md (silences).",
            function,
        )

    def watch_findings_feed(self, *, minutes: int) -> None:
        """Silence detection: an environment that normally receives findings received none for `minutes`."""
        self.no_findings_alarm = self._absence_alarm(
            "NoFindingsAlarm",
            "no-findings",
            f"No finding reached the router in {minutes} minutes (the canary's aside): Security Hub's integrations, "
            "the EventBridge rule, cross-region aggregation or the member accounts' association may be broken. "
            "See docs/runbook.md.",
            FINDINGS_RECEIVED_METRIC,
            minutes,
        )

    def _absence_alarm(
        self, construct_id: str, suffix: str, description: str, metric_name: str, minutes: int
    ) -> cloudwatch.Alarm:
        """Fires when the functions emitted none of `metric_name` for `minutes`. No data counts as none: a dead
        function, queue or feed emits nothing at all, and that must alarm rather than stay OK."""
        return self.add_alarm(
            construct_id,
            suffix,
            description,
            metric=powertools_metric(self._settings.environment, metric_name, period=Duration.minutes(minutes)),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
        )

    def watch_meta_alerts(self, function: lambda_.IFunction, dead_letter_queue: sqs.IQueue) -> None:
        """The meta-alert function's own alarms: to the email-only topic, never to the topic it is subscribed to."""
        self.meta_errors_alarm = self._errors_alarm(
            "MetaAlertErrorsAlarm",
            "meta-alerts-errors",
            "The meta-alert function failed: findings-router's own alarms may not have paged (PagerDuty unreachable, "
            "wrong routing key). Check the alarm topic's alarms in the console. Email only: it cannot page about "
            "itself.",
            function,
            self.meta_topic,
        )
        self.meta_dead_letters_alarm = self._dead_letters_alarm(
            "MetaAlertDeadLettersAlarm",
            "meta-alerts-dead-letters",
            "Alarm notifications the meta-alert function could not deliver to PagerDuty after its retries; each "
            "message is one alarm state change that paged nobody. Email only.",
            dead_letter_queue,
            self.meta_topic,
        )
