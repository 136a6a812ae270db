"""The one composition root: every runtime (router, ack receiver, meta-alerts, canary) is built here.

Each `build_*` takes the function's environment (`RuntimeEnv`, read from the variables infra sets) and optional
adapters; what is not passed is the real thing (DynamoDB, Security Hub, Secrets Manager, the PagerDuty Events API).
Tests, the demo and the benches pass their twins here, and install the result in the entry point
(`route_findings.install(runtime)`): nothing is patched after construction.

Lambda runs init with burst CPU, whereas an invocation of a 256 MB function gets about a seventh of a vCPU:
importing boto3, creating clients and validating the policy take several times longer there and delay the first
page. `build_during_init` therefore builds the runtime at import time when running in Lambda with a policy;
elsewhere (tests, demo, replay) runtimes are built on first use, after the environment is set up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from findings_router.domain.keys import ack_idempotency_prefix
from findings_router.domain.policy import CompiledPolicy
from findings_router.settings.load import load_policy
from findings_router.settings.schema import Policy

if TYPE_CHECKING:
    from findings_router.adapters.canary_log import CanaryLog
    from findings_router.adapters.dead_letters import DeadLetterParking
    from findings_router.adapters.securityhub import SecurityHubWriteback
    from findings_router.adapters.silences import OwedIndex, SilenceSource
    from findings_router.adapters.state_table import DedupStore
    from findings_router.adapters.storm_counter import StormCounter
    from findings_router.notify import Notifier
    from findings_router.notify.pagerduty.client import PagerDutyNotifier
    from findings_router.notify.retry import Retrier, RetryPolicy, TokenBucket
    from findings_router.service.acknowledge import AckProcessor, AlertKeyLookup
    from findings_router.service.canary import CanaryProbe, Heartbeat
    from findings_router.service.route import FindingsRouter


class _Default:
    """Marks an adapter argument not given: build the real one (None means "none at all")."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


@dataclass(frozen=True, slots=True)
class RuntimeEnv:
    """The variables a function reads (infra/contract.py sets them): nothing else is read from the environment."""

    policy_file: str
    state_table: str = ""
    events_url: str | None = None  # EVENTS_URL: local runs point the notifier at a stand-in
    dead_letter_queue_url: str | None = None  # DEAD_LETTER_QUEUE_URL: the router parks what can never succeed
    function_name: str = "local"  # AWS_LAMBDA_FUNCTION_NAME
    # NOTIFIER_URLS (JSON: notifier name → URL): local runs point the policy's other notifiers at stand-ins too
    # (a JSM notifier's api_url, a webhook's url); never set by the stack.
    notifier_urls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    report_bucket: str | None = None  # REPORT_BUCKET: the PSIRT digest's reports
    region: str | None = None  # AWS_REGION, which Lambda sets

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> RuntimeEnv:
        env = os.environ if environ is None else environ
        return cls(
            policy_file=env["POLICY_FILE"],
            state_table=env.get("STATE_TABLE_NAME", ""),
            events_url=env.get("EVENTS_URL") or None,
            dead_letter_queue_url=env.get("DEAD_LETTER_QUEUE_URL") or None,
            function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
            notifier_urls=_notifier_urls(env.get("NOTIFIER_URLS")),
            report_bucket=env.get("REPORT_BUCKET") or None,
            region=env.get("AWS_REGION") or None,
        )


def _notifier_urls(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        urls = json.loads(text)
    except ValueError:
        urls = None
    if not isinstance(urls, dict) or not all(isinstance(v, str) for v in urls.values()):
        raise ValueError("NOTIFIER_URLS must be a JSON object of notifier name → URL")
    return {str(k): v for k, v in urls.items()}


def in_lambda_with_policy() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("POLICY_FILE"))


def build_during_init(build: Callable[[], object]) -> None:
    """Call `build` now when running in Lambda with a policy (see the module docstring)."""
    if in_lambda_with_policy():
        build()


class _HasPolicy(Protocol):
    @property
    def policy(self) -> Policy: ...


R = TypeVar("R", bound=_HasPolicy)


