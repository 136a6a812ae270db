"""One environment's stack on this machine: what `findings-router demo`, the integration tests and the benches run on.

`LocalEnvironment` is a context manager. On entry it

* starts moto's server and the local PagerDuty receiver on 127.0.0.1, or uses ones already running (a caller may
  also send events to another endpoint instead of a receiver);
* creates in moto what the environment's stack creates, from the definitions the CDK constructs use
  (`infra.contract`, `infra.derived`): the state table and its TTL, the findings queue and its dead-letter queue,
  the routing-key secret and the webhook signing secret;
* writes the one local rewrite of the policy (`local_policy_data`): events to the local endpoint, unpaced, and as
  the caller asks another routing-key secret, millisecond retries, other accounts or acknowledgements;
* sets the functions' environment variables (`infra.contract.function_environment`, the policy file being the
  rewrite).

`new_router_runtime` and `new_ack_runtime` then build runtimes through `findings_router.bootstrap`, with the caller's
twins, and install them in the entry points. On exit the runtimes are uninstalled, the variables restored and
everything started here stopped.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from findings_router.adapters.memory import RecordingSecurityHub
from findings_router.adapters.state_table import DynamoDedupStore
from findings_router.bootstrap import AckRuntime, RouterRuntime, RuntimeEnv, build_ack_receiver, build_router
from findings_router.domain.acks import is_finding_key
from findings_router.settings.load import load_policy
from findings_router.settings.schema import JsmNotifierConfig, Policy, WebhookNotifierConfig
from findings_router_local.aws_local import local_aws_environment, moto_server, reset_moto
from findings_router_local.fakes.jsm import JsmReceiver
from findings_router_local.fakes.pagerduty import PagerDutyReceiver
from findings_router_local.fakes.webhook import WebhookReceiver
from infra.contract import (
    ResourceNames,
    function_environment,
    resource_names,
    state_table_definition,
    state_table_ttl_specification,
)
from infra.derived import QueueSettings, queue_settings

LOCAL_ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"  # a stand-in integration key (32 alphanumerics)
# The other services' stand-in keys: the meta-alerts' own service and the canary's (the receiver tells them apart).
LOCAL_META_ROUTING_KEY = "R0UT1NGKEY00000000000000000META1"
LOCAL_CANARY_ROUTING_KEY = "R0UT1NGKEY0000000000000000CANRY1"
# The stand-ins' credentials for the other targets (routing per rule): JSM's API key and its webhook token, and
# every signed webhook's `whsec_` secret (base64 of 24 bytes, as Standard Webhooks asks).
LOCAL_JSM_API_KEY = "00000000-1111-2222-3333-444455556666"
LOCAL_JSM_TOKEN = "local-jsm-webhook-token"  # noqa: S105  (a local stand-in)
LOCAL_WEBHOOK_SECRET = "whsec_ZmluZGluZ3Mtcm91dGVyLWxvY2FsLXdlYmhvb2sta2V5"  # noqa: S105  (a local stand-in)
# The schema's maximum: the local receiver has no rate limit (pacing has its own tests).
LOCAL_EVENTS_PER_MINUTE = 10_000
# Millisecond delays: a test or bench that makes the endpoint fail does not wait out real backoff.
FAST_RETRY: dict[str, Any] = {"max_attempts": 4, "base_delay_seconds": 0.001, "max_delay_seconds": 0.01}


def shipped_policy_data(path: Path) -> dict[str, Any]:
    """A policy file (config/<env>.yaml) as data, to rewrite."""
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def local_policy_data(
    data: Mapping[str, Any],
    *,
    events_url: str | None = None,
    routing_key_secret: str | None = None,
    fast_retries: bool = False,
    accounts: Sequence[str] | None = None,
    acknowledgements: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The policy as this machine runs it: always unpaced; events to `events_url`; the routing key in
    `routing_key_secret`; `FAST_RETRY`; only `accounts`; `acknowledgements` instead of the policy's (each when given)."""
    out = copy.deepcopy(dict(data))
    out["pacing"] = {**out.get("pacing", {}), "events_per_minute": LOCAL_EVENTS_PER_MINUTE}
    notifier = out.setdefault("notifier", {})
    if events_url is not None:
        notifier["events_url"] = events_url
    if routing_key_secret is not None:
        notifier["routing_key_secret"] = routing_key_secret
    if fast_retries:
        notifier["retry"] = dict(FAST_RETRY)
    if accounts is not None:
        out["accounts"] = list(accounts)
    if acknowledgements is not None:
        out["acknowledgements"] = dict(acknowledgements)
    return out


