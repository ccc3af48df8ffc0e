#!/usr/bin/env bash
# A fresh openCryptoki soft token (libpkcs11_sw, served by its own pkcsslotd) isolated in DIR for peer tests.
# openCryptoki compiles its paths in (/etc/opencryptoki, /var/lib/opencryptoki, /run/lock/opencryptoki,
# /run/pkcsslotd.socket, SysV shared memory keyed by ftok): so pkcsslotd runs in a private mount + IPC namespace
# where temp dirs under DIR are bind-mounted over those paths. A client must run in the same namespace: start
# it with `exec DIR -- cmd` (nsenter). A Node process cannot join a mount namespace itself (setns(CLONE_NEWNS)
# refuses multi-threaded callers), so a test that wants openCryptoki is run through `run`, or re-execs itself
# through it (test/helpers/peer-tokens.ts).
#
#   opencryptoki.sh start DIR          make the namespace, start pkcsslotd, init the token; write DIR/env, DIR/env.json
#   opencryptoki.sh exec DIR -- CMD…   run CMD inside DIR's namespace (with HCE_OPENCRYPTOKI_ENV=DIR/env.json)
#   opencryptoki.sh stop DIR           kill DIR's pkcsslotd by its pid (the namespace dies with it), remove DIR
#   opencryptoki.sh run [DIR] -- CMD…  start (DIR defaults to a new temp dir), exec CMD, stop; exits with CMD's status
#                                      (97, or $HCE_OCK_SETUP_FAILED_STATUS, when the token could not be set up)
#
# Installs opencryptoki with apt-get (as root) when missing. PINs are 8 random characters (openCryptoki allows 4–8).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
label="${HSM_TOKEN_LABEL:-hce-ock}"
startup_timeout_s="${HCE_OCK_STARTUP_TIMEOUT_S:-20}"
default_so_pin=87654321

say() { echo "opencryptoki.sh: $*" >&2; }
die() { say "$*"; exit 1; }

