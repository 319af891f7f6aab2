#!/usr/bin/env bash
# Runs every benchmark program in $BUILD/bench (default build/) with its usual arguments and prints
# their figures. What `make bench` runs. Benchmarks print figures; they never fail on a missed
# target, so a non-zero exit here means a benchmark could not run.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}

if [ ! -d "$BUILD/bench" ]; then
    echo "run.sh: no $BUILD/bench; run 'make all' first" >&2
    exit 1
fi

# Arguments per benchmark; anything not listed runs with none.
args_for() {
    case "$1" in
    apiserver_bench) echo "--server $BUILD/bin/tandem-apiserver" ;;
    *) echo "" ;;
    esac
}

failed=0
ran=0
echo "machine: $(nproc) cores, $(uname -srm), $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
for b in "$BUILD"/bench/*; do
    if [ ! -f "$b" ] || [ ! -x "$b" ]; then continue; fi
    name=$(basename "$b")
    ran=$((ran + 1))
    echo
    echo "== $name $(args_for "$name")"
    # shellcheck disable=SC2046
    timeout --signal=TERM --kill-after=30 "$BENCH_TIMEOUT" "$b" $(args_for "$name")
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "run.sh: $name exited $rc" >&2
        failed=$((failed + 1))
    fi
done
if [ "$ran" -eq 0 ]; then
    echo "run.sh: no benchmark programs in $BUILD/bench" >&2
    exit 1
fi
echo
echo "run.sh: $ran benchmark(s), $failed failed to run"
[ "$failed" -eq 0 ]
