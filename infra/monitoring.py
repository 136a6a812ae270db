"""Monitoring: the alarms that say findings are not reaching on-call, an encrypted topic for them, a dashboard.

Every alarm means "a finding may not have paged": a dead letter, a failing or throttled function, or a queue
that is not being drained. They notify on ALARM and on OK, so whoever was told also learns it recovered.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from findings_router.config import Policy

from infra.definitions import METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME, ROUTING_METRICS, ResourceNames

ALARM_PERIOD = Duration.minutes(5)


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
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=names.alarm_topic,
            display_name=f"findings-router {policy.environment} alarms",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        # The SSL-only topic policy replaces SNS's default policy, so CloudWatch needs its own grant; limited to
        # this environment's alarms in this account.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=f"{names.alarm_prefix}-*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        for address in policy.monitoring.alarm_emails:
            # Each address must confirm the subscription from the email SNS sends before it receives alarms.
            self.topic.add_subscription(subscriptions.EmailSubscription(address))

        action = cloudwatch_actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(
            construct_id: str,
            suffix: str,
            description: str,
            *,
            metric: cloudwatch.IMetric,
            threshold: float,
            comparison_operator: cloudwatch.ComparisonOperator,
            treat_missing_data: cloudwatch.TreatMissingData,
        ) -> cloudwatch.Alarm:
            created = cloudwatch.Alarm(
                self,
                construct_id,
                alarm_name=f"{names.alarm_prefix}-{suffix}",
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

        self.dead_letters_alarm = alarm(
            "DeadLettersAlarm",
            "dead-letters",
            "Messages in the dead-letter queue: findings that could not be routed (see the router's logs for "
            "'dead-lettered'); redrive them once the cause is fixed.",
            metric=dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=ALARM_PERIOD, statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            # SQS stops reporting metrics for a queue nobody touches; keep the last state instead of going OK
            # while dead letters are still waiting.
            treat_missing_data=cloudwatch.TreatMissingData.IGNORE,
        )
        self.errors_alarm = alarm(
            "FunctionErrorsAlarm",
            "function-errors",
            "The router function failed (crash, timeout, or bad configuration); its batch will be retried.",
            metric=function.metric_errors(period=ALARM_PERIOD, statistic="Sum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.throttles_alarm = alarm(
            "FunctionThrottlesAlarm",
            "function-throttles",
            "The router function was throttled: findings wait, and throttled messages use up receive attempts.",
            metric=function.metric_throttles(period=ALARM_PERIOD, statistic="Sum"),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        max_age = policy.monitoring.oldest_message_age_seconds
        self.oldest_message_alarm = alarm(
            "OldestMessageAgeAlarm",
            "oldest-message-age",
            f"A finding has waited more than {max_age} s in the queue: the router is not keeping up or not running.",
            metric=queue.metric_approximate_age_of_oldest_message(period=ALARM_PERIOD, statistic="Maximum"),
            threshold=max_age,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        self.dashboard = self._dashboard(policy, names, queue, dead_letter_queue, function)

    def _dashboard(
        self,
        policy: Policy,
        names: ResourceNames,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        function: lambda_.IFunction,
    ) -> cloudwatch.Dashboard:
        minute = Duration.minutes(1)
        routing = [
            cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                # The handler's Powertools metrics: service from POWERTOOLS_SERVICE_NAME, environment from the policy.
                dimensions_map={"service": POWERTOOLS_SERVICE_NAME, "environment": policy.environment},
                statistic="Sum",
                period=minute,
            )
            for name in ROUTING_METRICS
        ]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=names.dashboard)
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=3),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Routing decisions", left=routing, width=12),
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
            cloudwatch.GraphWidget(
                title="Router function",
                left=[
                    function.metric_invocations(period=minute, statistic="Sum"),
                    function.metric_errors(period=minute, statistic="Sum"),
                    function.metric_throttles(period=minute, statistic="Sum"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Router duration (ms)",
                left=[
                    function.metric_duration(period=minute, statistic="p50"),
                    function.metric_duration(period=minute, statistic="Maximum"),
                ],
                width=12,
            ),
        )
        return dashboard
