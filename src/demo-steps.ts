// The demo's step printer: each step's result and time, and refusals with their error class and code.
import { CryptoEngineError } from './errors.js';

export const say = (line = '') => process.stdout.write(line + '\n');

export async function step<T>(title: string, action: () => Promise<T>, describe?: (value: T, ms: number) => string): Promise<T> {
  const started = performance.now();
  const value = await action();
  const ms = performance.now() - started;
  say(`  ✓ ${title}${describe ? ` — ${describe(value, ms)}` : ''} (${ms.toFixed(1)} ms)`);
  return value;
}

/** Runs an action that must be refused with one of the engine's errors, and says so. */
export async function refused(title: string, action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (!(err instanceof CryptoEngineError)) throw err;
    say(`  ✓ ${title} — refused with ${err.name} (${err.code}): ${err.message}`);
    return;
  }
  throw new Error(`${title}: expected a refusal, but it succeeded`);
}
