"""Secrets the functions read, referenced by name (or complete ARN), never created here.

Creating a secret in the stack would either put its value into the template (a literal value) or leave an empty
secret that fails at first use. Operators create each one once per account and region (docs/deploy.md), and the
stack only refers to it: the notifier's routing key, and for the ack receiver the webhook signing secret and the
optional PagerDuty REST API key.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

# Secrets Manager appends "-" and six random characters to every secret's ARN. (Not a password: an ARN pattern.)
SECRET_ARN_SUFFIX_WILDCARD = "-??????"  # noqa: S105


class ReferencedSecret(Construct):
    """One existing secret, and the single statement that lets a role read it (`sid` names it in the policy)."""

    def __init__(self, scope: Construct, construct_id: str, *, secret_name_or_arn: str, sid: str) -> None:
        super().__init__(scope, construct_id)
        if secret_name_or_arn.startswith("arn:"):
            # A complete ARN (with its suffix) names exactly one secret; a partial ARN would be ambiguous.
            self.secret = secretsmanager.Secret.from_secret_complete_arn(self, "Secret", secret_name_or_arn)
            self.read_resource = secret_name_or_arn
        else:
            self.secret = secretsmanager.Secret.from_secret_name_v2(self, "Secret", secret_name_or_arn)
            # The ARN of a secret known by name ends in an unknown suffix: match exactly six more characters,
            # so a secret whose name merely starts with this one is not readable.
            self.read_resource = Stack.of(self).format_arn(
                service="secretsmanager",
                resource="secret",
                resource_name=f"{secret_name_or_arn}{SECRET_ARN_SUFFIX_WILDCARD}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        self.secret_name_or_arn = secret_name_or_arn
        self.sid = sid

    def grant_read(self, role: iam.IRole) -> iam.PolicyStatement:
        """GetSecretValue only; `ISecret.grant_read` would add DescribeSecret, which no function calls."""
        statement = iam.PolicyStatement(
            sid=self.sid,
            actions=["secretsmanager:GetSecretValue"],
            resources=[self.read_resource],
        )
        role.add_to_principal_policy(statement)
        return statement


class RoutingKeySecret(ReferencedSecret):
    """The notifier's PagerDuty routing key (read by the router and by the meta-alert function)."""

    def __init__(self, scope: Construct, construct_id: str, *, secret_name_or_arn: str) -> None:
        super().__init__(scope, construct_id, secret_name_or_arn=secret_name_or_arn, sid="ReadRoutingKey")
