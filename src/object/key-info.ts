// Which root key and version a wrapped DEK names, for putObject's and rewrapObject's reports: the provider's
// answer when it has one, else the HSM's wrapped-key layout (hsm/wrapped-key.ts, its pure parser only).
import type { WrappedKeyInfo } from '../aead/data-key-provider.js';
import { parseWrapped, wrappedKeyIdHex } from '../hsm/wrapped-key.js';
import type { ObjectKeyProvider } from './deps.js';

export function wrappedKeyInfo(keys: ObjectKeyProvider, wrapped: Uint8Array): WrappedKeyInfo {
  if (keys.describeWrapped) return keys.describeWrapped(wrapped);
  const h = wrappedKeyIdHex(wrapped);
  return {
    keyId: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`,
    keyVersion: parseWrapped(wrapped).version,
  };
}
