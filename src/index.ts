// Public entry point: re-exports only.
export * from './errors.js';
