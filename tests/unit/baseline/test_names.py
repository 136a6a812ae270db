"""The baseline stack's names: one function per handler, within Lambda's 64 characters for the longest environment
name the policy allows (16 characters), and the handlers named there exist."""

from __future__ import annotations

import importlib

from infra.contract import BASELINE_HANDLERS, baseline_names, baseline_stack_name


def test_names_fit_for_the_longest_environment_name():
    names = baseline_names("a" * 16)
    assert set(names.functions) == set(BASELINE_HANDLERS)
    assert max(len(name) for name in names.functions.values()) <= 64
    assert names.functions["securityhub"] == f"findings-router-{'a' * 16}-baseline-securityhub"
    assert names.log_groups["config"] == f"/aws/lambda/findings-router-{'a' * 16}-baseline-config"
    assert baseline_stack_name("prod") == "FindingsBaseline-prod"


def test_every_handler_is_a_function_of_the_package():
    for handler in BASELINE_HANDLERS.values():
        module, function = handler.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), function)), handler
