// The engine on openCryptoki's soft token (Cryptoki 2.20: no GCM, no key wrap; the engine wraps with
// AES-CBC-PAD+HMAC-SHA-256): a fresh token in a private mount/IPC namespace made by test/peers/opencryptoki.sh
// (which installs openCryptoki when missing); this file re-executes itself inside it.
import t from 'tap';
import { peerLifecycleTests } from './helpers/peer-lifecycle.js';
import { peerTokens, reexecInOpenCryptokiNamespace, skippedPeers } from './helpers/peer-tokens.js';

reexecInOpenCryptokiNamespace(); // returns here only inside the namespace (or when openCryptoki is unavailable)
const peers = peerTokens(['opencryptoki']);
for (const { name, reason } of skippedPeers()) t.comment(`peer ${name} skipped: ${reason}`);
if (process.getuid?.() === 0 && process.env.HCE_PEERS_NO_OPENCRYPTOKI !== '1') t.equal(peers.length, 1, 'openCryptoki is set up here (root)');
peerLifecycleTests(t, peers);
