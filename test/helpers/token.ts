// The test process's own fresh SoftHSM2 token (softhsm/setup.sh into a temp dir), removed at exit.
import { createTempToken, type TempToken } from '../../dist/temp-token.js';

let current: TempToken | undefined;

export function testToken() {
  current ??= createTempToken('hce-test');
  return { ...current.pkcs11, dir: current.dir };
}

export function engineOptions(extra: Record<string, unknown> = {}) {
  const { library, tokenLabel, pin } = testToken();
  return { pkcs11: { library, tokenLabel, pin }, threads: 2, ...extra };
}
