#!/usr/bin/env bash
# Makes a fresh clone runnable, idempotently: SoftHSM2 and intel-ipsec-mb (apt-get, as root), npm dependencies,
# the native addons and the TypeScript build. `npm test` and `npm start` both run this first.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v softhsm2-util >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "prepare: installing SoftHSM2 with apt-get" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >&2
  else
    echo "prepare: SoftHSM2 is missing; install it with: sudo apt-get install -y softhsm2" >&2
    exit 1
  fi
fi

# intel-ipsec-mb (x86-64): its VAES AES-GCM kernels run 2.7–3× OpenSSL 3.0's on CPUs that have them (README,
# "AES-256-GCM"). Optional: without it the addon seals with OpenSSL.
if [ "$(uname -m)" = x86_64 ] && [ -z "$(node native/ipsec-mb.cjs)" ] && [ "${HSM_IPSEC_MB:-}" != 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "prepare: installing intel-ipsec-mb with apt-get" >&2
  { DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq libipsec-mb-dev >&2 \
    || { apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq libipsec-mb-dev >&2; }; } \
    || echo "prepare: intel-ipsec-mb not installed; AES-GCM runs on OpenSSL only" >&2
fi

# npm ci when node_modules is missing or older than the lockfile (it also builds the native addon).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "prepare: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi

# The native addons: (re)built when missing or older than their sources (npm ci builds them too).
# Also rebuilt when intel-ipsec-mb appeared (or changed) since: the GCM addon links it when present.
addon=native/build/Release/hsm_erasure.node
imb=$(node native/ipsec-mb.cjs)
if [ ! -f "$addon" ] || [ ! -f native/build/Release/hsm_gcm.node ] || [ -n "$(find native -maxdepth 1 -newer "$addon" \( -name '*.cc' -o -name '*.h' -o -name '*.inc' -o -name '*.cjs' -o -name binding.gyp \))" ] \
  || { [ -n "$imb" ] && ! node -e "process.exit(require('./native/build/Release/hsm_gcm.node').ipsecMbLinked ? 0 : 1)" 2>/dev/null; }; then
  echo "prepare: building the native addons" >&2
  npm run --silent build:native >&2 || echo "prepare: native build failed; the TypeScript reference codec will be used" >&2
fi

npm run --silent build >&2
