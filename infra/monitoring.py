"""Monitoring: the alarms that say findings-router is not doing its job, encrypted topics for them, a dashboard.

Every alarm on the alarm topic means "a finding (or an acknowledgement) may not have got through": a dead letter,
a failing or throttled function, a queue that is not being drained. They notify on ALARM and on OK, so whoever was
told also learns it recovered. The meta-alert function (infra/meta_alerts.py) is subscribed to that topic and pages
on-call through PagerDuty.

Alarms about the meta-alert function itself (its errors, its dead letters) go to a second topic that only emails:
were they on the alarm topic, a failing meta-alert function would be invoked about its own failure, fail again, and
flap its own alarm for as long as PagerDuty is unreachable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

from findings_router.settings.schema import Policy
from infra.definitions import METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME, ROUTING_METRICS, ResourceNames

if TYPE_CHECKING:
    from infra.ack_receiver import AckReceiver
    from infra.meta_alerts import MetaAlerts

ALARM_PERIOD = Duration.minutes(5)
# Metrics the ack receiver emits (Powertools EMF, same service/environment dimensions as the router's).
ACK_METRICS = ("AcksRejected", "AcksMalformed")


def _powertools_metrics(policy: Policy, names: tuple[str, ...], period: Duration) -> list[cloudwatch.IMetric]:
    """Custom metrics the functions emit with Powertools: service from POWERTOOLS_SERVICE_NAME, environment from the
    policy."""
    return [
        cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": POWERTOOLS_SERVICE_NAME, "environment": policy.environment},
            statistic="Sum",
            period=period,
        )
        for name in names
    ]


def _invocation_metrics(function: lambda_.IFunction, period: Duration) -> list[cloudwatch.IMetric]:
    """Invocations, errors and throttles per `period`."""
    return [
        function.metric_invocations(period=period, statistic="Sum"),
        function.metric_errors(period=period, statistic="Sum"),
        function.metric_throttles(period=period, statistic="Sum"),
    ]


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        names: ResourceNames,
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
            description=f"findings-router {policy.environment}: encrypts alarm notifications",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN if policy.production else RemovalPolicy.DESTROY,
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
        self._names = names
        self._policy = policy
        self.topic = self._topic("AlarmTopic", names.alarm_topic, f"findings-router {policy.environment} alarms")
        self.meta_topic = self._topic(
            "MetaAlarmTopic",
            names.meta_alarm_topic,
            f"findings-router {policy.environment}: meta-alert function alarms (email only)",
        )
        if not policy.monitoring.alarm_emails and not policy.monitoring.no_alarm_emails_reason:
            Annotations.of(self).add_warning_v2(
                "findings-router:no-alarm-emails",
                "monitoring.alarm_emails is empty: alarms about the meta-alert function itself reach nobody. It "
                "cannot page about its own failure (e.g. PagerDuty unreachable, wrong routing key), so those alarms "
                f"only email. In config/{policy.environment}.yaml add an address under monitoring.alarm_emails, or "
                'say why there is none: monitoring.no_alarm_emails_reason: "…" (that acknowledges this warning).',
            )
        self.alarms: list[cloudwatch.Alarm] = []
        self._function = function
        self._ack: AckReceiver | None = None
        self._meta: MetaAlerts | None = None

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
        max_age = policy.monitoring.oldest_message_age_seconds
        self.oldest_message_alarm = self.add_alarm(
            "OldestMessageAgeAlarm",
            "oldest-message-age",
            f"A finding has waited more than {max_age} s in the queue: the router is not keeping up or not running.",
            metric=queue.metric_approximate_age_of_oldest_message(period=ALARM_PERIOD, statistic="Maximum"),
            threshold=max_age,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._queue = queue
        self._dead_letter_queue = dead_letter_queue
        self.dashboard: cloudwatch.Dashboard | None = None

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
                            resource_name=f"{self._names.alarm_prefix}-*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": self._stack.account},
                },
            )
        )
        for address in self._policy.monitoring.alarm_emails:
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
            alarm_name=f"{self._names.alarm_prefix}-{suffix}",
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

    def watch_ack_receiver(self, ack: AckReceiver) -> None:
        """The ack receiver's alarms page (alarm topic): a lost acknowledgement leaves Security Hub and the state
        out of date, and a broken receiver makes PagerDuty disable the webhook subscription."""
        self.ack_errors_alarm = self._errors_alarm(
            "AckReceiverErrorsAlarm",
            "ack-receiver-errors",
            "The ack receiver failed (crash, timeout, DynamoDB or Security Hub errors): PagerDuty retries webhooks "
            "(and disables a subscription after repeated failures); EventBridge events are retried, then "
            "dead-lettered.",
            ack.function,
        )
        self.ack_dead_letters_alarm: cloudwatch.Alarm | None = None
        if ack.dead_letter_queue is not None:
            self.ack_dead_letters_alarm = self._dead_letters_alarm(
                "AckDeadLettersAlarm",
                "ack-dead-letters",
                "PagerDuty events from the partner event bus could not be processed: acknowledgements that did not "
                "reach the state or Security Hub. Re-invoke the ack receiver with each message body once fixed.",
                ack.dead_letter_queue,
            )
        self._ack = ack

    def watch_meta_alerts(self, meta: MetaAlerts) -> None:
        """The meta-alert function's own alarms: to the email-only topic, never to the topic it is subscribed to."""
        self.meta_errors_alarm = self._errors_alarm(
            "MetaAlertErrorsAlarm",
            "meta-alerts-errors",
            "The meta-alert function failed: findings-router's own alarms may not have paged (PagerDuty unreachable, "
            "wrong routing key). Check the alarm topic's alarms in the console. Email only: it cannot page about "
            "itself.",
            meta.function,
            self.meta_topic,
        )
        self.meta_dead_letters_alarm = self._dead_letters_alarm(
            "MetaAlertDeadLettersAlarm",
            "meta-alerts-dead-letters",
            "Alarm notifications the meta-alert function could not deliver to PagerDuty after its retries; each "
            "message is one alarm state change that paged nobody. Email only.",
            meta.dead_letter_queue,
            self.meta_topic,
        )
        self._meta = meta

    def add_dashboard(self) -> cloudwatch.Dashboard:
        """The dashboard, built last so that it shows every alarm and function added to this construct."""
        policy, names = self._policy, self._names
        queue, dead_letter_queue, function = self._queue, self._dead_letter_queue, self._function
        minute = Duration.minutes(1)
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=names.dashboard)
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=3),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Routing decisions", left=_powertools_metrics(policy, ROUTING_METRICS, minute), width=12
            ),
            cloudwatch.GraphWidget(
                title="Queue",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=minute, statistic="Maximum"),
                    queue.metric_number_of_messages_received(period=minute, statistic="Sum"),
                    dead_letter_queue.metric_approximate_number_of_messages_visible(
                        period=minute, statistic="Maximum", label="Dead letters"
                    ),
                ],
                right=[queue.metric_approximate_age_of_oldest_message(period=minute, statistic="Maximum")],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Router function", left=_invocation_metrics(function, minute), width=12),
            cloudwatch.GraphWidget(
                title="Router duration (ms)",
                left=[
                    function.metric_duration(period=minute, statistic="p50"),
                    function.metric_duration(period=minute, statistic="Maximum"),
                ],
                width=12,
            ),
        )
        ack, meta = self._ack, self._meta
        widgets: list[cloudwatch.IWidget] = []
        if ack is not None:
            widgets.append(
                cloudwatch.GraphWidget(
                    title=f"Ack receiver ({ack.mode})",
                    left=_invocation_metrics(ack.function, minute),
                    right=_powertools_metrics(policy, ACK_METRICS, minute),
                    width=12,
                )
            )
        if meta is not None:
            widgets.append(
                cloudwatch.GraphWidget(
                    title="Meta-alerts (alarms to PagerDuty)",
                    left=[
                        meta.function.metric_invocations(period=minute, statistic="Sum"),
                        meta.function.metric_errors(period=minute, statistic="Sum"),
                    ],
                    width=12,
                )
            )
        if widgets:
            dashboard.add_widgets(*widgets)
        self.dashboard = dashboard
        return dashboard
