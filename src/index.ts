// Public entry point: re-exports only.
export * from './errors.js';
export * from './aead/index.js';
