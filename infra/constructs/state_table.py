"""The dedup state table: one item per dedup key, expiring through DynamoDB TTL."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.contract import (
    STATE_TABLE_INDEX_KEYS,
    STATE_TABLE_INDEX_PROJECTED,
    STATE_TABLE_PARTITION_KEY,
    STATE_TABLE_TIME_INDEX,
    STATE_TABLE_TTL_ATTRIBUTE,
)


class StateTable(Construct):
    """`table_name` (ResourceNames.state_table); `retain` (production): deletion protection, and the table outlives
    the stack.

    Its one global secondary index, the time index (contract.STATE_TABLE_TIME_INDEX), is sparse: only the silences
    and the episodes owing a page a silence held back carry its keys. Adding it to a deployed table is an in-place
    update (CloudFormation creates at most one GSI per table update: this is the one), the table stays available
    while DynamoDB backfills it."""

    def __init__(self, scope: Construct, construct_id: str, *, table_name: str, retain: bool) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name=STATE_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            # Finding traffic is bursty (a new standard or a scan can emit thousands of findings at once).
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=STATE_TABLE_TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # AWS managed key: encryption use shows up in CloudTrail, with no key of ours to manage.
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            # Losing the table loses which incidents are open: re-pages, and resolves that never come.
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        partition, sort = STATE_TABLE_INDEX_KEYS
        self.table.add_global_secondary_index(
            index_name=STATE_TABLE_TIME_INDEX,
            partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(STATE_TABLE_INDEX_PROJECTED),
        )

    @property
    def time_index_arn(self) -> str:
        """The time index's ARN (what a Query on it is authorized on)."""
        return f"{self.table.table_arn}/index/{STATE_TABLE_TIME_INDEX}"