class RuntimeSlot(Generic[R]):
    """An entry point's runtime: built from the function's environment at first use (or during init in Lambda), or
    installed by a test, the demo or a bench. `metrics` (Powertools) get the environment as a default dimension."""

    def __init__(self, build: Callable[[RuntimeEnv], R], metrics: Any = None) -> None:
        self._build = build
        self._metrics = metrics
        self.current: R | None = None

    def get(self) -> R:
        if self.current is None:
            self.install(self._build(RuntimeEnv.from_environ()))
        assert self.current is not None
        return self.current

    def install(self, runtime: R | None) -> None:
        """Use `runtime` from now on; None: build it again from the environment at the next use."""
        self.current = runtime
        if self._metrics is None:
            return
        if runtime is None:
            self._metrics.clear_default_dimensions()
            self._metrics.clear_metrics()
        else:
            self._metrics.set_default_dimensions(environment=runtime.policy.environment)


class InvocationTime:
    """What is left of the current Lambda invocation; read by the notifier's retry budget."""

    def __init__(self) -> None:
        self._context: Any = None

    def begin(self, context: Any) -> None:
        self._context = context

    def remaining(self) -> float:
        if self._context is None:
            return float("inf")
        return float(self._context.get_remaining_time_in_millis()) / 1000


# ------------------------------------------------------------------------------------------ shared pieces


def _aws_config(**options: Any) -> Any:
    from botocore.config import Config

    return Config(**options)


def _client(service: str, config: Any) -> Any:
    import boto3

    make: Any = boto3.client  # the service name is a variable here: no per-service overload applies
    return make(service, config=config)


def _retrier(
    settings: Any, channel: str, invocation: InvocationTime | None = None, pacer: TokenBucket | None = None
) -> Retrier:
    """A notifier's retries as its policy settings (`Retry`, or a `RetryPolicy` as is) say, within the invocation's
    remaining time."""
    from findings_router.notify.retry import Retrier, RetryPolicy

    policy = settings
    if not isinstance(settings, RetryPolicy):
        policy = RetryPolicy(
            settings.max_attempts,
            settings.base_delay_seconds,
            settings.max_delay_seconds,
            settings.budget_seconds,
            settings.timeout_seconds,
        )
    remaining = invocation.remaining if invocation is not None else None
    return Retrier(policy, channel=channel, remaining_seconds=remaining, pacer=pacer)


# Slack's incoming webhooks take about one message a second (api.slack.com/docs/rate-limits).
SLACK_MESSAGES_PER_MINUTE = 60


def target_notifier(
    config: Any, *, invocation: InvocationTime | None = None, session: Any = None, url: str | None = None
) -> Notifier:
    """One of the policy's `notifiers` (PagerDuty, JSM, webhook), its secrets read from Secrets Manager when it sends.
    `url`: a stand-in's, instead of the configured one (RuntimeEnv.notifier_urls)."""
    if url is not None:
        field = {"pagerduty": "events_url", "jsm": "api_url"}.get(config.type, "url")
        config = config.model_copy(update={field: url, **({"url_secret": None} if field == "url" else {})})
    from findings_router.adapters.secrets import routing_key_from_secret, secret_text
    from findings_router.settings.schema import JsmNotifierConfig, PagerDutyNotifierConfig

    if isinstance(config, PagerDutyNotifierConfig):
        from findings_router.notify.pagerduty.client import CHANNEL, PagerDutyNotifier

        name = config.routing_key_secret
        key = lambda: routing_key_from_secret(secret_text(name))  # noqa: E731
        return PagerDutyNotifier(config.events_url, key, _retrier(config.retry, CHANNEL, invocation), session=session)
    if isinstance(config, JsmNotifierConfig):
        from findings_router.notify.jsm.client import CHANNEL as JSM
        from findings_router.notify.jsm.client import JsmNotifier

        api_key_secret = config.api_key_secret
        retrier = _retrier(config.retry, JSM, invocation)
        return JsmNotifier(config.api_url, lambda: secret_text(api_key_secret).strip(), retrier, session=session)
    from findings_router.notify.retry import TokenBucket
    from findings_router.notify.webhook.client import CHANNELS, WebhookNotifier

    url_secret, signing = config.url_secret, config.signing_secret
    endpoint = config.url if config.url is not None else (lambda: secret_text(url_secret).strip())
    pacer = TokenBucket(SLACK_MESSAGES_PER_MINUTE) if config.format == "slack" else None
    return WebhookNotifier(
        endpoint,
        (lambda: secret_text(signing).strip()) if signing else None,
        _retrier(config.retry, CHANNELS[config.format], invocation, pacer),
        format=config.format,
        session=session,
    )


