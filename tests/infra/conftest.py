"""Session fixtures: every config/*.yaml synthesized once, with cdk-nag, and without dependency bundling.

A synth costs seconds (jsii starts a node process), so all environments go into one app, synthesized once, exactly
as app.py builds them; tests read the resulting templates.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_CONTEXT = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@dataclass(frozen=True)
class SynthesizedStack:
    environment: str
    policy: Any  # findings_router.settings.schema.Policy
    template: dict[str, Any]
    assertions: Any  # aws_cdk.assertions.Template
    asset_dir: Path
    stack: Any  # infra.stack.FindingsRouterStack

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}

    def only(self, resource_type: str) -> dict[str, Any]:
        found = list(self.resources(resource_type).values())
        assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
        return found[0]

    def named(self, resource_type: str, name_property: str, name: str) -> str:
        """The logical id of the one `resource_type` whose `name_property` is `name` (e.g. FunctionName)."""
        found = [k for k, v in self.resources(resource_type).items() if v["Properties"].get(name_property) == name]
        assert len(found) == 1, f"expected one {resource_type} with {name_property} {name}, found {found}"
        return found[0]

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.template["Resources"][logical_id]["Properties"]


@dataclass(frozen=True)
class Synthesis:
    outdir: Path
    stacks: dict[str, SynthesizedStack]
    # FindingsBaseline-<env> of the environments with a `baseline:` section (infra/baseline/), from the same app.
    baselines: dict[str, SynthesizedStack] = field(default_factory=dict)


ENVIRONMENTS = sorted(p.stem for p in (REPO_ROOT / "config").glob("*.yaml"))


def dev_policy(environment: str = "dev", **sections: Any) -> Any:
    """config/dev.yaml's policy as environment `environment`, each of `sections` updated with the values given."""
    import yaml

    from findings_router.settings.schema import Policy

    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data["environment"] = environment
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values} if isinstance(values, dict) else values
    return Policy.model_validate(data)


def _synthesize(
    outdir: Path, baselines: dict[str, SynthesizedStack] | None = None, **build_options: Any
) -> dict[str, SynthesizedStack]:
    """Every stack of `config_dir` (default: config/), built exactly as app.py builds them and synthesized once,
    cdk-nag included, without dependency bundling; by environment. The baseline stacks go into `baselines` if given."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.app import baseline_stacks, build

    # No account/region from the caller's shell: the synth must not depend on where the tests run.
    for name in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        os.environ.pop(name, None)
    app = App(outdir=str(outdir), context=CDK_CONTEXT)
    stacks = build(app, include_dependencies=False, **build_options)
    assembly = app.synth()  # raises if cdk-nag reports an unacknowledged finding
    result = {}
    for environment, stack in stacks.items():
        artifact = assembly.get_stack_by_name(stack.stack_name)
        template = artifact.template
        function = next(v for v in template["Resources"].values() if v["Type"] == "AWS::Lambda::Function")
        asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
        result[environment] = SynthesizedStack(
            environment=environment,
            policy=stack.policy,
            template=template,
            assertions=Template.from_json(template),
            asset_dir=outdir / f"asset.{asset_hash}",
            stack=stack,
        )
    for environment, baseline in baseline_stacks(app).items() if baselines is not None else ():
        template = assembly.get_stack_by_name(baseline.stack_name).template
        baselines[environment] = SynthesizedStack(
            environment=environment,
            policy=baseline.policy,
            template=template,
            assertions=Template.from_json(template),
            asset_dir=outdir,
            stack=baseline,
        )
    return result


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    outdir = tmp_path_factory.mktemp("cdk.out")
    baselines: dict[str, SynthesizedStack] = {}
    return Synthesis(outdir=outdir, stacks=_synthesize(outdir, baselines), baselines=baselines)


@pytest.fixture(scope="session")
def environments() -> list[str]:
    return ENVIRONMENTS


@pytest.fixture(params=ENVIRONMENTS)
def synthesized(request: pytest.FixtureRequest, synthesis: Synthesis) -> SynthesizedStack:
    """Each environment's stack in turn."""
    return synthesis.stacks[request.param]


