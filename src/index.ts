// Public entry point: re-exports only.
export * from './errors.js';
export * from './erasure/index.js';