def policy_notifiers(
    policy: Policy,
    primary: Notifier,
    env: RuntimeEnv,
    *,
    invocation: InvocationTime | None = None,
    session: Any = None,
) -> Notifier:
    """`primary` (the policy's `notifier`) alone, or with the policy's other `notifiers` as one `NotifierSet`."""
    if not policy.notifiers:
        return primary
    from findings_router.notify.dispatch import NotifierSet
    from findings_router.settings.schema import PRIMARY_NOTIFIER

    others = {
        name: target_notifier(config, invocation=invocation, session=session, url=env.notifier_urls.get(name))
        for name, config in policy.notifiers.items()
    }
    return NotifierSet({PRIMARY_NOTIFIER: primary, **others}, PRIMARY_NOTIFIER)


def pagerduty_notifier(
    policy: Policy,
    env: RuntimeEnv,
    *,
    retry: RetryPolicy | None = None,
    invocation: InvocationTime | None = None,
    pacer: TokenBucket | None = None,
    session: Any = None,
    routing_key: Callable[[], str] | None = None,
    routing_key_secret: str | None = None,
) -> PagerDutyNotifier:
    """The PagerDuty integration with the environment's routing key (Secrets Manager, read when sending; or
    `routing_key`, e.g. a fixed one for the benches). `routing_key_secret`: another service's key (the canary's,
    the meta-alerts'), through the same endpoint and retries."""
    from findings_router.adapters.secrets import routing_key_from_secret, secret_text
    from findings_router.notify.pagerduty.client import CHANNEL, PagerDutyNotifier

    secret = routing_key_secret or policy.notifier.routing_key_secret
    retrier = _retrier(retry or policy.notifier.retry, CHANNEL, invocation, pacer)
    return PagerDutyNotifier(
        env.events_url or policy.notifier.events_url,
        routing_key or (lambda: routing_key_from_secret(secret_text(secret))),
        retrier,
        session=session,
    )


# ------------------------------------------------------------------------------------------ the router


@dataclass
class RouterRuntime:
    """What an execution environment of the router builds once and reuses across invocations."""

    policy: Policy
    compiled: CompiledPolicy
    store: DedupStore
    notifier: Notifier
    writeback: SecurityHubWriteback | None
    storms: StormCounter | None
    dead_letters: DeadLetterParking | None  # None: a refused (non-retryable) delivery goes back to SQS like any other
    invocation: InvocationTime = dataclasses.field(default_factory=InvocationTime)
    canary: CanaryProbe | None = None  # None: the policy names no canary routing key (canary findings are dropped)
    # The silences in effect, read from the state table (cached per container); None: none are applied.
    silences: SilenceSource | None = None
    # The policy's shadow view (mode shadow, rules with shadow: true): its decisions are made beside the live ones.
    shadow: CompiledPolicy | None = None

    @property
    def retrier(self) -> Retrier | None:
        """The notifier's retrier when it has one (twins have none): its counts feed the DeliveryRetries metric."""
        return getattr(self.notifier, "retrier", None)

    def begin(self, context: Any) -> FindingsRouter:
        """A router for one invocation (its read cache lives as long as the batch)."""
        from findings_router.service.route import FindingsRouter

        self.invocation.begin(context)
        if self.retrier is not None:
            self.retrier.reset_counts()
        return FindingsRouter(
            self.compiled,
            self.store,
            self.notifier,
            self.writeback,
            self.storms,
            self.canary,
            own_account=_account_of(context),
            silences=self.silences,
            shadow=self._shadow_router(),
        )

    def _shadow_router(self) -> FindingsRouter | None:
        if self.shadow is None:
            return None
        from findings_router.service.route import shadow_router

        return shadow_router(self.shadow, self.store)


