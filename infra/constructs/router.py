"""The router Lambda: Python 3.12 on arm64, its log group, and a role that can touch only what it needs."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.function import FunctionSpec, LambdaFunction, grant_securityhub_writeback
from infra.constructs.secrets import RoutingKeySecret
from infra.contract import ROUTER_WORKFLOW_STATUS

# The dedup store (adapters/state_table.py) reads in batches (BatchGetItem) and writes conditionally (PutItem); GetItem/UpdateItem cover single-item
# reads and in-place updates of a dedup record. No Scan or DeleteItem: nothing here needs them.
STATE_TABLE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
# The silences in effect (adapters/silences.py): one Query of the time index, at most every half minute per container.
TIME_INDEX_ACTIONS = ("dynamodb:Query",)


class RouterFunction(LambdaFunction):
    """`spec`: the router's FunctionSpec (its environment names `table` and `dead_letter_queue`);
    `securityhub_writeback`: securityhub.writeback."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        code: lambda_.Code,
        table: dynamodb.ITable,
        routing_key: RoutingKeySecret,
        dead_letter_queue: sqs.IQueue,
        securityhub_writeback: bool,
        time_index_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, spec=spec, code=code)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DedupStateReadWrite",
                actions=list(STATE_TABLE_ACTIONS),
                resources=[table.table_arn],
            )
        )
        if time_index_arn is not None:
            self.role.add_to_policy(
                iam.PolicyStatement(sid="ReadSilences", actions=list(TIME_INDEX_ACTIONS), resources=[time_index_arn])
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
        if securityhub_writeback:
            # Marks paged findings NOTIFIED and adds a note naming the incident (the handler skips it without
            # writeback); nothing else.
            grant_securityhub_writeback(self.role, workflow_status=ROUTER_WORKFLOW_STATUS)
