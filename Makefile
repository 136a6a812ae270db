# findings-router: every target sets itself up from scratch (Python 3.11+, node 20, npm).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true

.PHONY: help install lint test test-fast demo synth docs bench lock clean

help:
	@echo "make demo   - run findings-router end to end on this machine (no AWS, no PagerDuty account)"
	@echo "make test   - lint (ruff, mypy) and the whole test suite"
	@echo "make synth  - synthesize every environment's CloudFormation offline (cdk-nag included)"
	@echo "make bench  - benchmarks; writes bench/results.json"

$(VENV)/.installed: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip sync -q --python $(PY) --compile-bytecode requirements-dev.lock
	$(UV) pip install -q --python $(PY) --no-deps --compile-bytecode -e .
	@touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

test-fast: install
	$(VENV)/bin/pytest -m "not infra"

demo: install
	$(VENV)/bin/findings-router demo

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Every environment's CloudFormation, offline (no credentials, no Docker), cdk-nag included.
synth: install node_modules/.installed
	npx --no -- cdk synth --app "$(PY) app.py" --no-notices -q

docs: install
	$(PY) -m findings_router_local.config_docs

bench: install
	$(PY) -m bench

# Regenerate the lockfiles after changing pyproject.toml dependencies.
lock: install
	$(UV) pip compile -q pyproject.toml --extra dev --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements-dev.lock
	$(UV) pip compile -q functions/requirements.in --python-version 3.12 --python-platform aarch64-manylinux_2_28 -o requirements-lambda.lock

clean:
	rm -rf $(VENV) node_modules cdk.out .mypy_cache .ruff_cache