def _account_of(context: Any) -> str | None:
    """The account in the invoked function's ARN (arn:aws:lambda:<region>:<account>:function:<name>)."""
    parts = str(getattr(context, "invoked_function_arn", "") or "").split(":")
    return parts[4] if len(parts) > 4 and parts[4].isdigit() else None


def build_router(
    env: RuntimeEnv,
    *,
    policy: Policy | None = None,
    store: DedupStore | None = None,
    notifier: Notifier | None = None,
    securityhub: SecurityHubWriteback | None = DEFAULT,
    storms: StormCounter | None = DEFAULT,
    dead_letters: DeadLetterParking | None = DEFAULT,
    pacer: TokenBucket | None = DEFAULT,
    session: Any = None,
    routing_key: Callable[[], str] | None = None,
    canary_log: CanaryLog | None = None,
    canary_notifier: Notifier | None = DEFAULT,
    heartbeat: Heartbeat | None = DEFAULT,
    clock: Callable[[], dt.datetime] | None = None,
    silences: SilenceSource | None = DEFAULT,
) -> RouterRuntime:
    """`canary_notifier`: the canary's own service (default: PagerDuty with canary.routing_key_secret, if any).
    `silences`: default, the state table's (cached per container) when the store is the state table too (no `store`
    given); none when a twin store was given without them."""
    policy = policy or load_policy(env.policy_file)
    invocation = InvocationTime()
    aws = _RouterAws(env, policy)
    session = session if session is not None else LazySession()
    if notifier is None:
        if pacer is DEFAULT:
            from findings_router.notify.retry import TokenBucket

            # Reserved concurrency caps the containers; each takes an equal share of the per-key rate limit.
            pacer = TokenBucket(policy.pacing.events_per_minute / policy.function.reserved_concurrency)
        primary = pagerduty_notifier(
            policy, env, invocation=invocation, pacer=pacer, session=session, routing_key=routing_key
        )
        notifier = policy_notifiers(policy, primary, env, invocation=invocation, session=session)
    return RouterRuntime(
        policy,
        CompiledPolicy(policy),
        store or aws.store(),
        notifier,
        aws.securityhub() if securityhub is DEFAULT else securityhub,
        (aws.storms() if storms is DEFAULT else storms) if policy.storm.enabled else None,
        aws.dead_letters() if dead_letters is DEFAULT else dead_letters,
        invocation,
        canary_probe(
            policy,
            env,
            log=canary_log or aws.canary_log,
            notifier=canary_notifier,
            heartbeat=heartbeat,
            clock=clock,
            invocation=invocation,
            session=session,
        ),
        silences=(aws.silences() if store is None else None) if silences is DEFAULT else silences,
        shadow=CompiledPolicy(policy, shadow=True) if policy.has_shadow else None,
    )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def canary_probe(
    policy: Policy,
    env: RuntimeEnv,
    *,
    log: CanaryLog | Callable[[], CanaryLog],
    notifier: Notifier | None = DEFAULT,
    heartbeat: Heartbeat | None = DEFAULT,
    clock: Callable[[], dt.datetime] | None = None,
    invocation: InvocationTime | None = None,
    session: Any = None,
) -> CanaryProbe | None:
    """The canary's recorder for the router (which pages) and the ack receiver (which sees the webhook); None when
    the policy names no canary routing key. The run completes at the ack receiver when there is one."""
    from findings_router.notify.retry import RetryPolicy
    from findings_router.service.canary import CanaryProbe

    settings = policy.canary
    if settings.routing_key_secret is None:
        return None
    if not hasattr(log, "latest"):
        log = log()
    if notifier is DEFAULT:
        # Few, quick attempts: a canary that cannot page is what the canary alarm is for.
        notifier = pagerduty_notifier(
            policy,
            env,
            retry=RetryPolicy(3, 0.2, 1.0, 5.0, 2.0),
            invocation=invocation,
            session=session,
            routing_key_secret=settings.routing_key_secret,
        )
    if heartbeat is DEFAULT:
        heartbeat = None
        if settings.heartbeat_url_secret is not None:
            from findings_router.adapters.secrets import secret_text
            from findings_router.notify.heartbeat import HttpHeartbeat

            url_secret = settings.heartbeat_url_secret
            heartbeat = HttpHeartbeat(lambda: secret_text(url_secret), session=session)
    return CanaryProbe(
        policy.environment,
        cast("CanaryLog", log),
        notifier=notifier,
        completes_on="delivered" if policy.acknowledgements.mode == "none" else "acknowledged",
        clock=clock or _utc_now,
        heartbeat=heartbeat,
    )


