// The demo (`npm start`): the whole job on a fresh SoftHSM token and temp shard folders, step by step, with timings.
import { randomBytes } from 'node:crypto';
import { CryptoEngine } from './engine.js';
import { CryptoEngineError } from './errors.js';
import { createTempToken } from './temp-token.js';

const say = (line = '') => process.stdout.write(line + '\n');

async function step<T>(title: string, action: () => Promise<T>, describe?: (value: T, ms: number) => string): Promise<T> {
  const started = performance.now();
  const value = await action();
  const ms = performance.now() - started;
  say(`  ✓ ${title}${describe ? ` — ${describe(value, ms)}` : ''} (${ms.toFixed(1)} ms)`);
  return value;
}

async function refused(title: string, action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
    throw new Error(`${title}: expected a refusal, but it succeeded`);
  } catch (err) {
    if (!(err instanceof CryptoEngineError)) throw err;
    say(`  ✓ ${title} — refused with ${err.name} (${err.code}): ${err.message}`);
  }
}

export async function runDemo(): Promise<void> {
  say('hsm-crypto-engine demo: a fresh SoftHSM token in a temp folder\n');
  const token = createTempToken('hce-demo');
  await using engine = await CryptoEngine.open({ pkcs11: token.pkcs11 });

  say('Root keys (generated inside the HSM, never extractable)');
  const key = await step('create root key "demo-root"', () => engine.keys.create({ alias: 'demo-root' }), (k) => `id ${k.id}, version ${k.version}`);
  const aad = ['bucket=photos', 'object=cat.jpg'];
  const dek = await step('generate a DEK, wrapped in the HSM with the object context as AAD', () => engine.keys.generateDataKey(key.id, { aad }), (d) => `${d.wrapped.length}-byte wrapped blob`);
  await step('unwrap it again', () => engine.keys.unwrap(dek.wrapped, { aad }), (p) => (Buffer.from(p).equals(Buffer.from(dek.plaintext)) ? 'same 32 bytes' : 'MISMATCH'));
  await refused('unwrap with another object context', () => engine.keys.unwrap(dek.wrapped, { aad: ['bucket=photos', 'object=dog.jpg'] }));
  const rotated = await step('rotate', () => engine.keys.rotate('demo-root'), (k) => `now version ${k.version}`);
  const rewrapped = await step('rewrap the DEK under the newest version', () => engine.keys.rewrap(dek.wrapped, { aad }), (w) => `version ${Buffer.from(w).readUInt32BE(20)} of ${rotated.version}`);
  await step('disable the key', () => engine.keys.disable('demo-root'), (k) => k.state);
  await refused('unwrap while disabled', () => engine.keys.unwrap(rewrapped, { aad }));
  await step('enable it', () => engine.keys.enable('demo-root'), (k) => k.state);
  const started = performance.now();
  let wraps = 0;
  while (performance.now() - started < 500) {
    await Promise.all(Array.from({ length: 64 }, () => engine.keys.wrap(key.id, randomBytes(32), { aad })));
    wraps += 64;
  }
  say(`  ✓ HSM wrap rate: ${Math.round(wraps / ((performance.now() - started) / 1000)).toLocaleString('en-US')} wraps/s`);
  await step('destroy the key (crypto-shredding)', () => engine.keys.destroy('demo-root'));
  await refused('unwrap after destroy', () => engine.keys.unwrap(rewrapped, { aad }));
  say('\ndemo finished');
}
