// Re-exports used across aead tests, plus the wrapped-DEK offset (header byte 82) under a test-local name.
export * from '../../dist/index.js';
import { HEADER_FIXED_BYTES } from '../../dist/index.js';
export const OFFSET_WRAPPED_PLACEHOLDER = HEADER_FIXED_BYTES;
