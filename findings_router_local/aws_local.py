"""Local AWS: moto's server on 127.0.0.1 and a driver that feeds SQS to a handler the way Lambda's event source
mapping does (batches, partial batch failures, redelivery, dead-letter after maxReceiveCount)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port for the duration of the block; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call drowns the output
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto's backends are per process, not per server: start from an empty account.
    reset_moto(endpoint)
    try:
        yield endpoint
    finally:
        server.stop()


def reset_moto(endpoint_url: str) -> None:
    import requests

    requests.post(f"{endpoint_url}/moto-api/reset", timeout=10).raise_for_status()


@contextmanager
def local_aws_environment(endpoint_url: str, extra: dict[str, str] | None = None) -> Iterator[None]:
    """Point boto3 (and so the real handler) at moto for the duration of the block, then restore."""
    values = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint_url, **(extra or {})}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class LambdaContext:
    """What Lambda passes as `context`, for local invocations."""

    function_name: str = "findings-router-local"
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 120.0
    function_version: str = "$LATEST"
    aws_request_id: str = "local"
    log_group_name: str = "/aws/lambda/findings-router-local"
    log_stream_name: str = "local"
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:111122223333:function:findings-router-local"
    clock: Callable[[], float] = field(default=lambda: 0.0)
    started: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_seconds - (self.clock() - self.started)) * 1000)


@dataclass
class DrainReport:
    invocations: int = 0
    deleted: int = 0
    failed_receipts: int = 0


class SqsEventSource:
    """Feeds an SQS queue to a handler like Lambda's event source mapping with ReportBatchItemFailures."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Callable[[dict[str, Any], Any], Any],
        *,
        batch_size: int = 10,
        context_factory: Callable[[], Any] = LambdaContext,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.context_factory = context_factory

    def _receive(self) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        return list(response.get("Messages", []))

    @staticmethod
    def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }

    def drain(self, max_invocations: int = 1000) -> DrainReport:
        """Invoke until the queue is empty. Failed messages are made visible again at once (no waiting out the
        visibility timeout), so redelivery and dead-lettering happen within the call."""
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        queue_arn = attrs["QueueArn"]
        region = queue_arn.split(":")[3]
        report = DrainReport()
        while report.invocations < max_invocations:
            messages = self._receive()
            if not messages:
                break
            event = {"Records": [self._record(m, queue_arn, region) for m in messages]}
            report.invocations += 1
            try:
                response = self.handler(event, self.context_factory()) or {}
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except Exception:  # an invocation error fails the whole batch, as in Lambda
                failed = {m["MessageId"] for m in messages}
            for m in messages:
                if m["MessageId"] in failed:
                    report.failed_receipts += 1
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    report.deleted += 1
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return report
