// The engine on real PKCS#11 providers other than openCryptoki, each a fresh token made by the test itself
// (test/helpers/peer-tokens.ts): SoftHSM2 and NSS softokn (test/peers/nss.sh installs NSS when missing).
// openCryptoki runs in test/hsm-peers-opencryptoki.test.ts: with SoftHSM in the same process, the process
// segfaults at exit (both modules loaded, whether or not C_Finalize was called).
import t from 'tap';
import { peerLifecycleTests } from './helpers/peer-lifecycle.js';
import { peerTokens, skippedPeers } from './helpers/peer-tokens.js';

const peers = peerTokens(['softhsm', 'nss']);
for (const { name, reason } of skippedPeers()) t.comment(`peer ${name} skipped: ${reason}`);
t.same(peers.map((p) => p.name), ['softhsm', 'nss'], 'SoftHSM and NSS are set up here');
peerLifecycleTests(t, peers);
