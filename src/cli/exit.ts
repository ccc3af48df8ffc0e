// Exit codes and the one-line error report. Usage errors exit 2; each engine error class has its own code;
// anything else (an engine TypeError/RangeError on a value that parsed, an I/O error) exits 1.
import { CryptoEngineError } from '../errors.js';
import { UsageError } from './command.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, keyNotFound: 3, keyState: 4, decryption: 5, erasure: 6, objectNotFound: 7, hsm: 8 } as const;

const EXIT_BY_CODE: Record<string, number> = {
  ERR_KEY_NOT_FOUND: EXIT.keyNotFound,
  ERR_KEY_STATE: EXIT.keyState,
  ERR_DECRYPTION: EXIT.decryption,
  ERR_ERASURE: EXIT.erasure,
  ERR_OBJECT_NOT_FOUND: EXIT.objectNotFound,
  ERR_HSM: EXIT.hsm,
};

/** Writes one line to stderr (plus the usage line for a usage error) and returns the exit code. */
export function report(err: unknown, usage: string, write: (line: string) => void): number {
  if (err instanceof UsageError) {
    write(`error: ${err.message}`);
    write(`usage: hsm-crypto-engine ${usage}`);
    return EXIT.usage;
  }
  if (err instanceof CryptoEngineError) {
    write(`error: ${err.code}: ${err.message}`);
    return EXIT_BY_CODE[err.code] ?? EXIT.failure;
  }
  if (err instanceof Error) {
    write(`error: ${err.name === 'Error' ? '' : `${err.name}: `}${err.message}`);
    return EXIT.failure;
  }
  write(`error: ${String(err)}`);
  return EXIT.failure;
}
