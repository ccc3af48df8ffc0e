#!/usr/bin/env bash
# A real S3 peer for tests: N independent single-OSD Ceph clusters on loopback, one per storage node, each with
# mon + one bluestore OSD on a sparse file + radosgw (beast), one S3 user and one bucket. Everything (data, run files,
# logs, keyrings, pid files) lives under the directory given; `stop` kills exactly the daemons whose pid files are there.
#
#   bash test/peers/ceph.sh start DIR [NODES=6]   → DIR/nodes.json (endpoints, buckets, credentials) and DIR/nodes.env
#   bash test/peers/ceph.sh stop DIR              → kills every daemon started in DIR (by pid), removes DIR
#   bash test/peers/ceph.sh rgw-stop NODE_DIR     → stops that node's radosgw only (its S3 endpoint refuses; data stays)
#   bash test/peers/ceph.sh rgw-start NODE_DIR    → starts it again and waits until it answers
#
# Needs root on Debian 12 (installs ceph-mon ceph-osd ceph-mgr radosgw with apt-get when missing). Traps, from
# /work/shared/FIELD-NOTES.md: auth off needs `ms_mon_client_mode = crc secure` or radosgw hangs 300 s; OSD/mgr bind
# 6800–7300, and mon and S3 ports must not be in the kernel's ephemeral range (a client's source port can take one,
# or a probe can connect to itself); pools are pre-created (size 1, few PGs,
# autoscale off); beast needs tcp_nodelay=1 or small responses take ~40 ms.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
NODE_TIMEOUT_S=${CEPH_NODE_TIMEOUT_S:-120}
REGION=us-east-1
RGW_POOLS=(.rgw.root default.rgw.control default.rgw.meta default.rgw.log default.rgw.buckets.index
  default.rgw.buckets.non-ec default.rgw.buckets.data)

log() { echo "ceph.sh: $*" >&2; }
die() { log "$*"; exit 1; }
now_ms() { date +%s%3N; }

install_ceph() {
  local missing=0 t0
  for c in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
    command -v "$c" >/dev/null 2>&1 || missing=1
  done
  [ "$missing" = 0 ] && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || die "Ceph is missing; install: apt-get install --no-install-recommends ceph-mon ceph-osd ceph-mgr radosgw"
  t0=$(now_ms)
  log "installing ceph-mon ceph-osd ceph-mgr radosgw with apt-get"
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends ceph-mon ceph-osd ceph-mgr radosgw >&2
  log "install took $(( $(now_ms) - t0 )) ms"
}

# Free TCP ports below the kernel's ephemeral range (no outgoing connection takes them as a source port, and a
# connect probe cannot self-connect) and above Ceph's 6800–7300 daemon range; distinct, each checked bindable.
free_ports() {
  node -e '
    const net = require("net"); const fs = require("fs"); const n = Number(process.argv[1]);
    const low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    const from = 10000, to = Math.max(from + 1000, Math.min(low, 32768));
    const free = p => new Promise(r => { const s = net.createServer(); s.once("error", () => r(false));
      s.listen(p, "127.0.0.1", () => s.close(() => r(true))); });
    (async () => { const ports = new Set();
      while (ports.size < n) { const p = from + Math.floor(Math.random() * (to - from)); if (!ports.has(p) && await free(p)) ports.add(p); }
      console.log([...ports].join(" ")); })();' "$1"
}

