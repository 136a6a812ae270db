"""The CloudWatch dashboard: every alarm's state, the routing decisions, the queue, and each function's traffic.

Built last, from the finished list of alarms and the functions (`add_dashboard`), so that it shows all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.alarms import powertools_metric
from infra.contract import ROUTING_METRICS

# Metrics the ack receiver emits (Powertools EMF, same service/environment dimensions as the router's).
ACK_METRICS = ("AcksRejected", "AcksMalformed")


@dataclass(frozen=True)
class DashboardSettings:
    """The dashboard's settings, computed from the policy by infra/stack.py."""

    dashboard_name: str
    # The `environment` dimension of the functions' Powertools metrics.
    environment: str
    # acknowledgements.mode of the ack receiver shown, if any (its graph's title).
    ack_mode: str | None = None


def _powertools_metrics(environment: str, names: tuple[str, ...], period: Duration) -> list[cloudwatch.IMetric]:
    return [powertools_metric(environment, name, period=period) for name in names]


def _invocation_metrics(function: lambda_.IFunction, period: Duration) -> list[cloudwatch.IMetric]:
    """Invocations, errors and throttles per `period`."""
    return [
        function.metric_invocations(period=period, statistic="Sum"),
        function.metric_errors(period=period, statistic="Sum"),
        function.metric_throttles(period=period, statistic="Sum"),
    ]


def add_dashboard(
    scope: Construct,
    construct_id: str,
    *,
    settings: DashboardSettings,
    alarms: Sequence[cloudwatch.IAlarm],
    queue: sqs.IQueue,
    dead_letter_queue: sqs.IQueue,
    router: lambda_.IFunction,
    ack_receiver: lambda_.IFunction | None = None,
    meta_alerts: lambda_.IFunction | None = None,
) -> cloudwatch.Dashboard:
    """The dashboard, as `scope`'s child `construct_id` (a `cloudwatch.Dashboard` itself, no construct around it, so
    its logical id is the one of that path): `alarms` in their order, then the router's and the queues' graphs, then
    the ack receiver's and the meta-alert function's when given."""
    minute = Duration.minutes(1)
    dashboard = cloudwatch.Dashboard(scope, construct_id, dashboard_name=settings.dashboard_name)
    dashboard.add_widgets(
        cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=3),
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="Routing decisions", left=_powertools_metrics(settings.environment, ROUTING_METRICS, minute), width=12
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
        cloudwatch.GraphWidget(title="Router function", left=_invocation_metrics(router, minute), width=12),
        cloudwatch.GraphWidget(
            title="Router duration (ms)",
            left=[
                router.metric_duration(period=minute, statistic="p50"),
                router.metric_duration(period=minute, statistic="Maximum"),
            ],
            width=12,
        ),
    )
    widgets: list[cloudwatch.IWidget] = []
    if ack_receiver is not None:
        widgets.append(
            cloudwatch.GraphWidget(
                title=f"Ack receiver ({settings.ack_mode})",
                left=_invocation_metrics(ack_receiver, minute),
                right=_powertools_metrics(settings.environment, ACK_METRICS, minute),
                width=12,
            )
        )
    if meta_alerts is not None:
        widgets.append(
            cloudwatch.GraphWidget(
                title="Meta-alerts (alarms to PagerDuty)",
                left=[
                    meta_alerts.metric_invocations(period=minute, statistic="Sum"),
                    meta_alerts.metric_errors(period=minute, statistic="Sum"),
                ],
                width=12,
            )
        )
    if widgets:
        dashboard.add_widgets(*widgets)
    return dashboard
