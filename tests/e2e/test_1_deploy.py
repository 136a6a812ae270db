"""Every environment's synthesized stack deploys completely: every resource of its template is created."""

from __future__ import annotations

import pytest

from tests.e2e.harness import deploy
from tests.e2e.harness.environments import environments
from tests.e2e.harness.session import Deployment

ENVIRONMENTS = sorted(environments())


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_every_resource_of_the_template_is_created(deployment: Deployment, name: str) -> None:
    env = deployment.environments[name]
    artifact = deployment.stacks[env.stack]
    resources = deploy.stack_resources(deployment.aws.client("cloudformation"), env.stack_id)
    wanted = set(artifact.template["Resources"])
    not_created = {k: v for k, v in resources.items() if v != "CREATE_COMPLETE"}
    assert set(resources) == wanted and not not_created, (
        f"{env.stack}: template has {len(wanted)} resources, stack has {len(resources)}; "
        f"missing {sorted(wanted - set(resources))}, unexpected {sorted(set(resources) - wanted)}, "
        f"not CREATE_COMPLETE {not_created}"
    )


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_functions_run_the_synthesized_package_with_events_to_the_stand_ins(deployment: Deployment, name: str) -> None:
    """The one change to the template: EVENTS_URL on each function, NOTIFIER_URLS where the policy has other
    notifiers (one stand-in URL per notifier), and the Inspector stand-in's endpoint; the rest of each function's
    environment is the synthesized one, and every function is Active."""
    env = deployment.environments[name]
    assert deployment.inspector is not None
    injected = deploy.injected_variables(deployment.pagerduty.url, env.notifier_urls, deployment.inspector.base_url)
    assert set(env.notifier_urls) == set(env.policy.notifiers)
    assert ("NOTIFIER_URLS" in injected) == bool(env.policy.notifiers)
    template = deployment.stacks[env.stack].template
    functions = {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert sorted(deployment.injected[env.stack]) == sorted(functions)
    lam = deployment.aws.client("lambda")
    for properties in functions.values():
        config = lam.get_function_configuration(FunctionName=properties["FunctionName"])
        assert config["State"] == "Active", f"{properties['FunctionName']}: {config['State']}"
        variables = config["Environment"]["Variables"]
        synthesized = properties.get("Environment", {}).get("Variables", {})
        assert set(variables) == {*synthesized, *injected}, f"{properties['FunctionName']}: {sorted(variables)}"
        assert not set(synthesized) & set(injected), f"{properties['FunctionName']}: synthesized {sorted(synthesized)}"
        assert {k: variables[k] for k in injected} == injected
        plain = {k: v for k, v in synthesized.items() if isinstance(v, str)}  # the rest are references
        assert {k: variables[k] for k in plain} == plain
        assert config["Handler"] == properties["Handler"] and config["Runtime"] == properties["Runtime"]
