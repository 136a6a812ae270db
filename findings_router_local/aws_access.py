"""How the commands that call AWS (status, redrive) open clients and say what is wrong, in one line, as the AWS CLI
users expect: a profile, a region, an endpoint; no traceback for a missing region, credentials or resource."""

from __future__ import annotations

from typing import Any

NOT_FOUND_CODES = frozenset(
    {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)


class AwsAccessError(Exception):
    """A one-line reason a command cannot read or change the deployed stack."""


class AwsClients:
    """Clients of one profile and region, all at one endpoint when given (e.g. a local moto server)."""

    def __init__(self, *, profile: str | None, region: str | None, endpoint_url: str | None) -> None:
        import boto3
        from botocore.exceptions import ProfileNotFound

        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except ProfileNotFound:
            raise AwsAccessError(f"no AWS profile named {profile!r} (aws configure list-profiles)") from None
        self.endpoint_url = endpoint_url

    def client(self, name: str) -> Any:
        try:
            return self.session.client(name, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]
        except Exception as exc:
            raise aws_error(exc, f"an AWS {name} client") from None


def aws_error(exc: Exception, what: str, *, missing: str | None = None) -> AwsAccessError:
    """One line for `exc`, raised while `what`; `missing`: the line when the resource does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, AwsAccessError):
        return exc
    if isinstance(exc, NoCredentialsError):
        return AwsAccessError("no AWS credentials: configure a profile (--profile) or the AWS_* variables")
    if isinstance(exc, NoRegionError):
        return AwsAccessError(
            "no AWS region: pass --region, set AWS_DEFAULT_REGION, or set `region:` in the policy file"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "error")
        if code in NOT_FOUND_CODES or "NonExistentQueue" in code:
            return AwsAccessError(missing or f"no {what}: is the stack deployed in this account and region?")
        return AwsAccessError(f"{code} reading {what}: {error.get('Message', '')}")
    if isinstance(exc, BotoCoreError):  # e.g. the endpoint cannot be reached
        return AwsAccessError(f"reading {what}: {exc}")
    return AwsAccessError(f"reading {what}: {exc}")
