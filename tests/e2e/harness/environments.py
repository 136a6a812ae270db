"""The environments under test: one per policy file in config/, with what must exist before its stack is deployed.

As docs/deploy.md says, the stack only refers to its secrets and (acknowledgements.mode eventbridge) to the
PagerDuty partner event bus: both are created first, here. Every secret the policy names is created (any field
`*_secret` anywhere in the policy, the `notifiers` included, so a new one is picked up), with the value its reader
expects (the formats `findings_router_local.environment.LocalEnvironment` writes for the demo), and distinct per
secret, so that every request at a stand-in says which secret it was sent with:

* routing keys (`*routing_key_secret`): `{"routing_key": ...}`;
* the PagerDuty webhook subscription's signing secret (`acknowledgements.signing_secret`): its bare value;
* a JSM notifier's API key (`api_key_secret`): the bare key (the stand-in accepts only it);
* a webhook notifier's signing secret (`signing_secret`): `whsec_` and the base64 of 32 bytes (Standard Webhooks);
* a webhook notifier's URL (`url_secret`): its stand-in's URL, once the stand-ins run (`bind_stand_ins`);
* JSM's webhook token (`acknowledgements.jsm_token_secret`): the bare token;
* anything else: a placeholder naming the field.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from findings_router.settings.load import load_policy_dir
from findings_router.settings.schema import JsmNotifierConfig, PagerDutyNotifierConfig, Policy, WebhookNotifierConfig
from infra.contract import ResourceNames, resource_names, stack_name

REPO = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO / "config"


def named_secrets(model: BaseModel, prefix: str = "") -> dict[str, str]:
    """Field path -> secret name, for every `*_secret` field set anywhere in the policy (in mappings of models too:
    `notifiers.<name>.api_key_secret`)."""
    out: dict[str, str] = {}
    for name, value in model:
        if isinstance(value, BaseModel):
            out.update(named_secrets(value, f"{prefix}{name}."))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    out.update(named_secrets(item, f"{prefix}{name}.{key}."))
        elif name.endswith("_secret") and isinstance(value, str) and value:
            out[f"{prefix}{name}"] = value
    return out


def _digest(secret_name: str) -> bytes:
    return hashlib.sha256(secret_name.encode()).digest()


def routing_key_for(secret_name: str) -> str:
    """A stand-in integration key (32 alphanumerics, as PagerDuty's), one per secret."""
    return _digest(secret_name).hex()[:32]


def jsm_api_key_for(secret_name: str) -> str:
    """A stand-in JSM API integration key (a UUID, as JSM's), one per secret."""
    return str(uuid.UUID(bytes=_digest(secret_name)[:16]))


def webhook_secret_for(secret_name: str) -> str:
    """A stand-in Standard Webhooks signing secret: `whsec_` and base64 of 32 bytes, one per secret."""
    return "whsec_" + base64.b64encode(_digest(secret_name)).decode()


@dataclass
class Environment:
    name: str
    policy: Policy
    names: ResourceNames
    stack: str
    secrets: dict[str, str] = field(default_factory=dict)  # secret name -> value
    routing_keys: dict[str, str] = field(default_factory=dict)  # routing key -> secret name
    signing_secret: str | None = None
    jsm_token: str | None = None  # acknowledgements.jsm_token_secret's value
    # The policy's other notifiers (`notifiers`), by name: their stand-ins (bind_stand_ins) and where they send.
    targets: dict[str, Any] = field(default_factory=dict)
    notifier_urls: dict[str, str] = field(default_factory=dict)  # NOTIFIER_URLS: notifier name -> stand-in URL
    stack_id: str = ""
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def routing_key(self) -> str:
        """The key the router pages with (notifier.routing_key_secret)."""
        return routing_key_for(self.policy.notifier.routing_key_secret)

    @property
    def meta_alert_routing_key(self) -> str:
        return routing_key_for(self.policy.meta_alert_routing_key_secret)


def _secret_value(env: Environment, path: str, secret: str) -> str:
    last = path.rsplit(".", 1)[-1]
    if last.endswith("routing_key_secret"):
        key = routing_key_for(secret)
        env.routing_keys[key] = secret
        return json.dumps({"routing_key": key})
    if path == "acknowledgements.signing_secret":
        env.signing_secret = f"e2e-{env.name}-webhook-signing-secret"
        return env.signing_secret
    if path == "acknowledgements.jsm_token_secret":
        env.jsm_token = f"e2e-{env.name}-jsm-webhook-token-{_digest(secret).hex()[:16]}"
        return env.jsm_token
    if path.startswith("notifiers.") and last == "api_key_secret":
        return jsm_api_key_for(secret)
    if path.startswith("notifiers.") and last == "signing_secret":
        return webhook_secret_for(secret)
    # url_secret: the stand-in's URL, once it runs (bind_stand_ins).
    return f"e2e-placeholder-for-{path}"


def environments() -> dict[str, Environment]:
    """Every environment in config/, by name, sorted."""
    out = {}
    for name, policy in sorted(load_policy_dir(CONFIG_DIR).items()):
        env = Environment(name, policy, resource_names(policy), stack_name(name))
        for path, secret in named_secrets(policy).items():
            env.secrets[secret] = _secret_value(env, path, secret)
        out[name] = env
    return out


def start_stand_ins(env: Environment, pagerduty: Any) -> list[Any]:
    """A stand-in for each of the environment's other notifiers (`notifiers`), started: a JSM stand-in accepting
    only its API key, a webhook receiver verifying with its signing secret, the shared PagerDuty stand-in for a
    PagerDuty notifier; recorded in `env.targets` and `env.notifier_urls`, and each `url_secret` set to its URL.
    Returns what was started here (to be stopped by the caller)."""
    from findings_router_local.fakes.jsm import JsmReceiver
    from findings_router_local.fakes.webhook import WebhookReceiver

    started: list[Any] = []
    for name, config in env.policy.notifiers.items():
        if isinstance(config, JsmNotifierConfig):
            receiver: Any = JsmReceiver(api_keys={jsm_api_key_for(config.api_key_secret)})
            url = receiver.start().base_url
            started.append(receiver)
        elif isinstance(config, WebhookNotifierConfig):
            secret = webhook_secret_for(config.signing_secret) if config.signing_secret else None
            receiver = WebhookReceiver(secret, format=config.format)
            url = receiver.start().url
            started.append(receiver)
            if config.url_secret is not None:
                env.secrets[config.url_secret] = url
        else:
            assert isinstance(config, PagerDutyNotifierConfig)
            receiver, url = pagerduty, pagerduty.url
        env.targets[name] = receiver
        env.notifier_urls[name] = url
    return started


def create_prerequisites(aws: Any, env: Environment) -> list[str]:
    """The secrets and the partner event bus the stack refers to; returns what was created."""
    created = []
    secretsmanager = aws.client("secretsmanager")
    for name, value in env.secrets.items():
        secretsmanager.create_secret(Name=name, SecretString=value)
        created.append(f"secret {name}")
    source = env.policy.acknowledgements.partner_event_source
    if env.policy.acknowledgements.mode == "eventbridge" and source:
        # As the association of PagerDuty's partner event source creates it (docs/deploy.md, step 2).
        aws.client("events").create_event_bus(Name=source, EventSourceName=source)
        created.append(f"event bus {source}")
    return created
