"""The synth warning about empty `monitoring.alarm_emails` says how to act on it, and a reviewed reason silences it."""

from __future__ import annotations

import pytest
import yaml
from aws_cdk import App
from aws_cdk.assertions import Annotations, Match

from findings_router.settings.load import PolicyError, parse_policy
from infra.stack import FindingsRouterStack
from tests.builders import CONFIG_DIR

pytestmark = pytest.mark.infra


def _warnings(monitoring: dict) -> list:
    data = yaml.safe_load((CONFIG_DIR / "dev.yaml").read_text())
    data["monitoring"] = {**data.get("monitoring", {}), **monitoring}
    policy = parse_policy(yaml.safe_dump(data), "dev.yaml")
    stack = FindingsRouterStack(App(), "FindingsRouter-dev", policy=policy, include_dependencies=False)
    return Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp("alarm_emails is empty"))


def test_the_warning_says_exactly_what_to_write_and_a_reason_acknowledges_it():
    [warning] = _warnings({})
    text = str(warning.entry.data)
    assert "In config/dev.yaml add an address under monitoring.alarm_emails" in text
    assert "monitoring.no_alarm_emails_reason" in text
    assert _warnings({"no_alarm_emails_reason": "Sandbox: the platform team watches the console daily."}) == []
    with pytest.raises(PolicyError, match="no_alarm_emails_reason is for a policy without alarm_emails"):
        _warnings({"alarm_emails": ["secops@example.com"], "no_alarm_emails_reason": "not needed anymore really"})
