// What the object cipher needs from the HSM side: data keys generated, unwrapped and rewrapped under a root key.
// The engine implements it over PKCS#11 (with its DEK cache); tests use an in-memory double.

export interface DataKeyProvider {
  /** Fresh random 32-byte DEK, wrapped by the HSM under the root key's newest version with `aad` bound. Caller owns (and zeroes) `plaintext`. */
  generateDataKey(keyId: string, opts: { aad: Uint8Array }): Promise<{ plaintext: Uint8Array; wrapped: Uint8Array }>;
  /** DEK plaintext (a copy the caller owns and zeroes). Wrong aad / tampered → DecryptionError; disabled key → KeyStateError; unknown → KeyNotFoundError. */
  unwrap(wrapped: Uint8Array, opts: { aad: Uint8Array }): Promise<Uint8Array>;
  /** Same DEK wrapped under the newest version of its root key. For a given root key the wrapped length is constant across versions. */
  rewrap(wrapped: Uint8Array, opts: { aad: Uint8Array }): Promise<Uint8Array>;
}