# The node's ceph.conf. Auth is off (loopback, throwaway data); every path is under the node's directory.
write_conf() {
  local d=$1 fsid=$2 mon_port=$3 rgw_port=$4
  cat >"$d/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
mon_initial_members = a
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc secure
ms_bind_ipv4 = true
ms_bind_ipv6 = false
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
keyring = $d/keyring
run_dir = $d/run
admin_socket = $d/run/\$name.asok
log_file = $d/log/\$name.log
mon_cluster_log_file = $d/log/cluster.log
mon_data = $d/mon/\$name
osd_data = $d/osd/\$name
mgr_data = $d/mgr/\$name
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 4
osd_pool_default_pgp_num = 4
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
mon_data_avail_warn = 2
mon_data_avail_crit = 1
mon_max_pg_per_osd = 500
# Commit mon changes quickly: each pool command otherwise waits ~1 s for the next paxos round.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
osd_objectstore = bluestore
osd_memory_target = 939524096
osd_op_num_shards = 2
bluestore_block_path = $d/osd/\$name.block
bluestore_block_create = true
bluestore_block_size = 10737418240
bluestore_fsck_on_mount = false
bluestore_cache_autotune = true
err_to_stderr = false
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw_data = $d/rgw
rgw_thread_pool_size = 64
rgw_init_timeout = $NODE_TIMEOUT_S
rgw_enable_usage_log = false
rgw_dynamic_resharding = false
debug_rgw = 1
EOF
}

# Starts a daemon in the foreground (-f: logs to its log file), backgrounded with its pid recorded by us,
# its stdio on files so nothing keeps the caller's pipes open.
spawn() {
  local d=$1 name=$2; shift 2
  "$@" -f </dev/null >>"$d/log/$name.out" 2>&1 &
  echo $! >"$d/pids/$name.pid"
}

# --foreground: no process group of its own, so the node's deadline (a group kill) reaches the command too.
ceph_cli() { local d=$1; shift; timeout --foreground 60 ceph -c "$d/ceph.conf" --connect-timeout 30 "$@"; }

