#!/usr/bin/env bash
# The test command (`npm test`): prepares the machine, runs every tap test, ends with "N passed, N failed".
# HSM tests make their own SoftHSM token in a temp dir (test/helpers/token.ts); no developer token is used.
set -uo pipefail
cd "$(dirname "$0")/.."
bash softhsm/prepare.sh || { echo "0 passed, 1 failed"; exit 1; }

log=$(mktemp)
npx tap --reporter=tap "${@:-test/**/*.test.ts}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Count leaf assertions across all files (indented "ok"/"not ok" lines that are not subtest summaries).
passed=$(grep -cE '^\s*ok [0-9]+' "$log" || true)
failed=$(grep -cE '^\s*not ok [0-9]+' "$log" || true)
rm -f "$log"
echo "${passed} passed, ${failed} failed"
exit "$status"