class LocalEnvironment:
    """One environment's stack in moto, its policy rewritten for this machine, and its runtimes (see the module
    docstring). After entry: `policy` (the rewrite, loaded), `names`, `endpoint`, `receiver` (None when events go to
    `events_url` elsewhere), boto3 clients `dynamodb`, `sqs`, `secrets`, and `queue_url`, `dlq_url`."""

    def __init__(
        self,
        policy: Path | Mapping[str, Any],
        *,
        # servers: started here unless given
        endpoint: str | None = None,
        reset: bool = False,
        receiver: PagerDutyReceiver | None = None,
        events_url: str | None = None,
        workdir: Path | None = None,
        # the policy rewrite (local_policy_data)
        routing_key_secret: str | None = None,
        fast_retries: bool = False,
        accounts: Sequence[str] | None = None,
        acknowledgements: Mapping[str, Any] | None = None,
        # resources: the stack's names and settings unless given
        routing_key: str = LOCAL_ROUTING_KEY,
        signing_secret: str | None = None,
        table: str | None = None,
        queues: bool = True,
        queue: str | None = None,
        dead_letter_queue: str | None = None,
        max_receive_count: int | None = None,
        queue_attributes: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        # bootstrap arguments every new router runtime gets (each call may override them)
        router_adapters: Mapping[str, Any] | None = None,
        # stand-ins for the policy's other notifiers (started here when the policy has such notifiers)
        jsm: JsmReceiver | None = None,
        webhooks: Mapping[str, WebhookReceiver] | None = None,
        target_urls: Mapping[str, str] | None = None,
    ) -> None:
        """`policy`: a shipped policy file or its data. `endpoint`: a moto server already running (`reset` it
        first); `receiver`: a PagerDuty receiver already running (shared: not reset or stopped here); `events_url`:
        send there instead, with no receiver. `workdir`: where the policy rewrite is written (default: a temporary
        directory). `signing_secret`: the webhook signing secret's value, created under the name the policy gives.
        `queues`: create the findings queue and its DLQ (named `queue`, `dead_letter_queue`; `max_receive_count`
        and `queue_attributes` override the stack's settings). `environ`: more variables for the functions."""
        self._source = policy
        self._endpoint = endpoint
        self._reset = reset
        self._receiver = receiver
        self._events_url = events_url
        self._workdir = workdir
        self._rewrite: dict[str, Any] = {
            "routing_key_secret": routing_key_secret,
            "fast_retries": fast_retries,
            "accounts": accounts,
            "acknowledgements": acknowledgements,
        }
        self.routing_key = routing_key
        self._signing_secret = signing_secret
        self._table = table
        self._queues = queues
        self._queue = queue
        self._dead_letter_queue = dead_letter_queue
        self._max_receive_count = max_receive_count
        self._queue_attributes = dict(queue_attributes or {})
        self._environ = dict(environ or {})
        self._router_adapters = dict(router_adapters or {})
        self.jsm = jsm
        self.webhooks: dict[str, WebhookReceiver] = dict(webhooks or {})
        self._target_urls_given = dict(target_urls or {})  # notifier name → an endpoint elsewhere: no stand-in
        # moto has no BatchUpdateFindings: the Security Hub write-back lands in this recording twin.
        self.securityhub = RecordingSecurityHub()
        self._stack: contextlib.ExitStack | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            self._start(stack)
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def _start(self, stack: contextlib.ExitStack) -> None:
        import boto3

        if self._endpoint is None:
            self.endpoint = stack.enter_context(moto_server())
        else:
            self.endpoint = self._endpoint
            if self._reset:
                reset_moto(self.endpoint)
        self.receiver: PagerDutyReceiver | None = None
        if self._events_url is None:
            self.receiver = self._receiver or stack.enter_context(PagerDutyReceiver())
        self.events_url = self._events_url or (self.receiver.url if self.receiver is not None else "")
        workdir = self._workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="findings-router-")))
        self._start_target_stand_ins(stack)
        self.policy_file = self._write_policy(workdir)
        self.policy: Policy = load_policy(self.policy_file)
        self.names: ResourceNames = resource_names(self.policy)
        self.queue_settings: QueueSettings = queue_settings(self.policy)
        self.table = self._table or self.names.state_table
        # DEAD_LETTER_QUEUE_URL is known once the queue exists; listed here so that it is restored on exit.
        variables = function_environment(self.policy, self.table, dead_letter_queue_url="")
        variables.update({"POLICY_FILE": str(self.policy_file), **self._environ})
        stack.enter_context(local_aws_environment(self.endpoint, variables))
        stack.callback(self._uninstall)
        self._uninstall()  # nothing from a previous environment: runtimes, cached secrets
        # Typed as Any: the stubs' literal key types do not accept the plain dicts infra.contract's definitions return.
        self.dynamodb: Any = boto3.client("dynamodb")
        self.sqs: Any = boto3.client("sqs")
        self.secrets: Any = boto3.client("secretsmanager")
        self._create_table()
        self.queue_url = self.dlq_url = ""
        if self._queues:
            self._create_queues()
        self._create_secrets()

    def _source_data(self) -> Mapping[str, Any]:
        source = self._source
        return shipped_policy_data(source) if isinstance(source, Path) else source

    def _start_target_stand_ins(self, stack: contextlib.ExitStack) -> None:
        """A JSM stand-in and one webhook receiver per webhook notifier the policy names, unless given."""
        for name, config in dict(self._source_data().get("notifiers") or {}).items():
            if name in self._target_urls_given:
                continue
            if config.get("type") == "jsm" and self.jsm is None:
                self.jsm = stack.enter_context(JsmReceiver(api_keys={LOCAL_JSM_API_KEY}))
            elif config.get("type") == "webhook" and name not in self.webhooks:
                kind = config.get("format", "standard")
                secret = LOCAL_WEBHOOK_SECRET if kind == "standard" else None
                self.webhooks[name] = stack.enter_context(WebhookReceiver(secret, format=kind))

    def _target_urls(self, data: dict[str, Any]) -> None:
        """The policy's JSM and webhook notifiers pointed at their stand-ins (in the rewrite)."""
        for name, config in (data.get("notifiers") or {}).items():
            if name in self._target_urls_given:
                url = self._target_urls_given[name]
                if config.get("type") == "jsm":
                    config["api_url"] = url
                elif config.get("url"):
                    config["url"] = url  # else the URL is the secret's value (_target_secrets)
                continue
            if config.get("type") == "jsm" and self.jsm is not None:
                config["api_url"] = self.jsm.base_url
            elif config.get("type") == "webhook" and name in self.webhooks and config.get("url"):
                config["url"] = self.webhooks[name].url

    def _write_policy(self, workdir: Path) -> Path:
        data = self._source_data()
        rewritten = local_policy_data(data, events_url=self.events_url or None, **self._rewrite)
        self._target_urls(rewritten)
        path = workdir / f"{rewritten['environment']}.yaml"
        path.write_text(yaml.safe_dump(rewritten), encoding="utf-8")
        return path

    def _create_table(self) -> None:
        self.dynamodb.create_table(**state_table_definition(self.table))
        self.dynamodb.update_time_to_live(TableName=self.table, TimeToLiveSpecification=state_table_ttl_specification())

    def _create_queues(self) -> None:
        settings = self.queue_settings
        self.dlq_url = self.sqs.create_queue(
            QueueName=self._dead_letter_queue or self.names.dead_letter_queue,
            Attributes=settings.dead_letter_queue_attributes(),
        )["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes = settings.queue_attributes(dlq_arn)
        if self._max_receive_count is not None:
            redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self._max_receive_count}
            attributes["RedrivePolicy"] = json.dumps(redrive)
        attributes.update(self._queue_attributes)
        self.queue_url = self.sqs.create_queue(QueueName=self._queue or self.names.queue, Attributes=attributes)[
            "QueueUrl"
        ]
        os.environ["DEAD_LETTER_QUEUE_URL"] = self.dlq_url  # as the stack sets it: refused deliveries parked at once

    def _create_secrets(self) -> None:
        for name, key in (
            (self.policy.notifier.routing_key_secret, self.routing_key),
            (self.policy.monitoring.meta_alert_routing_key_secret, LOCAL_META_ROUTING_KEY),
            (self.policy.canary.routing_key_secret, LOCAL_CANARY_ROUTING_KEY),
        ):
            if name is not None:
                self.secrets.create_secret(Name=name, SecretString=json.dumps({"routing_key": key}))
        for name, value in self._target_secrets():
            self.secrets.create_secret(Name=name, SecretString=value)
        signing_secret_name = self.policy.acknowledgements.signing_secret
        if signing_secret_name and self._signing_secret is not None:
            self.secrets.create_secret(Name=signing_secret_name, SecretString=self._signing_secret)

    def _target_secrets(self) -> list[tuple[str, str]]:
        """(secret name, value) of what the other notifiers and JSM's webhook read, as their stand-ins expect."""
        policy = self.policy
        out: list[tuple[str, str]] = []
        if policy.acknowledgements.jsm_token_secret:
            out.append((policy.acknowledgements.jsm_token_secret, LOCAL_JSM_TOKEN))
        for name, config in policy.notifiers.items():
            if isinstance(config, JsmNotifierConfig):
                out.append((config.api_key_secret, LOCAL_JSM_API_KEY))
            elif isinstance(config, WebhookNotifierConfig):
                if config.url_secret is not None:
                    given = self._target_urls_given.get(name)
                    out.append((config.url_secret, given or self.webhooks[name].url))
                if config.signing_secret is not None:
                    out.append((config.signing_secret, LOCAL_WEBHOOK_SECRET))
            else:
                out.append((config.routing_key_secret, json.dumps({"routing_key": self.routing_key})))
        return out

    @staticmethod
    def _uninstall() -> None:
        from aws_lambda_powertools.utilities import parameters

        from findings_router.entrypoints import receive_acks, route_findings

        clear_caches: Callable[[], None] = parameters.clear_caches  # untyped in Powertools
        route_findings.reset_runtime()
        receive_acks.reset_runtime()
        clear_caches()  # the routing key and signing secret of this environment

    # ------------------------------------------------------------------------------------------ runtimes

    def _bootstrap_defaults(self, adapters: Mapping[str, Any]) -> tuple[RuntimeEnv, dict[str, Any]]:
        """The function's environment and the arguments every runtime gets: the policy as the file now says (a test
        may rewrite it), and Security Hub as the recording twin when the policy writes back."""
        env = RuntimeEnv.from_environ()
        policy = adapters.get("policy") or load_policy(env.policy_file)
        return env, {"policy": policy, "securityhub": self.securityhub if policy.securityhub.writeback else None}

    def new_router_runtime(self, **adapters: Any) -> RouterRuntime:
        """A new router runtime, as a fresh execution environment builds it (rereading the policy file), with any
        `adapters` given (bootstrap.build_router's arguments); installed in the router's entry point."""
        from findings_router.entrypoints import route_findings

        env, defaults = self._bootstrap_defaults(adapters)
        runtime = build_router(env, **{**defaults, **self._router_adapters, **adapters})
        route_findings.install(runtime)
        return runtime

    def new_ack_runtime(self, **adapters: Any) -> AckRuntime:
        """The same for the ack receiver (bootstrap.build_ack_receiver's arguments)."""
        from findings_router.entrypoints import receive_acks

        env, defaults = self._bootstrap_defaults(adapters)
        runtime = build_ack_receiver(env, **{**defaults, **adapters})
        receive_acks.install(runtime)
        return runtime

    # ------------------------------------------------------------------------------------------ what is stored

    def real_store(self) -> DynamoDedupStore:
        """The state table as the router's default adapter reaches it (for wrapping in a fault injector)."""
        return DynamoDedupStore(self.table, self.dynamodb)

    def state_items(self) -> list[dict[str, Any]]:
        """Dedup items only (storm counters and idempotency records share the table)."""
        items = self.dynamodb.scan(TableName=self.table)["Items"]
        return [i for i in items if is_finding_key(i["pk"]["S"]) and "#" not in i["pk"]["S"]]

    def dlq_messages(self) -> list[dict[str, Any]]:
        """Up to 10 messages of the dead-letter queue (they become visible again after its visibility timeout)."""
        out = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        return list(out.get("Messages", []))
