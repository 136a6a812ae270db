"""boto3 clients for LocalStack (the test process's own; the functions make theirs from AWS_ENDPOINT_URL)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from tests.e2e.harness.localstack import ENDPOINT, REGION

ACCOUNT = "000000000000"  # LocalStack's account for the access key "test"


class Aws:
    def __init__(self, region: str = REGION, endpoint: str = ENDPOINT) -> None:
        self.region = region
        self.endpoint = endpoint
        self.account = ACCOUNT
        self._session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=region
        )
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # a boto3 session is not thread-safe; its clients are

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                make: Any = self._session.client  # typed per service name; any name here
                self._clients[service] = make(service, endpoint_url=self.endpoint, config=self._config)
            return self._clients[service]