class _RouterAws:
    """The router's real AWS adapters, made only when no twin was given (one DynamoDB client for both)."""

    def __init__(self, env: RuntimeEnv, policy: Policy) -> None:
        self.env, self.policy = env, policy
        self._dynamodb: Any = None

    def _dynamodb_client(self) -> Any:
        if self._dynamodb is None:
            retries = {"mode": "standard", "max_attempts": 5}
            self._dynamodb = _client("dynamodb", _aws_config(retries=retries, connect_timeout=3, read_timeout=5))
        return self._dynamodb

    def store(self) -> DedupStore:
        from findings_router.adapters.state_table import DynamoDedupStore

        return DynamoDedupStore(self.env.state_table, self._dynamodb_client())

    def silences(self) -> SilenceSource:
        from findings_router.adapters.silences import CachedSilences, DynamoSilenceStore

        # The client is made at the first read (a trigger about to be sent): most invocations never read.
        settings = self.policy.silences
        store = DynamoSilenceStore(
            self.env.state_table,
            self._dynamodb_client,
            self.policy.environment,
            retention_days=settings.retention_days,
        )
        return CachedSilences(store)

    def canary_log(self) -> CanaryLog:
        from findings_router.adapters.canary_log import DynamoCanaryLog

        return DynamoCanaryLog(self.env.state_table, self._dynamodb_client)

    def storms(self) -> StormCounter:
        from findings_router.adapters.storm_counter import BufferedStormCounter, DynamoStormCounter

        # Held per container across invocations: a trickle of new findings writes no storm counter.
        counter = DynamoStormCounter(self.env.state_table, self._dynamodb_client())
        return BufferedStormCounter(counter, self.policy.function.reserved_concurrency)

    def securityhub(self) -> SecurityHubWriteback | None:
        if not self.policy.securityhub.writeback:
            return None
        from findings_router.adapters.securityhub import BotoSecurityHub

        config = _aws_config(retries={"mode": "standard", "max_attempts": 6})
        # The client is created at the first write-back (pages are rare; most invocations never need it).
        return BotoSecurityHub(lambda: _client("securityhub", config))

    def dead_letters(self) -> DeadLetterParking | None:
        if not self.env.dead_letter_queue_url:
            return None
        url = self.env.dead_letter_queue_url

        def parking() -> DeadLetterParking:
            from findings_router.adapters.dead_letters import DeadLetterParking

            return DeadLetterParking(url, _client("sqs", _aws_config(retries={"mode": "standard", "max_attempts": 5})))

        # Made at the first message parked: parking is rare, and its SQS client (and Powertools' SQS data classes)
        # would cost every cold start tens of milliseconds of CPU.
        return cast("DeadLetterParking", _ParkWhenNeeded(parking))


class _ParkWhenNeeded:
    """A `DeadLetterParking` made when the first message is parked."""

    def __init__(self, make: Callable[[], DeadLetterParking]) -> None:
        self._make = make
        self._parking: DeadLetterParking | None = None

    def park(self, record: Any, reason: str, error: str) -> None:
        if self._parking is None:
            self._parking = self._make()
        self._parking.park(record, reason, error)


class LazySession:
    """An HTTP session (`requests.Session`) made at the first request: most invocations send nothing, and importing
    requests would cost every cold start about 30 ms of CPU. Shared by the router's notifiers, like one session."""

    def __init__(self) -> None:
        self._session: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            from findings_router.notify.http import new_session

            self._session = new_session()
        return getattr(self._session, name)


# ------------------------------------------------------------------------------------------ the ack receiver