VARIANT_ACCOUNT = "111122223333"
VARIANT_SECRET_ARN = "arn:aws:secretsmanager:eu-central-1:111122223333:secret:findings-router/variant/pd-AbCdEf"
VARIANT_SIGNING_SECRET_ARN = (
    "arn:aws:secretsmanager:eu-central-1:111122223333:secret:findings-router/variant/pd-webhook-GhIjKl"
)
VARIANT_REST_API_TOKEN_SECRET = "findings-router/variant/pagerduty-rest-api-key"
VARIANT_CANARY_SECRET_ARN = (
    "arn:aws:secretsmanager:eu-central-1:111122223333:secret:findings-router/variant/canary-routing-key-XyZ123"
)


def _synthesize_one(
    tmp_path_factory: pytest.TempPathFactory, environment: str, data: dict[str, Any]
) -> SynthesizedStack:
    """One extra environment, built and synthesized (cdk-nag included) exactly as app.py does."""
    import yaml

    config_dir = tmp_path_factory.mktemp("config")
    (config_dir / f"{environment}.yaml").write_text(yaml.safe_dump(data))
    (stack,) = _synthesize(tmp_path_factory.mktemp(f"cdk.out.{environment}"), config_dir=config_dir).values()
    return stack


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    """An environment using the settings the shipped files leave at their defaults or do not use.

    Pinned account and region, secrets by complete ARN, alarm emails, a batch size above 10, reserved
    concurrency 4, OCSF off, a severity pre-filter, production; the ack receiver with a REST API key secret and
    its own reserved concurrency; no Security Hub write-back; the meta-alerts' own routing key; the canary every 5
    minutes with its key by complete ARN and a heartbeat URL; the silence alarm; the PSIRT digest every 12 h to
    PagerDuty and S3.
    """
    import yaml

    data = yaml.safe_load((REPO_ROOT / "config" / "dev.yaml").read_text())
    data.update(
        environment="variant",
        account=VARIANT_ACCOUNT,
        region="eu-central-1",
        production=True,
        ingestion={"severity_labels": ["HIGH", "CRITICAL"], "include_ocsf": False, "batch_size": 25},
        function={"reserved_concurrency": 4, "log_retention_days": 30, "timeout_seconds": 60, "memory_mb": 512},
        monitoring={
            "alarm_emails": ["secops@example.com", "oncall@example.com"],
            "oldest_message_age_seconds": 1200,
            "meta_alert_routing_key_secret": "findings-router/variant/meta-routing-key",
            "no_findings_alarm_minutes": 720,
        },
        canary={
            "schedule_minutes": 5,
            "alarm_after_minutes": 20,
            "routing_key_secret": VARIANT_CANARY_SECRET_ARN,
            "heartbeat_url_secret": "findings-router/variant/canary-heartbeat-url",
        },
        acknowledgements={
            "mode": "function_url",
            "signing_secret": VARIANT_SIGNING_SECRET_ARN,
            "rest_api_token_secret": VARIANT_REST_API_TOKEN_SECRET,
            "reserved_concurrency": 3,
        },
        securityhub={"writeback": False},
        psirt_digest={"enabled": True, "schedule_hours": 12, "notify": ["pagerduty"], "report_retention_days": 90},
    )
    data["notifier"]["routing_key_secret"] = VARIANT_SECRET_ARN
    data.pop("baseline", None)  # router variants only: the baseline stacks are tests/infra/test_baseline*.py's
    return _synthesize_one(tmp_path_factory, "variant", data)


@pytest.fixture(scope="session")
def no_acks(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedStack:
    """acknowledgements.mode none (the model's default), with write-back, in a pinned account and region; every
    account's findings (accounts ["*"]) and no custom action."""
    import yaml

    data = yaml.safe_load((REPO_ROOT / "config" / "stg.yaml").read_text())
    data.update(environment="noacks", account=VARIANT_ACCOUNT, region="eu-west-1", accounts=["*"])
    data.pop("acknowledgements")
    data.pop("custom_action")
    data.pop("baseline", None)  # router variants only
    data.pop("psirt_digest", None)  # the variant has the digest
    data["notifier"]["retry"] = {"budget_seconds": 600, "timeout_seconds": 30}
    return _synthesize_one(tmp_path_factory, "noacks", data)
