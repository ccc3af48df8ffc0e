#!/usr/bin/env bash
# The test command (`npm test`): prepares the machine, runs every tap test, ends with "N passed, N failed".
# HSM tests make their own SoftHSM token in a temp dir (test/helpers/token.ts); no developer token is used.
set -uo pipefail
cd "$(dirname "$0")/.."
bash softhsm/prepare.sh || { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
npx tap --reporter=tap "${@:-test/**/*.test.ts}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# tap's closing summary ("# { total: N, pass: N, fail: N, skip: N }") counts leaf assertions; restate it plainly.
summary=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -n 1)
num() { echo "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' || echo 0; }
passed=$(num pass)
failed=$(num fail)
skipped=$(num skip)
if [ -z "$summary" ] || { [ "$status" != 0 ] && [ "$failed" = 0 ]; }; then failed=$((failed + 1)); fi
rm -f "$log"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