# PagerDuty retries a webhook delivery for up to 48 h; an idempotency record outlives that.
ACK_DEDUP_WINDOW_SECONDS = 3 * 24 * 3600
# The ack receiver's AWS clients: a slow call must fail fast and leave its work in the outbox, not run past the
# answer. (connect s, read s, attempts; botocore's `standard` mode counts the first try among the attempts.)
DYNAMODB_TIMEOUTS = (0.5, 1.0, 3)
SECURITYHUB_TIMEOUTS = (1.0, 1.5, 2)


@dataclass
class AckRuntime:
    policy: Policy
    processor: AckProcessor
    process_once: Any  # the idempotent wrapper around processor.process
    idempotency: Any  # its IdempotencyConfig, told each invocation's context (timeouts release the record)
    signing_secrets: Callable[[], list[bytes]]
    # Tokens a JSM outgoing webhook may present (acknowledgements.jsm_token_secret; several, one per line, while
    # rotating); none: JSM webhooks are refused.
    jsm_tokens: Callable[[], list[str]] = lambda: []


def _tight(connect: float, read: float, attempts: int) -> Any:
    return _aws_config(
        connect_timeout=connect, read_timeout=read, retries={"mode": "standard", "max_attempts": attempts}
    )


def _ack_tables(
    env: RuntimeEnv, policy: Policy, store: DedupStore | None, canary_log: CanaryLog | None
) -> tuple[DedupStore, CanaryLog | None]:
    """The dedup store and (when the policy has a canary) the canary log given, else in the state table, over one
    DynamoDB client with the receiver's tight timeouts."""
    from findings_router.adapters.canary_log import DynamoCanaryLog

    if store is None:
        from findings_router.adapters.state_table import DynamoDedupStore

        dynamodb = _client("dynamodb", _tight(*DYNAMODB_TIMEOUTS))
        store = DynamoDedupStore(env.state_table, dynamodb)
        if canary_log is None:
            canary_log = DynamoCanaryLog(env.state_table, dynamodb)
    elif canary_log is None and policy.canary.routing_key_secret is not None:
        canary_log = DynamoCanaryLog(env.state_table, lambda: _client("dynamodb", _tight(*DYNAMODB_TIMEOUTS)))
    return store, canary_log


def _signing_secrets(policy: Policy) -> Callable[[], list[bytes]]:
    """The PagerDuty webhook subscription's signing secrets (several while rotating), read when a webhook comes."""
    from findings_router.adapters.secrets import secret_text, signing_secrets_from

    name = policy.acknowledgements.signing_secret
    return lambda: signing_secrets_from(secret_text(name)) if name else []


def _jsm_tokens(policy: Policy) -> Callable[[], list[str]]:
    """The tokens a JSM outgoing webhook may present (one per line of the secret, several while rotating)."""
    from findings_router.adapters.secrets import secret_text

    name = policy.acknowledgements.jsm_token_secret
    return lambda: [t.strip() for t in secret_text(name).splitlines() if t.strip()] if name else []


