#!/usr/bin/env bash
# `make e2e` (docs/e2e.md): install (cached), `make synth`, then LocalStack, the stand-ins (PagerDuty, JSM, webhooks)
# and the tests in a network namespace of their own, where the synthesized stacks are deployed and driven end to end.
#
# Needs root (a network namespace: DynamoDB Local binds every interface, so nothing here may share the host's), Python
# 3.13 for LocalStack and Python 3.12 for the functions (E2E_PYTHON313 / PYTHON312, else python3.13 / python3.12 on
# PATH, else pyenv's), a JDK 17+ (`java` on PATH), node and npm.
#
# Everything started is stopped on exit, on failure, on Ctrl-C and on SIGTERM (the Makefile's global timeout): each
# phase runs in its own process group, and every process left in the namespace is killed before it is deleted.
# Extra arguments go to pytest (e.g. `make e2e E2E_ARGS="-k prod"`). The run directory .cache/e2e/run-<pid>/ (logs)
# is removed after a successful run unless E2E_KEEP=1.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
MAKE=${MAKE:-make}
RUN_ID=$$
RUN_DIR=$REPO/.cache/e2e/run-$RUN_ID
NETNS=fr-e2e-$RUN_ID
PHASES=$RUN_DIR/phases.tsv
CHILD=""
STARTED=$EPOCHREALTIME

say() { printf 'e2e: %s\n' "$*"; }
fail() { printf 'e2e: %s\n' "$*" >&2; exit 2; }

# ------------------------------------------------------------------------------------------------ cleanup

kill_namespace() {  # [namespace]: every process in it (ours: the namespace is), then the namespace
  local netns=${1:-$NETNS} pids
  ip netns list 2>/dev/null | awk '{ print $1 }' | grep -qxF "$netns" || return 0
  pids=$(ip netns pids "$netns" 2>/dev/null)
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086  # a list of pids
    kill -TERM $pids 2>/dev/null
    for _ in $(seq 50); do
      pids=$(ip netns pids "$netns" 2>/dev/null)
      [ -z "$pids" ] && break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    sleep 0.2
  fi
  ip netns delete "$netns" 2>/dev/null || say "could not delete network namespace $netns"
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [ -n "$CHILD" ]; then
    kill -TERM -- "-$CHILD" 2>/dev/null
    sleep 0.5
    kill -KILL -- "-$CHILD" 2>/dev/null
  fi
  kill_namespace
  if [ -f "$PHASES" ]; then
    echo
    say "wall time per phase"
    awk -F'\t' '{ printf "  %-58s %7.1f s\n", $1, $2 }' "$PHASES"
    awk -v a="$STARTED" -v b="$EPOCHREALTIME" 'BEGIN { printf "  %-58s %7.1f s\n", "total", b - a }'
    [ -f "$RUN_DIR/memory.txt" ] && sed 's/^/  /' "$RUN_DIR/memory.txt"
  fi
  if [ "$status" -eq 0 ] && [ -z "${E2E_KEEP:-}" ]; then
    rm -rf "$RUN_DIR"
  elif [ -d "$RUN_DIR" ]; then
    say "logs kept in ${RUN_DIR#"$REPO"/} (localstack.log; each Lambda process's log under tmp/; remove with make clean)"
  fi
  exit "$status"
}

on_signal() {
  say "stopped by $1: stopping everything started"
  exit $(( $2 + 128 ))
}

trap cleanup EXIT
trap 'on_signal SIGINT 2' INT
trap 'on_signal "SIGTERM (the global timeout, E2E_TIMEOUT?)" 15' TERM
trap 'on_signal SIGHUP 1' HUP

# A phase: its own process group (the trap can stop all of it), waited for interruptibly, timed.
phase() {
  local name=$1
  shift
  local began=$EPOCHREALTIME
  setsid "$@" &
  CHILD=$!
  wait "$CHILD"
  local status=$?
  CHILD=""
  awk -v name="$name" -v a="$began" -v b="$EPOCHREALTIME" 'BEGIN { printf "%s\t%.1f\n", name, b - a }' >>"$PHASES"
  return "$status"
}

# ------------------------------------------------------------------------------------------------ prerequisites

[ "$(id -u)" -eq 0 ] || fail "needs root (it creates a network namespace with \`ip netns add\`)"
for tool in ip unshare setsid java javac jar npm; do
  command -v "$tool" >/dev/null || fail "\`$tool\` not found"
done

# The interpreter itself, not a pyenv shim: LocalStack and the functions run without pyenv's environment.
find_python() {
  local version=$1 candidate
  shift
  for candidate in "$@" "python$version" "$(pyenv root 2>/dev/null)/versions/$version".*/bin/"python$version" \
    "$HOME/.pyenv/versions/$version".*/bin/"python$version"; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" 2>/dev/null; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}
PY313=$(find_python 3.13 "${E2E_PYTHON313:-}") || fail "no Python 3.13 found (LocalStack needs it): set E2E_PYTHON313=/path/to/python3.13"
PY312=$(find_python 3.12 "${PYTHON312:-}") || fail "no Python 3.12 found (the functions' runtime): set PYTHON312=/path/to/python3.12"
JAVA_HOME_=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ { print $2 }')
[ "${java_major:-0}" -ge 17 ] || fail "DynamoDB Local needs Java 17 or later; \`java\` is $java_major"

# Namespaces of earlier runs that were killed outright (SIGKILL leaves no trap): their pid is gone, whatever runs in
# them was started by that run.
for stale in $(ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E '^fr-e2e-[0-9]+$'); do
  if ! kill -0 "${stale#fr-e2e-}" 2>/dev/null; then
    say "removing the namespace of an earlier run that did not end: $stale"
    kill_namespace "$stale"
  fi
done

mkdir -p "$RUN_DIR"
: >"$PHASES"
say "run $RUN_ID: LocalStack on $("$PY313" -V 2>&1 | cut -d' ' -f2), functions on $("$PY312" -V 2>&1 | cut -d' ' -f2), Java $java_major"

# ------------------------------------------------------------------------------------------------ phases

phase "install (.cache/e2e/, cached)" tests/e2e/install.sh "$PY313" "$PY312" || fail "install failed"
phase "make synth (bundled function packages, cdk-nag)" "$MAKE" --no-print-directory synth || fail "make synth failed"

ip netns add "$NETNS" || fail "could not create network namespace $NETNS"
ip netns exec "$NETNS" ip link set lo up || fail "could not bring up lo in $NETNS"

say "tests in network namespace $NETNS (only lo)"
phase "pytest tests/e2e (LocalStack, deploy, drive, teardown)" \
  ip netns exec "$NETNS" env \
  FR_E2E_RUN_DIR="$RUN_DIR" \
  FR_E2E_LOCALSTACK_VENV="$REPO/.cache/e2e/localstack-venv" \
  FR_E2E_LAMBDA_PYTHON312="$PY312" \
  FR_E2E_LAMBDA_OVERLAY="$REPO/.cache/e2e/lambda-overlay" \
  FR_E2E_DYNAMODB_LOCAL="$REPO/.cache/e2e/dynamodb-local" \
  FR_E2E_JAVA_HOME="$JAVA_HOME_" \
  "$REPO/.venv/bin/pytest" --confcutdir=tests/e2e -vv -o timeout=600 tests/e2e "$@"
