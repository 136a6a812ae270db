"""The environments under test: one per policy file in config/, with what must exist before its stack is deployed.

As docs/deploy.md says, the stack only refers to its secrets and (acknowledgements.mode eventbridge) to the
PagerDuty partner event bus: both are created first, here. Every secret the policy names is created (any field
`*_secret` anywhere in the policy, so a new one is picked up): routing keys as `{"routing_key": ...}` (the form
`findings_router_local.environment.LocalEnvironment` writes for the demo), a distinct key per secret so that every
event at the PagerDuty stand-in says which secret it was sent with; the webhook signing secret as its bare value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from findings_router.settings.load import load_policy_dir
from findings_router.settings.schema import Policy
from infra.contract import ResourceNames, resource_names, stack_name

REPO = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO / "config"


def named_secrets(model: BaseModel, prefix: str = "") -> dict[str, str]:
    """Field path -> secret name, for every `*_secret` field set anywhere in the policy."""
    out: dict[str, str] = {}
    for name, value in model:
        if isinstance(value, BaseModel):
            out.update(named_secrets(value, f"{prefix}{name}."))
        elif name.endswith("_secret") and isinstance(value, str) and value:
            out[f"{prefix}{name}"] = value
    return out


def routing_key_for(secret_name: str) -> str:
    """A stand-in integration key (32 alphanumerics, as PagerDuty's), one per secret."""
    return hashlib.sha256(secret_name.encode()).hexdigest()[:32]


@dataclass
class Environment:
    name: str
    policy: Policy
    names: ResourceNames
    stack: str
    secrets: dict[str, str] = field(default_factory=dict)  # secret name -> value
    routing_keys: dict[str, str] = field(default_factory=dict)  # routing key -> secret name
    signing_secret: str | None = None
    stack_id: str = ""
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def routing_key(self) -> str:
        """The key the router pages with (notifier.routing_key_secret)."""
        return routing_key_for(self.policy.notifier.routing_key_secret)

    @property
    def meta_alert_routing_key(self) -> str:
        return routing_key_for(self.policy.meta_alert_routing_key_secret)


def environments() -> dict[str, Environment]:
    """Every environment in config/, by name, sorted."""
    out = {}
    for name, policy in sorted(load_policy_dir(CONFIG_DIR).items()):
        env = Environment(name, policy, resource_names(policy), stack_name(name))
        for path, secret in named_secrets(policy).items():
            if path.endswith("routing_key_secret"):
                key = routing_key_for(secret)
                env.secrets[secret] = json.dumps({"routing_key": key})
                env.routing_keys[key] = secret
            elif path == "acknowledgements.signing_secret":
                env.signing_secret = f"e2e-{name}-webhook-signing-secret"
                env.secrets[secret] = env.signing_secret
            else:
                env.secrets[secret] = f"e2e-placeholder-for-{path}"
        out[name] = env
    return out


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
