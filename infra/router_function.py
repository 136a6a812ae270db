"""The router Lambda: Python 3.12 on arm64, its log group, and a role that can touch only what it needs."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from findings_router.settings.schema import Policy
from infra.definitions import FUNCTION_HANDLER, ROUTER_WORKFLOW_STATUS, ResourceNames, function_environment
from infra.lambda_function import PythonFunction, grant_securityhub_writeback
from infra.secrets import RoutingKeySecret

# store.py reads in batches (BatchGetItem) and writes conditionally (PutItem); GetItem/UpdateItem cover single-item
# reads and in-place updates of a dedup record. No Scan, Query or DeleteItem: nothing here needs them.
STATE_TABLE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")


class RouterFunction(PythonFunction):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        names: ResourceNames,
        table: dynamodb.ITable,
        routing_key: RoutingKeySecret,
        dead_letter_queue: sqs.IQueue,
        code: lambda_.Code,
    ) -> None:
        settings = policy.function
        super().__init__(
            scope,
            construct_id,
            policy=policy,
            code=code,
            function_name=names.function,
            log_group_name=names.log_group,
            description=f"Routes Security Hub findings to on-call ({policy.environment})",
            role_description=f"findings-router {policy.environment}: route Security Hub findings",
            handler=FUNCTION_HANDLER,
            memory_mb=settings.memory_mb,
            timeout_seconds=settings.timeout_seconds,
            environment=function_environment(
                policy, table.table_name, dead_letter_queue_url=dead_letter_queue.queue_url
            ),
            # Caps concurrent invocations, and with them the rate of calls to PagerDuty.
            reserved_concurrency=settings.reserved_concurrency,
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DedupStateReadWrite",
                actions=list(STATE_TABLE_ACTIONS),
                resources=[table.table_arn],
            )
        )
        # A message whose delivery failed permanently goes to the ingestion DLQ at once (not after
        # ingestion.max_receive_count receives). SendMessage only: `IQueue.grant_send_messages` would add
        # GetQueueAttributes and GetQueueUrl, which the function does not call (it has the URL). The queue is
        # SSE-SQS encrypted: no KMS permission is needed.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ParkInDeadLetterQueue",
                actions=["sqs:SendMessage"],
                resources=[dead_letter_queue.queue_arn],
            )
        )
        routing_key.grant_read(self.role)
        if policy.securityhub.writeback:
            # Marks paged findings NOTIFIED and adds a note naming the incident (the handler skips it without
            # writeback); nothing else.
            grant_securityhub_writeback(self.role, workflow_status=ROUTER_WORKFLOW_STATUS)
