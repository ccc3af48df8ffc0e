// Argument checks shared by every public call: one wording per rule, messages that name the argument
// (`options.threads must be an integer from 1 to 256`). Bad types are TypeErrors, bad values RangeErrors.

export function isSafeIntegerIn(value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

/** An integer from `min` to `max`; a non-number is a TypeError, a number out of range a RangeError. */
export function integerArg(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be ${describeRange(min, max)}`);
  if (!isSafeIntegerIn(value, min, max)) throw new RangeError(`${name} must be ${describeRange(min, max)}`);
  return value;
}

export function positiveIntegerArg(value: unknown, name: string, max?: number): number {
  return integerArg(value, name, 1, max);
}

export function nonNegativeIntegerArg(value: unknown, name: string, max?: number): number {
  return integerArg(value, name, 0, max);
}

function describeRange(min: number, max: number): string {
  if (max !== Number.MAX_SAFE_INTEGER) return `an integer from ${min} to ${max}`;
  return min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
}

export function nonEmptyStringArg(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`${name} must be a non-empty string`);
  return value;
}

export function bytesArg(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  return value;
}

/** `undefined` → `{}`; anything but a plain object → TypeError. */
export function optionsArg<T extends object>(value: T | undefined, name = 'options'): T {
  if (value === undefined) return {} as T;
  if (typeof value !== 'object' || value === null) throw new TypeError(`${name} must be an object`);
  return value;
}

/** A string that is well-formed UTF-16 (no lone surrogates), so it has one UTF-8 encoding. */
export function isWellFormed(value: string): boolean {
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value);
}

export function signalArg(value: unknown, name = 'options.signal'): AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) throw new TypeError(`${name} must be an AbortSignal`);
  return value as AbortSignal | undefined;
}

export function functionArg<F extends (...args: never[]) => unknown>(value: unknown, name: string): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`${name} must be a function`);
  return value as F | undefined;
}

/** An environment setting parsed once, when read (not at import time), with the variable named in the error. */
export function envInteger(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max?: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new RangeError(`${name} must be ${describeRange(min, max ?? Number.MAX_SAFE_INTEGER)}`);
  return integerArg(Number(raw), name, min, max);
}
