# findings-router: every target sets itself up from scratch (Python 3.11+, node 20, npm).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# The Lambda runtime's Python, for test-py312 (default: the first 3.12 found; see test-py312).
PYTHON312 ?=
VENV312 ?= .venv312
# The unit, property, contract and bench tests: no CDK synth, no end-to-end test (tests/conftest.py marks every test
# by its directory).
FAST_TESTS := -m "not infra and not integration"
# Branch coverage floors (percent) for `make coverage`, per package of functions/findings_router/. Measured when set
# over the whole suite: domain 97.6, notify 97.4 (95.7 from unit and contract tests alone); raise them as coverage rises.
COVERAGE_FLOORS ?= domain:97 notify:95
ENVIRONMENTS := $(sort $(basename $(notdir $(wildcard config/*.yaml))))
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true

.PHONY: help install lint test test-fast test-py312 coverage demo synth diff deploy destroy diff-baseline deploy-baseline destroy-baseline docs bench lock clean

help:
	@echo "make demo           - run findings-router end to end on this machine (no AWS, no PagerDuty account)"
	@echo "make test           - lint (ruff, mypy) and the whole test suite"
	@echo "make test-fast      - the tests without CDK synths (-m \"not infra\")"
	@echo "make test-py312     - unit, property, contract and bench tests under Python 3.12, the Lambda runtime"
	@echo "make coverage       - the whole test suite with branch coverage; fails under the floors ($(COVERAGE_FLOORS))"
	@echo "make synth          - synthesize every environment's CloudFormation offline (cdk-nag included)"
	@echo "make diff ENV=e     - cdk diff of stack FindingsRouter-e against the deployed one (AWS credentials needed)"
	@echo "make deploy ENV=e   - cdk deploy of stack FindingsRouter-e (AWS credentials needed)"
	@echo "make destroy ENV=e  - cdk destroy of stack FindingsRouter-e, after a prompt (AWS credentials needed)"
	@echo "make deploy-baseline ENV=e - cdk deploy of FindingsBaseline-e, the security services (also diff-, destroy-)"
	@echo "make bench          - benchmarks; writes bench/results.json"
	@echo "make e2e            - deploy every stack into LocalStack (no Docker; root) and drive it end to end"
	@echo "make lock           - regenerate the lockfiles after a dependency change"
	@echo "                      (environments e: $(ENVIRONMENTS))"

# diff, deploy and destroy act on one named environment: check ENV before building anything.
CDK_STACK_GOALS := $(filter diff deploy destroy diff-baseline deploy-baseline destroy-baseline,$(MAKECMDGOALS))
ifneq ($(CDK_STACK_GOALS),)
ifeq ($(strip $(ENV)),)
$(error usage: make $(firstword $(CDK_STACK_GOALS)) ENV=<env>, where <env> is one of: $(ENVIRONMENTS))
endif
ifeq ($(filter $(ENV),$(ENVIRONMENTS)),)
$(error make $(firstword $(CDK_STACK_GOALS)): unknown ENV=$(ENV); configured are: $(ENVIRONMENTS) (config/<env>.yaml))
endif
endif

# aws-cdk-lib and its dependency aws-cdk-cloud-assembly-schema both ship aws_cdk/cloud_assembly_schema/; uv installs
# in parallel, so either copy may land last. aws-cdk-lib's must win (its jsii types are "aws-cdk-lib.cloud_assembly_
# schema.*": with the other copy, Annotations.find_warning fails with "Unknown interface"): reinstall it last.
CDK_LIB := $(shell sed -n 's/^\(aws-cdk-lib==.*\)$$/\1/p' requirements-dev.lock)

$(VENV)/.installed: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv==0.13.8
	$(UV) pip sync -q --python $(PY) --compile-bytecode requirements-dev.lock
	$(UV) pip install -q --python $(PY) --no-deps --compile-bytecode --reinstall-package aws-cdk-lib $(CDK_LIB)
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

# Coverage nearly doubles the suite's time (hypothesis and the end-to-end tests), so `make test` runs without it.
coverage: install
	$(VENV)/bin/pytest --cov --cov-report=term
	@failed=0; for floor in $(COVERAGE_FLOORS); do \
	  package=functions/findings_router/$${floor%%:*}; minimum=$${floor##*:}; \
	  total=$$($(VENV)/bin/coverage report --include="$$package/*" --format=total) || exit 2; \
	  if awk "BEGIN { exit !($$total >= $$minimum) }"; then echo "coverage of $$package/: $$total% (floor $$minimum%)"; \
	  else echo "coverage of $$package/: $$total%, under the floor of $$minimum%" >&2; failed=1; fi; \
	done; exit $$failed

# Python 3.12 (the Lambda runtime): PYTHON312, else python3.12 on PATH, else pyenv's 3.12.x (pyenv's shim only runs
# the selected versions, so each candidate is tried). None found: says so and succeeds, so that CI skips the step.
test-py312: install
	@python=""; \
	for candidate in $(PYTHON312) python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 \
	    $$HOME/.pyenv/versions/3.12*/bin/python3.12; do \
	  if "$$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then \
	    python=$$(command -v "$$candidate"); break; fi; \
	done; \
	if [ -z "$$python" ]; then \
	  echo "make test-py312: no Python 3.12 found (set PYTHON312=/path/to/python3.12): skipped"; exit 0; fi; \
	$(MAKE) --no-print-directory $(VENV312)/.installed PYTHON312="$$python" && \
	$(VENV312)/bin/python --version && \
	$(VENV312)/bin/pytest $(FAST_TESTS)

$(VENV312)/.installed: pyproject.toml requirements-dev.lock
	@test -n "$(PYTHON312)" || { echo "run make test-py312" >&2; exit 2; }
	$(UV) venv -q --allow-existing --python "$(PYTHON312)" $(VENV312)
	$(UV) pip sync -q --python $(VENV312)/bin/python --compile-bytecode requirements-dev.lock
	$(UV) pip install -q --python $(VENV312)/bin/python --no-deps --compile-bytecode --reinstall-package aws-cdk-lib $(CDK_LIB)
	$(UV) pip install -q --python $(VENV312)/bin/python --no-deps --compile-bytecode -e .
	@touch $@

demo: install
	$(VENV)/bin/findings-router demo

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

CDK := npx --no -- cdk
# Every environment's CloudFormation, offline (no credentials, no Docker), cdk-nag included.
synth: install node_modules/.installed
	$(CDK) synth --app "$(PY) app.py" --no-notices -q

# One environment's stack, with the credentials and region of the shell (docs/deploy.md).
diff deploy destroy: install node_modules/.installed
	$(CDK) $@ FindingsRouter-$(ENV) -c env=$(ENV) --app "$(PY) app.py" --no-notices

# The environment's security services (its `baseline:` section, docs/baseline.md): deploy before the router.
diff-baseline deploy-baseline destroy-baseline: install node_modules/.installed
	$(CDK) $(@:-baseline=) FindingsBaseline-$(ENV) -c env=$(ENV) --app "$(PY) app.py" --no-notices

docs: install
	$(PY) -m findings_router_local.config_docs

bench: install
	$(PY) -m bench

# End to end (docs/e2e.md): every environment's synthesized stack deployed into LocalStack, without Docker, and
# driven from Security Hub events to PagerDuty and back; then deleted. Installs LocalStack, DynamoDB Local and our
# LocalStack plugins under .cache/e2e/ once. Needs root (a network namespace), Python 3.13 for LocalStack
# (E2E_PYTHON313, else python3.13, else pyenv's), Python 3.12 for the functions (PYTHON312, likewise) and a JDK 17+.
# E2E_TIMEOUT (seconds) bounds the whole run; E2E_ARGS go to pytest (e.g. E2E_ARGS="-k prod -x").
E2E_PYTHON313 ?=
E2E_TIMEOUT ?= 900
E2E_ARGS ?=
.PHONY: e2e
e2e: install node_modules/.installed
	E2E_PYTHON313="$(E2E_PYTHON313)" PYTHON312="$(PYTHON312)" \
	  timeout --foreground --kill-after=30 $(E2E_TIMEOUT) tests/e2e/run.sh $(E2E_ARGS)

# Regenerate the lockfiles after changing pyproject.toml dependencies. Pins already in a lockfile are kept (uv prefers
# them); to move one, add --upgrade-package NAME to the command.
lock: install
	$(UV) pip compile -q pyproject.toml --extra dev --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements-dev.lock
	$(UV) pip compile -q functions/requirements.in --python-version 3.12 --python-platform aarch64-manylinux_2_28 -o requirements-lambda.lock

clean:
	rm -rf $(VENV) $(VENV312) node_modules cdk.out .mypy_cache .ruff_cache .cache/coverage build
	rm -rf .cache/e2e
