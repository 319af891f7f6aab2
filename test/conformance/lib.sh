# Shared helpers for the bash conformance tests: start/stop a real tandem-apiserver on a
# free loopback port, bounded polling, and counted assertions. Source it from a test_*.sh;
# the EXIT trap it installs stops every server the test started and prints the tally.
# shellcheck shell=bash

set -u

CONF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$CONF_DIR/../.." && pwd)"
TESTDATA="$CONF_DIR/testdata"
BUILD="${BUILD:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT_DIR/$BUILD" ;; esac
APISERVER="${APISERVER:-$BUILD/bin/tandem-apiserver}"
KUBECTL="${KUBECTL:-/usr/bin/kubectl}"
PYTHON=/usr/bin/python3

TEST_NAME="$(basename "$0" .sh)"
PASSED=0
FAILED=0
FAILURES=()
SERVER_PIDS=()
SERVER_LOGS=()

# Per-test scratch directory, removed on exit unless KEEP_TMP=1.
TEST_TMP="$(mktemp -d "${CONFORMANCE_TMP:-${TMPDIR:-/tmp}}/$TEST_NAME.XXXXXX")"
export KUBECACHEDIR="$TEST_TMP/kube-cache"
export HOME="$TEST_TMP/home"
mkdir -p "$HOME"

PORT=""
KUBECONFIG=""
DATA=""
PID=""
SERVER_DIR=""
export KUBECONFIG

_color() { if [ -t 1 ]; then printf '\033[%sm%s\033[0m' "$1" "$2"; else printf '%s' "$2"; fi; }

pass() {
    PASSED=$((PASSED + 1))
    printf '  %s %s\n' "$(_color 32 ok)" "$1"
}

# fail MSG [DETAIL]: records a failed assertion with the caller's line.
fail() {
    FAILED=$((FAILED + 1))
    local where="${BASH_SOURCE[2]:-?}:${BASH_LINENO[1]:-?}"
    FAILURES+=("$1 ($where)")
    printf '  %s %s  [%s]\n' "$(_color 31 FAIL)" "$1" "$where"
    if [ $# -ge 2 ] && [ -n "$2" ]; then
        printf '%s\n' "$2" | head -c 3000 | sed 's/^/      | /'
    fi
}

section() { printf '%s\n' "--- $TEST_NAME: $*"; }

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_apiserver [extra flags...]: starts a server on a free port in a fresh directory
# (or on DATA if REUSE_DATA=FILE is set), waits until /readyz answers and the kubeconfig
# exists. Sets PORT, KUBECONFIG, DATA, PID, SERVER_DIR. Returns 1 (and records a failure)
# if the server does not come up within 15 s.
start_apiserver() {
    local n=${#SERVER_PIDS[@]}
    SERVER_DIR="$TEST_TMP/server$n"
    mkdir -p "$SERVER_DIR"
    DATA="${REUSE_DATA:-$SERVER_DIR/data.db}"
    local attempt
    for attempt in 1 2 3; do
        PORT="$(free_port)"
        KUBECONFIG="$SERVER_DIR/kubeconfig"
        rm -f "$KUBECONFIG"
        "$APISERVER" --listen "127.0.0.1:$PORT" --data "$DATA" \
            --write-kubeconfig "$KUBECONFIG" "$@" >"$SERVER_DIR/server.log" 2>&1 &
        PID=$!
        SERVER_PIDS+=("$PID")
        SERVER_LOGS+=("$SERVER_DIR/server.log")
        local scheme=http
        case " $* " in *" --tls "*) scheme=https ;; esac
        local i
        for i in $(seq 1 150); do
            if ! kill -0 "$PID" 2>/dev/null; then break; fi
            if [ -s "$KUBECONFIG" ] &&
                curl -sk -o /dev/null -m 2 "$scheme://127.0.0.1:$PORT/readyz"; then
                export KUBECONFIG
                return 0
            fi
            sleep 0.1
        done
        if kill -0 "$PID" 2>/dev/null; then
            break # running but not ready: not a port race
        fi
        # Exited: maybe someone took the port between free_port and bind. Retry.
        wait "$PID" 2>/dev/null
        if ! grep -qi 'address already in use\|bind' "$SERVER_DIR/server.log"; then break; fi
    done
    fail "apiserver started (port $PORT, flags: $*)" "$(tail -n 30 "$SERVER_DIR/server.log" 2>/dev/null)"
    return 1
}

# stop_apiserver [PID]: SIGTERM, wait up to 10 s, then SIGKILL. A server that does not
# exit 0 by itself (crash, sanitizer report, hang) is a failed assertion.
stop_apiserver() {
    local pid="${1:-$PID}" i rc log=""
    [ -n "$pid" ] || return 0
    for i in "${!SERVER_PIDS[@]}"; do
        if [ "${SERVER_PIDS[$i]}" = "$pid" ]; then
            log="${SERVER_LOGS[$i]}"
            unset 'SERVER_PIDS[i]' 'SERVER_LOGS[i]'
        fi
    done
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        rc=$?
        fail "apiserver $pid was still running before stop (exit status $rc)" "$(tail -n 30 "$log" 2>/dev/null)"
        return 1
    fi
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        fail "apiserver $pid exits within 10 s of SIGTERM" "$(tail -n 30 "$log" 2>/dev/null)"
        return 1
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "apiserver $pid exited 0 on SIGTERM"
    else
        fail "apiserver $pid exited 0 on SIGTERM (status $rc)" "$(tail -n 30 "$log" 2>/dev/null)"
        return 1
    fi
    [ "$pid" = "$PID" ] && PID=""
    return 0
}

stop() { stop_apiserver "$@"; }

_lib_exit() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${SERVER_PIDS[@]}"; do
        [ -n "$pid" ] && stop_apiserver "$pid"
    done
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
        fail "$TEST_NAME ran to the end (script exited with status $rc)"
    fi
    echo "$TEST_NAME: $PASSED passed, $FAILED failed"
    local f
    for f in "${FAILURES[@]}"; do echo "  FAILED: $f"; done
    if [ -n "${CONFORMANCE_RESULT:-}" ]; then
        echo "$PASSED $FAILED" >"$CONFORMANCE_RESULT"
    fi
    if [ "${KEEP_TMP:-0}" != 1 ]; then rm -rf "$TEST_TMP"; else echo "kept $TEST_TMP"; fi
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}
trap _lib_exit EXIT
trap 'exit 130' INT TERM

