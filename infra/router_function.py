"""The router Lambda: Python 3.12 on arm64, its log group, and a role that can touch only what it needs."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from findings_router.config import Policy
from infra.definitions import FUNCTION_HANDLER, ResourceNames, function_environment
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
            environment=function_environment(policy, table.table_name),
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
        routing_key.grant_read(self.role)
        if policy.securityhub.writeback:
            # Marks findings NOTIFIED and adds the incident link (the handler skips it without writeback).
            grant_securityhub_writeback(self.role)
