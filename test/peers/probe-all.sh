#!/usr/bin/env bash
# Probes SoftHSM2, NSS softokn and openCryptoki, each a fresh token in a temp dir, with test/peers/probe.mjs and
# writes the merged table to OUT (default test/peers/PROBE-RESULTS.table.md; the raw JSON to $HCE_PROBE_JSON_DIR if set).
# Usage: bash test/peers/probe-all.sh [OUT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/PROBE-RESULTS.table.md}"
work="$(mktemp -d "${TMPDIR:-/tmp}/hce-probe-XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$root"

HSM_TOKEN_LABEL=hce-probe bash softhsm/setup.sh "$work/softhsm" 2>/dev/null
node "$here/probe.mjs" "$work/softhsm/env" --name "SoftHSM $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null)" --json "$work/softhsm.json"

bash "$here/nss.sh" "$work/nss" >/dev/null 2>&1
node "$here/probe.mjs" "$work/nss/env.json" --name "NSS $(dpkg-query -W -f '${Version}' libnss3 2>/dev/null)" --json "$work/nss.json"

ock_name="openCryptoki $(dpkg-query -W -f '${Version}' opencryptoki 2>/dev/null || true)"
bash "$here/opencryptoki.sh" run -- bash -c 'node "$1/probe.mjs" "$HCE_OPENCRYPTOKI_ENV" --name "$2" --json "$3"' _ "$here" "$ock_name" "$work/ock.json"

mkdir -p "$(dirname "$out")"
node "$here/probe.mjs" --table "$out" "$work/softhsm.json" "$work/nss.json" "$work/ock.json"
[ -z "${HCE_PROBE_JSON_DIR:-}" ] || cp "$work"/softhsm.json "$work"/nss.json "$work"/ock.json "$HCE_PROBE_JSON_DIR/"
echo "probe-all: wrote $out" >&2
