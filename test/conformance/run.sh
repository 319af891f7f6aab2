#!/usr/bin/env bash
# Conformance suite entry point (`make conformance`): runs every test/conformance/test_*.sh
# and test_*.py against real tandem-apiserver processes on 127.0.0.1, each file in its own
# process group with a time limit, and prints `conformance: N passed, M failed`.
# N and M count assertions for the bash tests and test methods for the python tests.
# Environment: BUILD (build dir, default build), CONFORMANCE_FILTER (substring of the
# file names to run), CONFORMANCE_BUDGET (seconds for the whole run, default 170),
# KEEP_TMP=1 keeps the scratch directories.
set -u

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT" || exit 1
BUILD="${BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
export BUILD
PYTHON=/usr/bin/python3
BUDGET="${CONFORMANCE_BUDGET:-170}"
PER_FILE_MAX=120

passed=0
failed=0
failed_files=()
current=""

CONFORMANCE_TMP="$(mktemp -d "${TMPDIR:-/tmp}/tandem-conformance.XXXXXX")"
export CONFORMANCE_TMP

# Kills what is left of a test's process group (the group id is the pid of its `timeout`).
kill_group() {
    local pgid="$1"
    kill -TERM -- "-$pgid" 2>/dev/null || return 1
    local i
    for i in $(seq 1 30); do
        kill -0 -- "-$pgid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pgid" 2>/dev/null
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$current" ]; then kill_group "$current"; fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $CONFORMANCE_TMP"; else rm -rf "$CONFORMANCE_TMP"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "conformance: interrupted"; exit 130' INT TERM

summary() {
    echo
    for f in "${failed_files[@]}"; do echo "failed in: $f"; done
    echo "conformance: $passed passed, $failed failed"
}

if [ ! -x "$BUILD/bin/tandem-apiserver" ]; then
    echo "conformance: $BUILD/bin/tandem-apiserver is missing; run make all first"
    failed=1
    summary
    exit 1
fi

tests=()
for f in test/conformance/test_*.sh test/conformance/test_*.py; do
    [ -f "$f" ] || continue
    case "$f" in *"${CONFORMANCE_FILTER:-}"*) tests+=("$f") ;; esac
done

start=$SECONDS
for f in "${tests[@]}"; do
    name="$(basename "$f")"
    left=$((BUDGET - (SECONDS - start)))
    if [ "$left" -lt 10 ]; then
        echo "=== $name: skipped, the ${BUDGET}s budget is spent"
        failed=$((failed + 1))
        failed_files+=("$name (not run: time budget spent)")
        continue
    fi
    limit=$((left < PER_FILE_MAX ? left : PER_FILE_MAX))
    result="$CONFORMANCE_TMP/$name.result"
    echo "=== $name"
    t0=$SECONDS
    case "$f" in
    *.py) CONFORMANCE_RESULT="$result" timeout -k 5 "$limit" "$PYTHON" "$f" </dev/null & ;;
    *) CONFORMANCE_RESULT="$result" timeout -k 5 "$limit" bash "$f" </dev/null & ;;
    esac
    current=$!
    wait "$current"
    rc=$?
    # Anything still in the test's process group is a leaked process.
    if kill -0 -- "-$current" 2>/dev/null; then
        kill_group "$current"
        echo "$name left processes running"
        failed=$((failed + 1))
        failed_files+=("$name (leaked processes)")
    fi
    current=""
    p=0
    m=0
    if [ -s "$result" ]; then read -r p m <"$result"; fi
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "$name: timed out after ${limit}s"
        m=$((m + 1))
    elif [ ! -s "$result" ] || { [ "$rc" -ne 0 ] && [ "$m" -eq 0 ]; }; then
        echo "$name: exited with status $rc without reporting its failures"
        m=$((m + 1))
    fi
    passed=$((passed + p))
    failed=$((failed + m))
    [ "$m" -gt 0 ] && failed_files+=("$name ($m)")
    echo "=== $name: $p passed, $m failed in $((SECONDS - t0))s"
done

echo "total time: $((SECONDS - start))s"
summary
[ "$failed" -eq 0 ]