def build_ack_receiver(
    env: RuntimeEnv,
    *,
    policy: Policy | None = None,
    store: DedupStore | None = None,
    securityhub: SecurityHubWriteback | None = DEFAULT,
    notifier: Notifier | None = None,
    alert_keys: AlertKeyLookup | None = DEFAULT,
    signing_secrets: Callable[[], list[bytes]] | None = None,
    canary_log: CanaryLog | None = None,
    heartbeat: Heartbeat | None = DEFAULT,
    jsm_tokens: Callable[[], list[str]] | None = None,
) -> AckRuntime:
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from findings_router.adapters.secrets import secret_text
    from findings_router.domain.acks import IncidentEvent
    from findings_router.notify.retry import RetryPolicy
    from findings_router.service.acknowledge import AckProcessor, Deadline

    policy = policy or load_policy(env.policy_file)
    store, canary_log = _ack_tables(env, policy, store, canary_log)
    if securityhub is DEFAULT:
        securityhub = None
        if policy.securityhub.writeback:
            from findings_router.adapters.securityhub import BotoSecurityHub

            # One round: an unprocessed finding is retried through the outbox and a redelivery, not in line.
            securityhub = BotoSecurityHub(_client("securityhub", _tight(*SECURITYHUB_TIMEOUTS)), max_rounds=1)
    if notifier is None:
        # Sibling incidents of an escalated episode are resolved through the router's own integration, quickly:
        # PagerDuty waits 5 s for the webhook's answer, and what does not fit stays in the outbox.
        primary = pagerduty_notifier(policy, env, retry=RetryPolicy(2, 0.1, 0.3, 2.0, 1.0))
        notifier = policy_notifiers(policy, primary, env)
    if alert_keys is DEFAULT:
        alert_keys = None
        token_secret = policy.acknowledgements.rest_api_token_secret
        if token_secret:
            from findings_router.notify.pagerduty.rest import IncidentAlertKeys

            alert_keys = IncidentAlertKeys(policy.acknowledgements.rest_api_url, lambda: secret_text(token_secret))
    if signing_secrets is None:
        signing_secrets = _signing_secrets(policy)

    processor = AckProcessor(
        store,
        securityhub,
        resolve_workflow_on_operator_resolve=policy.securityhub.resolve_workflow_on_operator_resolve,
        alert_keys=alert_keys,
        notifier=notifier,
        environment=policy.environment,
        in_scope=policy.in_scope,
        canary=None
        if canary_log is None
        else canary_probe(policy, env, log=canary_log, notifier=None, heartbeat=heartbeat),
    )
    # Deliveries are at least once: one idempotency record per webhook id, in the state table.
    persistence = DynamoDBPersistenceLayer(
        table_name=env.state_table, key_attr="pk", expiry_attr="expires_at", boto_config=_tight(*DYNAMODB_TIMEOUTS)
    )
    config = IdempotencyConfig(
        event_key_jmespath="webhook_id",
        expires_after_seconds=ACK_DEDUP_WINDOW_SECONDS,
        # Called only when a stored result is returned instead of running again: a repeated delivery.
        response_hook=lambda response, _record: {**response, "duplicate_delivery": True},
    )

    def process(event: dict[str, Any], deadline: Deadline | None = None) -> dict[str, Any]:
        """Raises `RetryLater` when work is left: the idempotency layer then forgets this run."""
        result = processor.process(IncidentEvent(**event), dt.datetime.now(dt.UTC), deadline)
        return dataclasses.asdict(result) | {"duplicate_delivery": False}

    process_once = idempotent_function(
        data_keyword_argument="event",
        persistence_store=persistence,
        config=config,
        key_prefix=ack_idempotency_prefix(env.function_name),
    )(process)
    return AckRuntime(policy, processor, process_once, config, signing_secrets, jsm_tokens or _jsm_tokens(policy))


# ------------------------------------------------------------------------------------------ meta-alerts


@dataclass
class MetaAlertRuntime:
    policy: Policy
    notifier: Notifier
    # monitoring.meta_alert_notify: the notifiers meta-alerts go to; () is the meta-alerts' PagerDuty service.
    targets: tuple[str, ...] = ()


def build_meta_alerts(
    env: RuntimeEnv, *, policy: Policy | None = None, notifier: Notifier | None = None
) -> MetaAlertRuntime:
    policy = policy or load_policy(env.policy_file)
    # The same delivery code as the router, through the meta-alerts' own service when the policy names one
    # (monitoring.meta_alert_routing_key_secret): a revoked findings key must not also silence the alarm about it.
    if notifier is None:
        primary = pagerduty_notifier(policy, env, routing_key_secret=policy.meta_alert_routing_key_secret)
        notifier = policy_notifiers(policy, primary, env)
    return MetaAlertRuntime(policy, notifier, tuple(policy.monitoring.meta_alert_notify or ()))


# ------------------------------------------------------------------------------------------ the canary


@dataclass
class CanaryRuntime:
    policy: Policy
    securityhub: Any  # a boto3 `securityhub` client


def build_canary(env: RuntimeEnv, *, policy: Policy | None = None, securityhub: Any = None) -> CanaryRuntime:
    policy = policy or load_policy(env.policy_file)
    if securityhub is None:
        # BatchImportFindings: 10 TPS, burst 30 per account and region; `standard` retries its throttling.
        securityhub = _client(
            "securityhub",
            _aws_config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10),
        )
    return CanaryRuntime(policy, securityhub)


# ------------------------------------------------------------------------------------------ the PSIRT digest


