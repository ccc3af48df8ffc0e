#!/usr/bin/env bash
# Creates (once) a project-local SoftHSM2 token for the demo and the CLI, and writes softhsm/local/env:
#   SOFTHSM2_CONF, HSM_PKCS11_LIBRARY, HSM_TOKEN_LABEL, HSM_PIN
# Idempotent: an existing token and env file are kept. Everything lives in softhsm/local/ (gitignored, mode 700).
# Usage: bash softhsm/setup.sh [DIR] && . DIR/env      (DIR defaults to softhsm/local; the demo and tests use a temp DIR)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
local_dir="${1:-$here/local}"
label="${HSM_TOKEN_LABEL:-hce-local}"

if ! command -v softhsm2-util >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2
  else
    echo "setup: SoftHSM2 is missing; install it with: sudo apt-get install -y softhsm2" >&2
    exit 1
  fi
fi

library="$(bash "$here/find-library.sh")"
if [ -f "$local_dir/env" ] && [ -n "$(ls -A "$local_dir/tokens" 2>/dev/null)" ]; then
  echo "setup: token already set up; load it with: . $local_dir/env" >&2
  exit 0
fi

umask 077
mkdir -p "$local_dir/tokens"
sed "s#@TOKEN_DIR@#$local_dir/tokens#" "$here/softhsm2.conf.template" > "$local_dir/softhsm2.conf"
export SOFTHSM2_CONF="$local_dir/softhsm2.conf"
pin="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
so_pin="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" >/dev/null
cat > "$local_dir/env" <<ENV
export SOFTHSM2_CONF='$local_dir/softhsm2.conf'
export HSM_PKCS11_LIBRARY='$library'
export HSM_TOKEN_LABEL='$label'
export HSM_PIN='$pin'
ENV
echo "setup: token '$label' created; load it with: . $local_dir/env" >&2
