"""The CloudFormation resource `AWS::SecurityHub::ActionTarget` for localstack-core, which has none.

Without it LocalStack deploys the resource as a placeholder ("not supported but was deployed as a fallback"): its
`ActionTargetArn` is the string "unknown", so the ingestion rule would wait for custom action events of an action
called "unknown". This provider creates the action in the Security Hub stub (`securityhub.py`), whose ARN
(`arn:aws:securityhub:<region>:<account>:action/custom/<Id>`) the rule then names, as in AWS.
"""

from __future__ import annotations

from typing import Any

from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)

# The parts of the resource type's schema LocalStack reads (identifiers, read-only and create-only properties).
SCHEMA = {
    "typeName": "AWS::SecurityHub::ActionTarget",
    "properties": {
        "Name": {"type": "string"},
        "Description": {"type": "string"},
        "Id": {"type": "string"},
        "ActionTargetArn": {"type": "string"},
    },
    "required": ["Name", "Description", "Id"],
    "createOnlyProperties": ["/properties/Id"],
    "readOnlyProperties": ["/properties/ActionTargetArn"],
    "primaryIdentifier": ["/properties/ActionTargetArn"],
    "additionalProperties": False,
}


class SecurityHubActionTargetProvider(ResourceProvider[dict[str, Any]]):
    TYPE = "AWS::SecurityHub::ActionTarget"
    SCHEMA = SCHEMA

    def create(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.desired_state
        response = request.aws_client_factory.securityhub.create_action_target(
            Name=model["Name"], Description=model["Description"], Id=model["Id"]
        )
        model["ActionTargetArn"] = response["ActionTargetArn"]
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def read(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        arn = request.desired_state["ActionTargetArn"]
        targets = request.aws_client_factory.securityhub.describe_action_targets(ActionTargetArns=[arn])
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=targets["ActionTargets"][0])

    def update(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.desired_state
        model["ActionTargetArn"] = request.previous_state["ActionTargetArn"]
        request.aws_client_factory.securityhub.update_action_target(
            ActionTargetArn=model["ActionTargetArn"], Name=model["Name"], Description=model["Description"]
        )
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def delete(self, request: ResourceRequest[dict[str, Any]]) -> ProgressEvent[dict[str, Any]]:
        model = request.desired_state
        request.aws_client_factory.securityhub.delete_action_target(ActionTargetArn=model["ActionTargetArn"])
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)


class SecurityHubActionTargetProviderPlugin(CloudFormationResourceProviderPlugin):
    name = "AWS::SecurityHub::ActionTarget"

    def __init__(self) -> None:
        self.factory: type[ResourceProvider[Any]] | None = None

    def load(self) -> None:
        self.factory = SecurityHubActionTargetProvider
