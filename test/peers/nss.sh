#!/usr/bin/env bash
# Makes a fresh NSS softokn token (an sql: NSS DB with a random password = the user PIN) in DIR for peer tests,
# and writes DIR/env (shell, `. DIR/env`) and DIR/env.json with HSM_PKCS11_LIBRARY, HSM_TOKEN_LABEL, HSM_PIN and
# HSM_INIT_ARGS (softokn's C_Initialize reserved argument string, which names the DB). Installs libnss3 and
# libnss3-tools with apt-get (as root) when missing. Prints the env file's path on stdout.
# Usage: bash test/peers/nss.sh DIR      (DIR is created; it must be new or empty)
set -euo pipefail
dir="${1:?usage: nss.sh DIR}"
label="NSS Certificate DB" # softokn's fixed label for the key/cert DB token (slot "NSS User Private Key and Certificate Services")

say() { echo "nss.sh: $*" >&2; }
die() { say "$*"; exit 1; }

find_softokn() {
  local p
  if command -v dpkg >/dev/null 2>&1; then
    p="$(dpkg -L libnss3 2>/dev/null | grep -E '/libsoftokn3\.so$' | head -n1 || true)"
    [ -n "$p" ] && [ -f "$p" ] && { echo "$p"; return 0; }
  fi
  p="$(ldconfig -p 2>/dev/null | awk '/libsoftokn3\.so /{print $NF; exit}')"
  [ -n "$p" ] && [ -f "$p" ] && { echo "$p"; return 0; }
  for p in /usr/lib/x86_64-linux-gnu/libsoftokn3.so /usr/lib/aarch64-linux-gnu/libsoftokn3.so \
           /usr/lib64/libsoftokn3.so /usr/lib/libsoftokn3.so /usr/lib/x86_64-linux-gnu/nss/libsoftokn3.so \
           /usr/lib64/nss/libsoftokn3.so /usr/local/lib/libsoftokn3.so /opt/homebrew/lib/libsoftokn3.dylib; do
    [ -f "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

if ! command -v certutil >/dev/null 2>&1 || ! find_softokn >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing libnss3 libnss3-tools with apt-get"
    # Another apt-get may hold the dpkg lock (parallel setups): wait for it rather than fail.
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq libnss3 libnss3-tools >&2
  else
    die "NSS is missing; install it with: sudo apt-get install -y libnss3 libnss3-tools"
  fi
fi
library="$(find_softokn)" || die "libsoftokn3.so not found after installing libnss3"

case "$dir" in *[\"\'\$\`\\\ ]*) die "DIR must not contain quotes, spaces, \$, \` or \\ (it goes into softokn's init string): $dir" ;; esac
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
[ -z "$(ls -A "$dir/db" 2>/dev/null)" ] || die "$dir/db already holds an NSS DB; use a fresh DIR"
umask 077
mkdir -p "$dir/db"
pin="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$pin" > "$dir/pwfile"
certutil -N -d "sql:$dir/db" -f "$dir/pwfile" >&2 || die "certutil -N failed for sql:$dir/db"
rm -f "$dir/pwfile"
[ -f "$dir/db/key4.db" ] || die "certutil made no key4.db in $dir/db"

init_args="configdir='sql:$dir/db' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
cat > "$dir/env" <<ENV
export HSM_PKCS11_LIBRARY='$library'
export HSM_TOKEN_LABEL='$label'
export HSM_PIN='$pin'
export HSM_INIT_ARGS="$init_args"
ENV
node -e 'const [l, t, p, i, out] = process.argv.slice(1);
  require("node:fs").writeFileSync(out, JSON.stringify({ HSM_PKCS11_LIBRARY: l, HSM_TOKEN_LABEL: t, HSM_PIN: p, HSM_INIT_ARGS: i }, null, 2) + "\n", { mode: 0o600 });' \
  "$library" "$label" "$pin" "$init_args" "$dir/env.json"
say "token '$label' in sql:$dir/db; load it with: . $dir/env"
echo "$dir/env"