@dataclass
class PsirtDigestRuntime:
    policy: Policy
    fetch: Any  # service.psirt_digest.FetchAffected
    reports: Any  # adapters.reports.S3Reports, or None when psirt_digest.report is off
    notifier: Notifier | None  # None when psirt_digest.notify is empty
    region: str  # the function's own: Inspector is queried here unless psirt_digest.regions says otherwise


def build_psirt_digest(
    env: RuntimeEnv,
    *,
    policy: Policy | None = None,
    fetch: Any = None,
    reports: Any = None,
    notifier: Notifier | None = None,
) -> PsirtDigestRuntime:
    policy = policy or load_policy(env.policy_file)
    region = env.region or policy.region or "us-east-1"
    if fetch is None:
        from findings_router.service.psirt_digest import inspector_fetch

        # ListFindings returns at most 25 findings a page and throttles (ThrottlingException): adaptive retries
        # pace the client instead of failing the run.
        config = _aws_config(retries={"mode": "adaptive", "max_attempts": 10}, connect_timeout=5, read_timeout=30)
        fetch = inspector_fetch(lambda r: _regional_client("inspector2", r, config))
    if reports is None and policy.psirt_digest.report:
        from findings_router.adapters.reports import S3Reports

        if not env.report_bucket:
            raise ValueError("psirt_digest.report is on but REPORT_BUCKET is not set (is the stack deployed?)")
        reports = S3Reports(
            _client("s3", _aws_config(retries={"mode": "standard", "max_attempts": 5})), env.report_bucket
        )
    if notifier is None and policy.psirt_digest.notify:
        notifier = policy_notifiers(policy, pagerduty_notifier(policy, env), env)
    return PsirtDigestRuntime(policy, fetch, reports, notifier, region)


def _regional_client(service: str, region: str, config: Any) -> Any:
    import boto3

    make: Any = boto3.client
    return make(service, region_name=region, config=config)


# ------------------------------------------------------------------------------------------ the silence sweep


@dataclass
class SweepRuntime:
    """The sweep (service/sweep.py): the router's runtime (same store, notifiers, write-back, storms, silences) and
    the time index of the episodes owing a page."""

    policy: Policy
    router: RouterRuntime
    owed: OwedIndex


def build_silence_sweep(
    env: RuntimeEnv,
    *,
    policy: Policy | None = None,
    store: DedupStore | None = None,
    notifier: Notifier | None = None,
    securityhub: SecurityHubWriteback | None = DEFAULT,
    storms: StormCounter | None = DEFAULT,
    silences: SilenceSource | None = DEFAULT,
    owed: OwedIndex | None = None,
    session: Any = None,
) -> SweepRuntime:
    """The sweep's runtime; what is not given is the real thing, as for the router (a twin `store` needs `owed` and
    `silences` given too). It parks nothing (no dead-letter queue) and routes no canary."""
    policy = policy or load_policy(env.policy_file)
    if silences is DEFAULT and store is None:
        from findings_router.adapters.silences import CachedSilences, DynamoSilenceStore

        # Read at every run (5 minutes apart): an expiry is seen at the first run after it, not a cache later.
        dynamodb = _client("dynamodb", _aws_config(retries={"mode": "standard", "max_attempts": 5}))
        retention = policy.silences.retention_days
        reader = DynamoSilenceStore(env.state_table, dynamodb, policy.environment, retention_days=retention)
        silences = CachedSilences(reader, ttl_seconds=0)
    router = build_router(
        env,
        policy=policy,
        store=store,
        notifier=notifier,
        securityhub=securityhub,
        storms=storms,
        dead_letters=None,
        pacer=None,
        session=session,
        canary_notifier=None,
        heartbeat=None,
        silences=silences,
    )
    router.canary = None
    router.shadow = None  # the shadow decides nothing late: nothing of it is ever held back
    if owed is None:
        from findings_router.adapters.silences import DynamoOwedIndex

        if store is not None:
            raise ValueError("build_silence_sweep: a twin store needs its owed index (owed=…)")
        owed = DynamoOwedIndex(
            env.state_table, _client("dynamodb", _aws_config(retries={"mode": "standard", "max_attempts": 5}))
        )
    return SweepRuntime(policy, router, owed)
