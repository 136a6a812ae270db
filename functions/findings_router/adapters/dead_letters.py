"""The router's dead-letter queue, written directly: a message that can never succeed is parked at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class DeadLetterParking:
    """Sends a message that can never succeed straight to the dead-letter queue, body unchanged (so a redrive works)."""

    def __init__(self, queue_url: str, client: SQSClient) -> None:
        self.queue_url = queue_url
        self.client = client

    def park(self, record: SQSRecord, reason: str, error: str) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=record.body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason},
                "error": {"DataType": "String", "StringValue": error[:1000] or "-"},
                "source_message_id": {"DataType": "String", "StringValue": record.message_id or "-"},
            },
        )
