#!/usr/bin/env bash
# Makes a fresh clone runnable, idempotently: SoftHSM2 (apt-get, as root), npm dependencies, the native
# erasure addon and the TypeScript build. `npm test` and `npm start` both run this first.
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

# npm ci when node_modules is missing or older than the lockfile (it also builds the native addon).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "prepare: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi

# The native erasure addon: (re)built when missing or older than its sources (npm ci builds it too).
addon=native/build/Release/hsm_erasure.node
if [ ! -f "$addon" ] || [ -n "$(find native -maxdepth 1 -newer "$addon" \( -name '*.cc' -o -name '*.h' -o -name '*.inc' -o -name binding.gyp \))" ]; then
  echo "prepare: building the native erasure addon" >&2
  npm run --silent build:native >&2 || echo "prepare: native build failed; the TypeScript reference codec will be used" >&2
fi

npm run --silent build >&2