# kc ARGS...: real kubectl against the current server.
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG" --request-timeout=20s "$@"; }

# wait_for TIMEOUT_SEC CMD...: polls CMD every 0.2 s until it succeeds; 1 on timeout.
wait_for() {
    local timeout="$1"
    shift
    local deadline=$((SECONDS + timeout))
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.2
    done
}

# assert_wait TIMEOUT_SEC MSG CMD...: wait_for as an assertion.
assert_wait() {
    local timeout="$1" msg="$2"
    shift 2
    if wait_for "$timeout" "$@"; then pass "$msg"; else
        fail "$msg (not within ${timeout}s)" "last try: $("$@" 2>&1 | tail -n 15)"
    fi
}

# assert_eq EXPECTED ACTUAL MSG
assert_eq() {
    if [ "$1" == "$2" ]; then pass "$3"; else
        fail "$3" "expected: $(printf '%q' "$1")
actual:   $(printf '%q' "$2")"
        return 1
    fi
}

assert_ne() {
    if [ "$1" != "$2" ]; then pass "$3"; else
        fail "$3" "both are: $(printf '%q' "$1")"
        return 1
    fi
}

# assert_contains HAYSTACK NEEDLE MSG
assert_contains() {
    if [[ "$1" == *"$2"* ]]; then pass "$3"; else
        fail "$3" "expected to contain: $2
actual:
$1"
        return 1
    fi
}

assert_not_contains() {
    if [[ "$1" != *"$2"* ]]; then pass "$3"; else
        fail "$3" "expected NOT to contain: $2
actual:
$1"
        return 1
    fi
}

# assert_match HAYSTACK ERE MSG
assert_match() {
    if printf '%s' "$1" | grep -Eq -- "$2"; then pass "$3"; else
        fail "$3" "expected to match /$2/
actual:
$1"
        return 1
    fi
}

# assert_ok MSG CMD...: command must succeed. Its stdout is kept in OUT.
OUT=""
ERR=""
assert_ok() {
    local msg="$1"
    shift
    local rc
    OUT="$("$@" 2>"$TEST_TMP/.stderr")"
    rc=$?
    ERR="$(cat "$TEST_TMP/.stderr")"
    if [ "$rc" -eq 0 ]; then pass "$msg"; else
        fail "$msg" "command: $* (exit $rc)
stdout: $OUT
stderr: $ERR"
        return 1
    fi
}

# assert_fails_with TEXT CMD...: command must exit non-zero and its stderr contain TEXT.
assert_fails_with() {
    local text="$1"
    shift
    local rc
    OUT="$("$@" 2>"$TEST_TMP/.stderr")"
    rc=$?
    ERR="$(cat "$TEST_TMP/.stderr")"
    if [ "$rc" -eq 0 ]; then
        fail "fails with '$text': $*" "command succeeded; stdout: $OUT"
        return 1
    fi
    if [[ "$ERR" != *"$text"* ]]; then
        fail "fails with '$text': $*" "exit $rc; stderr: $ERR"
        return 1
    fi
    pass "fails with '$text': ${*: -3}"
}