# One node, start to finish: mon → OSD → pools + user → radosgw → bucket. Runs under `timeout`.
start_node() {
  local d=$1 mon_port=$2 rgw_port=$3 fsid osd_uuid access secret t0 id
  t0=$(now_ms)
  trap 'log "node $d: failed at line $LINENO: $BASH_COMMAND (logs in $d/log; phases: $(tr "\n" " " <"$d/log/phases" 2>/dev/null))"' ERR
  fsid=$(cat /proc/sys/kernel/random/uuid)
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  mkdir -p "$d"/{run,log,pids,mon/mon.a,osd/osd.0,rgw}
  phase() { echo "$1@$(( $(now_ms) - t0 ))ms" >>"$d/log/phases"; }
  write_conf "$d" "$fsid" "$mon_port" "$rgw_port"
  ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$d/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$d/monmap" >/dev/null
  ceph-mon -c "$d/ceph.conf" -i a --mkfs --monmap "$d/monmap" --keyring "$d/keyring" >>"$d/log/mkfs.out" 2>&1
  spawn "$d" mon.a ceph-mon -c "$d/ceph.conf" -i a
  phase mon

  id=$(ceph_cli "$d" osd new "$osd_uuid")
  [ "$id" = 0 ] || die "node $d: osd new gave '$id'"
  ceph-osd -c "$d/ceph.conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$d/log/mkfs.out" 2>&1
  spawn "$d" osd.0 ceph-osd -c "$d/ceph.conf" -i 0
  phase osd

  # Pools before radosgw, so it never creates them lazily (2–3 s on first requests); one interactive ceph session.
  { for p in "${RGW_POOLS[@]}"; do
      local pg=4; [ "$p" = default.rgw.buckets.data ] && pg=16
      echo "osd pool create $p $pg $pg replicated"
      echo "osd pool application enable $p rgw"
    done; } | ceph_cli "$d" >>"$d/log/pools.out" 2>&1
  phase pools

  access=$(head -c 15 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
  secret=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')
  timeout --foreground 90 radosgw-admin -c "$d/ceph.conf" user create --uid=shards --display-name=shards \
    --access-key="$access" --secret-key="$secret" >>"$d/log/user.out" 2>&1
  phase user
  spawn "$d" rgw.a radosgw -c "$d/ceph.conf" -n client.rgw.a

  until (exec 3<>"/dev/tcp/127.0.0.1/$rgw_port") 2>/dev/null; do
    kill -0 "$(cat "$d/pids/rgw.a.pid")" 2>/dev/null || die "node $d: radosgw exited (see $d/log)"
    sleep 0.2
  done
  phase rgw-listening
  # Each attempt bounded (a request can stall while the OSD's PGs are still peering); retried until the node's
  # deadline (the caller's `timeout`). An attempt that created the bucket and lost the answer sees "already owned".
  (cd "$ROOT" && ENDPOINT="http://127.0.0.1:$rgw_port" ACCESS="$access" SECRET="$secret" REGION="$REGION" AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true node --input-type=module -e '
    import { S3Client, CreateBucketCommand } from "@aws-sdk/client-s3";
    const s3 = new S3Client({ endpoint: process.env.ENDPOINT, region: process.env.REGION, forcePathStyle: true,
      credentials: { accessKeyId: process.env.ACCESS, secretAccessKey: process.env.SECRET }, maxAttempts: 1,
      requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" });
    for (let attempt = 1; ; attempt++) {
      try { await s3.send(new CreateBucketCommand({ Bucket: "shards" }), { abortSignal: AbortSignal.timeout(10_000) }); break; }
      catch (err) {
        if (err.name === "BucketAlreadyOwnedByYou") break;
        console.error(`create bucket, attempt ${attempt}: ${err.name}: ${err.message}`);
        await new Promise(r => setTimeout(r, Math.min(2000, 200 * attempt)));
      }
    }') >>"$d/log/bucket.out" 2>&1
  phase bucket
  printf '{"endpoint":"http://127.0.0.1:%s","bucket":"shards","region":"%s","credentials":{"accessKeyId":"%s","secretAccessKey":"%s"},"rgwPidFile":"%s","dir":"%s"}\n' \
    "$rgw_port" "$REGION" "$access" "$secret" "$d/pids/rgw.a.pid" "$d" >"$d/node.json"
  echo $(( $(now_ms) - t0 )) >"$d/startup_ms"
}

# Kills one daemon by its pid file, only if that pid still runs a command naming this directory (no pid reuse).
kill_pidfile() {
  local f=$1 dir=$2 pid
  pid=$(cat "$f" 2>/dev/null) || return 0
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir" || return 0
  kill -CONT "$pid" 2>/dev/null || true   # a SIGSTOPped daemon would ignore TERM until continued
  kill -TERM "$pid" 2>/dev/null || true
  echo "$pid"
}

# Kills every daemon whose pid file is under the given pid-file glob's directories, TERM then (after 2 s) KILL.
kill_pids_in() {
  local dir=$1 pids=() p i f; shift
  for f in "$@"; do
    [ -e "$f" ] || continue
    p=$(kill_pidfile "$f" "$dir") && [ -n "$p" ] && pids+=("$p")
  done
  for i in $(seq 1 10); do   # up to 2 s for a clean exit, then KILL (the data is thrown away anyway)
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}

kill_all() { kill_pids_in "$1" "$1"/node*/pids/*.pid; }

# One node with one retry: a node that misses its deadline (a stalled daemon, a port taken between the check and the
# bind) is killed, its directory kept as nodeI.failed for the logs, and started afresh on the spare ports.
start_node_retrying() {
  local d=$1 mon_port=$2 rgw_port=$3 spare_mon=$4 spare_rgw=$5
  timeout --kill-after=5 "$NODE_TIMEOUT_S" bash "$0" _node "$d" "$mon_port" "$rgw_port" && return 0
  log "node $d did not come up within ${NODE_TIMEOUT_S} s (phases: $(tr '\n' ' ' <"$d/log/phases" 2>/dev/null)); retrying once"
  kill_pids_in "$d" "$d"/pids/*.pid
  rm -rf "$d.failed" && mv "$d" "$d.failed"
  timeout --kill-after=5 "$NODE_TIMEOUT_S" bash "$0" _node "$d" "$spare_mon" "$spare_rgw"
}

stop_all() {
  [ -d "$1" ] || return 0
  kill_all "$1"
  rm -rf "$1"
}

start_all() {
  local dir=$1 n=${2:-6} t0 ports i pids=() failed=0
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "NODES must be a positive integer"
  [ "$(id -u)" = 0 ] || die "needs root (Ceph daemons, apt-get)"
  install_ceph
  command -v node >/dev/null || die "node is missing"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  t0=$(now_ms)
  read -r -a ports <<<"$(free_ports $((4 * n)))"   # two per node, two spares per node for its retry
  for ((i = 0; i < n; i++)); do
    start_node_retrying "$dir/node$i" "${ports[@]:$((4 * i)):4}" 2>>"$dir/start.err" &
    pids+=($!)
  done
  for ((i = 0; i < n; i++)); do
    if ! wait "${pids[$i]}"; then
      log "node $i did not come up in two tries of ${NODE_TIMEOUT_S} s (logs: $dir/node$i/log, $dir/node$i.failed/log)"
      failed=1
    fi
  done
  if [ "$failed" = 1 ]; then
    tail -n 20 "$dir/start.err" >&2 || true
    kill_all "$dir"   # nothing left running; the logs stay until `stop`
    exit 1
  fi
  local total=$(( $(now_ms) - t0 ))
  { echo "{\"startupMs\":$total,\"nodes\":["
    for ((i = 0; i < n; i++)); do
      [ "$i" -gt 0 ] && echo ","
      cat "$dir/node$i/node.json"
    done
    echo "]}"; } >"$dir/nodes.json"
  { for ((i = 0; i < n; i++)); do
      node -e 'const j = require(process.argv[1]); const i = process.argv[2];
        console.log(`S3_NODE${i}_ENDPOINT=${j.endpoint}\nS3_NODE${i}_BUCKET=${j.bucket}\nS3_NODE${i}_REGION=${j.region}\nS3_NODE${i}_ACCESS_KEY_ID=${j.credentials.accessKeyId}\nS3_NODE${i}_SECRET_ACCESS_KEY=${j.credentials.secretAccessKey}`);' \
        "$dir/node$i/node.json" "$i"
    done; echo "S3_NODES=$n"; } >"$dir/nodes.env"
  chmod 600 "$dir/nodes.json" "$dir/nodes.env"
  log "$n nodes up in $total ms ($dir/nodes.json)"
}

# One node's radosgw, stopped (a node that is down: connections refused) and started again on the same port.
rgw_stop() {
  local d=$1 p i
  p=$(kill_pidfile "$d/pids/rgw.a.pid" "$d") || true
  [ -n "$p" ] || return 0
  for i in $(seq 1 25); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$p" 2>/dev/null || true
}

rgw_start() {
  local d=$1 port t0
  [ -f "$d/ceph.conf" ] || die "no node in $d"
  port=$(sed -n 's/^rgw_frontends = .*endpoint=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$d/ceph.conf")
  [ -n "$port" ] || die "no radosgw port in $d/ceph.conf"
  if [ -r "$d/pids/rgw.a.pid" ] && kill -0 "$(cat "$d/pids/rgw.a.pid")" 2>/dev/null; then return 0; fi
  t0=$(now_ms)
  spawn "$d" rgw.a radosgw -c "$d/ceph.conf" -n client.rgw.a
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    kill -0 "$(cat "$d/pids/rgw.a.pid")" 2>/dev/null || die "node $d: radosgw exited (see $d/log)"
    [ $(( $(now_ms) - t0 )) -lt $(( NODE_TIMEOUT_S * 1000 )) ] || die "node $d: radosgw did not listen within ${NODE_TIMEOUT_S} s"
    sleep 0.1
  done
}

case "${1:-}" in
  start) [ -n "${2:-}" ] || die "usage: ceph.sh start DIR [NODES]"; start_all "$2" "${3:-6}" ;;
  stop) [ -n "${2:-}" ] || die "usage: ceph.sh stop DIR"; stop_all "$2" ;;
  rgw-stop) [ -n "${2:-}" ] || die "usage: ceph.sh rgw-stop NODE_DIR"; rgw_stop "$2" ;;
  rgw-start) [ -n "${2:-}" ] || die "usage: ceph.sh rgw-start NODE_DIR"; rgw_start "$2" ;;
  _node) start_node "$2" "$3" "$4" ;;
  *) die "usage: ceph.sh start DIR [NODES] | stop DIR | rgw-stop NODE_DIR | rgw-start NODE_DIR" ;;
esac
