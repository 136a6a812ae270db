"""The silence sweep: a scheduled function that pages what a silence held back, once the silence has ended or was
expired, if the finding is still active and the current policy still pages it (functions/findings_router/service/
sweep.py, docs/dedup.md "Silences"). Every `silences.sweep_minutes`, in every environment.

Its own role, least privilege: Query on the state table's time index only (the owed episodes and the silences, never
a scan); the state items of findings' episodes (and the storm counters a page held back is counted in) by
`dynamodb:LeadingKeys`, never a silence's item; the notifiers' secrets; the Security Hub write-back of a page (NOTIFIED
and a note), as the router's.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.ack_receiver import leading_keys_condition
from infra.constructs.function import FunctionSpec, LambdaFunction, grant_securityhub_writeback
from infra.contract import ROUTER_WORKFLOW_STATUS, SILENCE_KEY_PATTERN, STATE_KEY_PATTERN

# Consistent reads of the owed episodes (BatchGetItem; GetItem), their conditional writes (PutItem), and the storm
# counters' atomic ADD (UpdateItem), all on `fr1-…` items other than silences.
SWEEP_STATE_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
SWEEP_INDEX_ACTIONS = ("dynamodb:Query",)


@dataclass(frozen=True)
class SilenceSweepSettings:
    """silences.* and securityhub.writeback of the policy, computed by infra/stack.py."""

    schedule_name: str
    sweep_minutes: int
    description: str
    securityhub_writeback: bool


class SilenceSweep(LambdaFunction):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        code: lambda_.Code,
        settings: SilenceSweepSettings,
        table: dynamodb.ITable,
        time_index_arn: str,
    ) -> None:
        super().__init__(scope, construct_id, spec=spec, code=code)
        self.role.add_to_policy(
            iam.PolicyStatement(sid="QueryTimeIndex", actions=list(SWEEP_INDEX_ACTIONS), resources=[time_index_arn])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="OwedEpisodes",
                actions=list(SWEEP_STATE_ACTIONS),
                resources=[table.table_arn],
                conditions=leading_keys_condition(STATE_KEY_PATTERN, not_like=SILENCE_KEY_PATTERN),
            )
        )
        if settings.securityhub_writeback:
            grant_securityhub_writeback(self.role, workflow_status=ROUTER_WORKFLOW_STATUS)
        # A run that could not start in time is superseded by the next one, which sees the same work.
        self.schedule = self.run_every(
            rule_name=settings.schedule_name,
            description=settings.description,
            every=Duration.minutes(settings.sweep_minutes),
            retry_attempts=0,
            max_event_age=Duration.minutes(max(1, settings.sweep_minutes)),
        )
