#!/usr/bin/env bash
# Runs every unit-test program (check suites) given on the command line and prints a summary.
# Each suite prints check's own "100%: Checks: N, Failures: 0, Errors: 0" line.
set -u
pass=0
fail=0
failed=()
for t in "$@"; do
  if CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-20} "$t"; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    failed+=("$(basename "$t")")
  fi
done
echo "unit suites: ${pass} passed, ${fail} failed"
if [ "$fail" -gt 0 ]; then
  echo "failed suites: ${failed[*]}"
  exit 1
fi