find_library() {
  local p
  if command -v dpkg >/dev/null 2>&1; then
    p="$(dpkg -L opencryptoki libopencryptoki0 2>/dev/null | grep -E '/libopencryptoki\.so(\.0)?$' | head -n1 || true)"
    [ -n "$p" ] && [ -e "$p" ] && { echo "$p"; return 0; }
  fi
  for p in /usr/lib/x86_64-linux-gnu/opencryptoki/libopencryptoki.so /usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so \
           /usr/lib/aarch64-linux-gnu/opencryptoki/libopencryptoki.so /usr/lib64/opencryptoki/libopencryptoki.so \
           /usr/lib/opencryptoki/libopencryptoki.so /usr/lib64/pkcs11/libopencryptoki.so; do
    [ -e "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

ensure_installed() {
  if command -v pkcsslotd >/dev/null 2>&1 && command -v pkcsconf >/dev/null 2>&1 && find_library >/dev/null; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing opencryptoki with apt-get"
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    # policy-rc.d/no systemd: the package's service is not started, which is what we want (we run our own).
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq opencryptoki >&2
  else
    die "openCryptoki is missing; install it with: sudo apt-get install -y opencryptoki"
  fi
  find_library >/dev/null || die "libopencryptoki.so not found after installing opencryptoki"
}

random_pin() { # 8 characters from [A-Za-z0-9]
  local s
  s="$(head -c 64 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 8)"
  [ ${#s} = 8 ] || s="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
  echo "$s"
}

pid_of() { cat "$1/pkcsslotd.pid" 2>/dev/null || true; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
in_ns() { local d="$1"; shift; nsenter -t "$(pid_of "$d")" -m -i --wd="$PWD" -- "$@"; }

cmd_start() {
  local dir="${1:?usage: opencryptoki.sh start DIR}"
  [ "$(id -u)" = 0 ] || die "needs root (mount namespaces and bind mounts)"
  command -v unshare >/dev/null && command -v nsenter >/dev/null || die "unshare/nsenter (util-linux) missing"
  getent group pkcs11 >/dev/null || ensure_installed
  ensure_installed
  getent group pkcs11 >/dev/null || die "the pkcs11 group is missing (the opencryptoki package creates it)"
  local library; library="$(find_library)"
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  [ -z "$(ls -A "$dir" 2>/dev/null)" ] || die "$dir is not empty; use a fresh DIR"

  umask 007
  mkdir -p "$dir/etc" "$dir/lib/swtok/TOK_OBJ" "$dir/run/lock/opencryptoki/swtok" "$dir/log" "$dir/shm"
  chmod 1777 "$dir/shm"
  # One slot: the software token. (The packaged file also lists TPM/ICA/CCA/EP11 slots, absent here.)
  printf 'version opencryptoki-3.1\n\nslot 0\n{\nstdll = libpkcs11_sw.so\ntokname = swtok\n}\n' > "$dir/etc/opencryptoki.conf"
  chgrp -R pkcs11 "$dir/etc" "$dir/lib" "$dir/run/lock" "$dir/log"
  chmod -R g+rwX "$dir/lib" "$dir/run/lock" "$dir/log"

  # The namespace lives exactly as long as pkcsslotd: unshare execs bash, which mounts and execs pkcsslotd -f.
  # /run (= /var/run; /var/lock -> /run/lock on Debian) is replaced wholesale: the socket and pid file are created
  # there. --propagation private keeps every mount out of the host's namespace.
  setsid unshare -m -i --propagation private -- bash -c '
      set -e; d="$1"
      mount --bind "$d/etc" /etc/opencryptoki
      mount --bind "$d/lib" /var/lib/opencryptoki
      mount --bind "$d/run" /run
      mount --bind "$d/shm" /dev/shm
      mkdir -p /var/log/opencryptoki 2>/dev/null && mount --bind "$d/log" /var/log/opencryptoki
      exec pkcsslotd -f' _ "$dir" </dev/null >"$dir/pkcsslotd.out" 2>&1 &
  local pid=$!
  echo "$pid" > "$dir/pkcsslotd.pid"

  local deadline=$((SECONDS + startup_timeout_s))
  until [ -S "$dir/run/pkcsslotd.socket" ]; do
    if ! alive "$pid"; then
      die "pkcsslotd exited during startup: $(tr '\n' ' ' < "$dir/pkcsslotd.out")"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill "$pid" 2>/dev/null || true
      die "pkcsslotd did not create its socket within ${startup_timeout_s}s: $(tr '\n' ' ' < "$dir/pkcsslotd.out")"
    fi
    sleep 0.1
  done

  local so_pin pin out
  so_pin="$(random_pin)"; pin="$(random_pin)"
  out="$(printf '%s\n' "$label" | in_ns "$dir" timeout "$startup_timeout_s" pkcsconf -c 0 -I -S "$default_so_pin" 2>&1)" \
    || { cmd_stop_keep "$dir"; die "pkcsconf -I (init token) failed: $out"; }
  out="$(in_ns "$dir" timeout "$startup_timeout_s" pkcsconf -c 0 -P -S "$default_so_pin" -n "$so_pin" 2>&1)" \
    || { cmd_stop_keep "$dir"; die "pkcsconf -P (set SO PIN) failed: $out"; }
  out="$(in_ns "$dir" timeout "$startup_timeout_s" pkcsconf -c 0 -u -S "$so_pin" -n "$pin" 2>&1)" \
    || { cmd_stop_keep "$dir"; die "pkcsconf -u (init user PIN) failed: $out"; }

  cat > "$dir/env" <<ENV
export HSM_PKCS11_LIBRARY='$library'
export HSM_TOKEN_LABEL='$label'
export HSM_PIN='$pin'
export HSM_SO_PIN='$so_pin'
export HCE_OPENCRYPTOKI_DIR='$dir'
ENV
  node -e 'const [l, t, p, s, d, out] = process.argv.slice(1);
    require("node:fs").writeFileSync(out, JSON.stringify({ HSM_PKCS11_LIBRARY: l, HSM_TOKEN_LABEL: t, HSM_PIN: p, HSM_SO_PIN: s, HCE_OPENCRYPTOKI_DIR: d }, null, 2) + "\n", { mode: 0o600 });' \
    "$library" "$label" "$pin" "$so_pin" "$dir" "$dir/env.json"
  chmod 600 "$dir/env"
  say "token '$label' up (pkcsslotd pid $pid); run clients with: bash $here/opencryptoki.sh exec $dir -- CMD"
  echo "$dir/env"
}

cmd_exec() {
  local dir="${1:?usage: opencryptoki.sh exec DIR -- CMD...}"; shift
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || die "usage: opencryptoki.sh exec DIR -- CMD..."
  dir="$(cd "$dir" && pwd)"
  local pid; pid="$(pid_of "$dir")"
  alive "$pid" || die "no pkcsslotd running for $dir (start it first)"
  HCE_OPENCRYPTOKI_ENV="$dir/env.json" exec nsenter -t "$pid" -m -i --wd="$PWD" -- "$@"
}

# Kills pkcsslotd by its recorded pid and waits (bounded) for it to go; keeps DIR.
cmd_stop_keep() {
  local dir="$1" pid i
  pid="$(pid_of "$dir")"
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && { say "pkcsslotd $pid ignored SIGTERM; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$dir/pkcsslotd.pid"
}

cmd_stop() {
  local dir="${1:?usage: opencryptoki.sh stop DIR}"
  [ -d "$dir" ] || return 0
  cmd_stop_keep "$dir"
  rm -rf "$dir"
}

cmd_run() {
  local dir=""
  if [ "${1:-}" != -- ]; then dir="${1:-}"; shift || true; fi
  [ "${1:-}" = -- ] && shift
  [ $# -gt 0 ] || die "usage: opencryptoki.sh run [DIR] -- CMD..."
  if [ -n "$dir" ]; then
    [ -z "$(ls -A "$dir" 2>/dev/null)" ] || { say "$dir is not empty; use a fresh DIR"; exit "${HCE_OCK_SETUP_FAILED_STATUS:-97}"; }
  else
    dir="$(mktemp -d "${TMPDIR:-/tmp}/hce-ock-XXXXXX")"
  fi
  # DIR is new or empty, so removing it afterwards (stop) removes only what this run made.
  local log; log="$(mktemp "${TMPDIR:-/tmp}/hce-ock-setup-XXXXXX")"
  trap 'cmd_stop "$dir"; rm -f "$log"' EXIT
  trap 'exit 130' INT TERM
  # A distinct status when the token could not be set up, so a caller can tell it from CMD failing.
  ( cmd_start "$dir" >/dev/null 2>"$log" ) || { cat "$log" >&2; exit "${HCE_OCK_SETUP_FAILED_STATUS:-97}"; }
  local status=0
  ( cmd_exec "$dir" -- "$@" ) || status=$?
  exit "$status"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  exec) shift; cmd_exec "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  run) shift; cmd_run "$@" ;;
  *) die "usage: opencryptoki.sh start DIR | exec DIR -- CMD... | stop DIR | run [DIR] -- CMD..." ;;
esac
