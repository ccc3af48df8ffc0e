// rewrapHeader: the sealed object's DEK rewrapped under the newest version of its root key, written over the
// header's wrapped-DEK bytes in a copy of the object (or of any prefix of it holding the header).
import { bytesArg, signalArg } from '../validate.js';
import { canonicalContext } from './context.js';
import { dekAad, FORMAT_VERSION_1, OFFSET_WRAPPED, parseHeader } from './header.js';
import { checkOptionsObject, type CipherSettings, type RewrapHeaderOptions } from './options.js';

/**
 * The result has the same length, with only the wrapped-DEK bytes changed (the payload authenticates neither
 * them nor the key version, so it stays valid). No context is needed: a version-2 header's DEK is wrapped with a
 * fixed AAD. Version-1 headers (DEK wrapped with the context) still need `options.context` (default `{}`).
 * RangeError if the provider returns a wrapped DEK of a different length (the header could not be rewritten in place).
 */
export async function rewrapHeader(settings: CipherSettings, sealed: Uint8Array, options: RewrapHeaderOptions): Promise<Buffer> {
  bytesArg(sealed, 'sealed');
  checkOptionsObject(options);
  const context = canonicalContext(options.context);
  signalArg(options.signal);
  options.signal?.throwIfAborted();
  const header = parseHeader(sealed);
  const aad = header.version === FORMAT_VERSION_1 ? context : dekAad(header.version, context);
  const rewrapped = await settings.keys.rewrap(new Uint8Array(header.wrappedDek), { aad });
  if (!(rewrapped instanceof Uint8Array) || rewrapped.length !== header.wrappedDek.length) {
    throw new RangeError(`rewrapped data key is ${rewrapped?.length} bytes, the header holds ${header.wrappedDek.length}: cannot rewrite in place`);
  }
  const out = Buffer.allocUnsafeSlow(sealed.length);
  out.set(sealed);
  out.set(rewrapped, OFFSET_WRAPPED);
  return out;
}
