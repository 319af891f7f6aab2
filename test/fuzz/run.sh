#!/usr/bin/env bash
# Runs libFuzzer targets over their seed corpora: `bash test/fuzz/run.sh smoke|long BIN...`.
# Each build-fuzz/fuzz_X runs over a scratch copy of test/fuzz/corpus/fuzz_X/ (the repository is
# never modified); smoke runs FUZZ_SECONDS (default 10) per target, long 300. Exits non-zero if
# any target crashes, leaks or times out; crash inputs are kept under the scratch dir and named.
set -u

mode=${1:-}
shift || true
case "$mode" in
smoke) secs=${FUZZ_SECONDS:-10} ;;
long) secs=${FUZZ_SECONDS:-300} ;;
*)
    echo "usage: $0 smoke|long build-fuzz/fuzz_X..." >&2
    exit 2
    ;;
esac
if [ $# -eq 0 ]; then
    echo "run.sh: no fuzz targets given" >&2
    exit 2
fi

# UBSan only prints by default; a report must fail the run like an ASan one does.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

root=$(cd "$(dirname "$0")/../.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tandem-fuzz.XXXXXX")
failed=0
keep=0

for bin in "$@"; do
    name=$(basename "$bin")
    if [ ! -x "$bin" ]; then
        echo "FAIL $name: $bin is not an executable"
        failed=1
        continue
    fi
    work="$scratch/$name"
    mkdir -p "$work/corpus" "$work/artifacts"
    seeds="$root/test/fuzz/corpus/$name"
    if [ -d "$seeds" ]; then
        cp -R "$seeds/." "$work/corpus/"
    fi
    nseeds=$(find "$work/corpus" -type f | wc -l)
    log="$work/fuzz.log"
    start=$(date +%s)
    "$bin" "$work/corpus" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -timeout=25 -print_final_stats=1 -artifact_prefix="$work/artifacts/" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "ok   $name: ${runs:-?} runs in ${took}s over $nseeds seeds"
    else
        crash=$(find "$work/artifacts" -type f | head -n 1)
        echo "FAIL $name: exit $rc after ${took}s; input ${crash:-none}; log $log"
        grep -E 'ERROR|SUMMARY|round trip failed' "$log" | head -n 5 | sed 's/^/     /'
        failed=1
        keep=1
    fi
done

if [ $keep -eq 0 ]; then
    rm -rf "$scratch"
fi
exit $failed
