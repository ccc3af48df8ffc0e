#!/usr/bin/env bash
# `npm run demo:ceph`: the demo against a local Ceph — six single-OSD clusters with radosgw (test/peers/ceph.sh) in a
# temp dir, the demo with their nodes.json as its store config (4+2 shards, one bucket per node), then everything
# stopped and removed, also when the demo fails. Needs root (Ceph daemons). DEMO_SIZE_MIB sets the object size (64).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=$(mktemp -d /tmp/hce-demo-ceph-XXXXXX)
trap 'bash "$HERE/ceph.sh" stop "$DIR"' EXIT
bash "$HERE/ceph.sh" start "$DIR" "${DEMO_NODES:-6}"
AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true \
  node "$ROOT/dist/cli/main.js" demo --size "${DEMO_SIZE_MIB:-64}" --store-config "$DIR/nodes.json"
