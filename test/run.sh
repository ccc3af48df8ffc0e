#!/usr/bin/env bash
# The test command (`npm test`): prepares the machine, runs every tap test, ends with "N passed, N failed".
# HSM tests make their own SoftHSM token in a temp dir (test/helpers/token.ts); no developer token is used.
set -uo pipefail
cd "$(dirname "$0")/.."
bash softhsm/prepare.sh || { echo "0 passed, 1 failed"; exit 1; }

# The real peers the tests use, installed once and up front when missing (as root with apt-get): test files run two
# at a time and would otherwise race for the dpkg lock. Each test's own setup script still checks (and waits for the
# lock) on its own, so a single test file also runs by itself.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  need=()
  { command -v certutil >/dev/null 2>&1 && ldconfig -p | grep -q libsoftokn3.so; } || need+=(libnss3 libnss3-tools)
  { command -v pkcsslotd >/dev/null 2>&1 && command -v pkcsconf >/dev/null 2>&1; } || need+=(opencryptoki)
  for c in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
    command -v "$c" >/dev/null 2>&1 || { need+=(ceph-mon ceph-osd ceph-mgr radosgw); break; }
  done
  [ -x /usr/bin/chromium ] || need_chromium=1
  if [ ${#need[@]} -gt 0 ] || [ -n "${need_chromium:-}" ]; then
    echo "test: installing peers with apt-get: ${need[*]} ${need_chromium:+chromium}" >&2
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
    if [ ${#need[@]} -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >&2 \
        || echo "test: apt-get could not install ${need[*]}; the tests that need them will say so" >&2
    fi
    if [ -n "${need_chromium:-}" ]; then
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >&2 \
        || echo "test: apt-get could not install chromium; the browser tests will say so" >&2
    fi
  fi
fi

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
