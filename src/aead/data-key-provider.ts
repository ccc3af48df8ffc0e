// What the sealed-object code (aead/ and object/) needs from the HSM side: data keys generated, unwrapped and
// rewrapped under a root key. The engine implements it over PKCS#11 (with its DEK cache); tests use an in-memory double.

/**
 * AAD bound to a wrapped DEK: raw bytes (sealed objects bind their canonical context) or a list of strings
 * (objects as shards bind their id). A provider must keep the two forms apart (the HSM's encoding: hsm/aad.ts).
 */
export type DataKeyAad = Uint8Array | readonly string[];

/** Which root key, and which version of it, a wrapped DEK was made under. */
export interface WrappedKeyInfo {
  keyId: string;
  keyVersion: number;
}

export interface DataKeyProvider<Aad extends DataKeyAad = Uint8Array> {
  /** Fresh random 32-byte DEK, wrapped by the HSM under the root key's newest version with `aad` bound. Caller owns (and zeroes) `plaintext`. */
  generateDataKey(keyId: string, opts: { aad: Aad }): Promise<{ plaintext: Uint8Array; wrapped: Uint8Array }>;
  /** DEK plaintext (a copy the caller owns and zeroes). Wrong aad / tampered → DecryptionError; disabled key → KeyStateError; unknown → KeyNotFoundError. */
  unwrap(wrapped: Uint8Array, opts: { aad: Aad }): Promise<Uint8Array>;
  /** Same DEK wrapped under the newest version of its root key. For a given root key the wrapped length is constant across versions. */
  rewrap(wrapped: Uint8Array, opts: { aad: Aad }): Promise<Uint8Array>;
  /**
   * Optional: the root key and version named inside a wrapped DEK (reported by putObject / rewrapObject).
   * Without it the HSM's wrapped-key layout (hsm/wrapped-key.ts) is assumed.
   */
  describeWrapped?(wrapped: Uint8Array): WrappedKeyInfo;
}
