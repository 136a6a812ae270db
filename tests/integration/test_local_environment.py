"""`LocalEnvironment`: the one local stack the demo, these tests and the benches run on."""

from __future__ import annotations

import json
import os

import pytest
import requests

from findings_router.entrypoints import route_findings as router_handler
from findings_router.settings.load import load_policy
from findings_router_local.environment import (
    FAST_RETRY,
    LOCAL_EVENTS_PER_MINUTE,
    LocalEnvironment,
    local_policy_data,
    shipped_policy_data,
)
from infra.derived import queue_settings
from tests.builders import CONFIG_DIR, FakeLambdaContext, asff, event, sqs_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_the_policy_rewrite_changes_only_what_it_is_asked_to():
    shipped = shipped_policy_data(CONFIG_DIR / "prod.yaml")
    before = json.dumps(shipped, sort_keys=True, default=str)
    plain = local_policy_data(shipped)
    assert plain["pacing"]["events_per_minute"] == LOCAL_EVENTS_PER_MINUTE
    assert plain["notifier"] == shipped["notifier"] and plain["accounts"] == shipped["accounts"]
    local = local_policy_data(
        shipped,
        events_url="http://127.0.0.1:9/v2/enqueue",
        routing_key_secret="local/key",
        fast_retries=True,
        accounts=["*"],
        acknowledgements={"mode": "none"},
    )
    assert local["notifier"]["events_url"] == "http://127.0.0.1:9/v2/enqueue"
    assert local["notifier"]["routing_key_secret"] == "local/key"
    assert local["notifier"]["retry"] == FAST_RETRY
    assert local["accounts"] == ["*"] and local["acknowledgements"] == {"mode": "none"}
    assert json.dumps(shipped, sort_keys=True, default=str) == before  # the input is left alone


def test_it_creates_the_stack_on_loopback_and_leaves_nothing_behind(tmp_path):
    names = ("POLICY_FILE", "STATE_TABLE_NAME", "DEAD_LETTER_QUEUE_URL", "AWS_ENDPOINT_URL")
    saved = {name: os.environ.get(name) for name in names}
    with LocalEnvironment(
        CONFIG_DIR / "dev.yaml", workdir=tmp_path, signing_secret="s3cret", queue_attributes={"VisibilityTimeout": "0"}
    ) as local:
        assert local.endpoint.startswith("http://127.0.0.1:")
        assert local.receiver is not None and local.receiver.url.startswith("http://127.0.0.1:")
        policy = load_policy(local.policy_file)
        assert local.policy_file.parent == tmp_path and policy.notifier.events_url == local.receiver.url
        # As the stack names and configures them.
        assert os.environ["STATE_TABLE_NAME"] == local.table == local.names.state_table
        ttl = local.dynamodb.describe_time_to_live(TableName=local.table)["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert os.environ["DEAD_LETTER_QUEUE_URL"] == local.dlq_url
        attributes = local.sqs.get_queue_attributes(QueueUrl=local.queue_url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert int(redrive["maxReceiveCount"]) == queue_settings(policy).max_receive_count
        assert attributes["VisibilityTimeout"] == "0"  # the caller's override
        key = local.secrets.get_secret_value(SecretId=policy.notifier.routing_key_secret)["SecretString"]
        assert json.loads(key) == {"routing_key": local.routing_key}
        assert policy.acknowledgements.signing_secret is not None
        signing = local.secrets.get_secret_value(SecretId=policy.acknowledgements.signing_secret)["SecretString"]
        assert signing == "s3cret"
        # A runtime built through bootstrap and installed: the day's first finding reaches the receiver.
        runtime = local.new_router_runtime()
        assert router_handler.get_runtime() is runtime and runtime.writeback is local.securityhub
        finding = asff(severity="CRITICAL", account=policy.accounts[0])
        assert router_handler.lambda_handler(sqs_event(event(finding)), FakeLambdaContext()) == {
            "batchItemFailures": []
        }
        assert local.receiver.accepted and local.state_items()
        endpoint, receiver_url = local.endpoint, local.receiver.url
    assert {name: os.environ.get(name) for name in names} == saved
    assert router_handler.runtime_slot.current is None
    for url in (endpoint, receiver_url):
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
