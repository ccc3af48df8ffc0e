// The PKCS#11 module is process-wide: one C_Initialize per library path, shared by every engine.
// Initialised with CKF_OS_LOCKING_OK, without which SoftHSM (and others) crash or hang when two sessions run at once.
// C_Finalize is never called: another engine, or another library in the process, may still be using the module,
// and finalizing under it crashes. The OS reclaims the module at exit.
import pkcs11js from 'pkcs11js';
import { initArgsConflictError, isAlreadyInitialized, moduleLoadError, toHsmError, tokenNotPresentError } from './ckr.js';

export type Pkcs11 = InstanceType<typeof pkcs11js.PKCS11>;

const MODULES = new Map<string, { module: Pkcs11; initArgs: string | undefined }>();

/**
 * The initialised module for `library`, loading it on first use. `initArgs` is C_Initialize's reserved argument
 * (pReserved: NSS softokn's "configdir='sql:DIR' …"); a module is initialised once per process, so a second engine
 * asking for other initArgs is refused rather than silently given the first one's configuration.
 */
export function loadModule(library: string, initArgs?: string): Pkcs11 {
  const existing = MODULES.get(library);
  if (existing) {
    if (existing.initArgs !== initArgs) throw initArgsConflictError(library);
    return existing.module;
  }
  const module = new pkcs11js.PKCS11();
  try {
    module.load(library);
  } catch (err) {
    throw moduleLoadError(library, err);
  }
  try {
    // pkcs11js 2.1.7 copies libraryParameters one byte short (the string's last character is lost): pad with a space.
    module.C_Initialize(initArgs === undefined ? { flags: pkcs11js.CKF_OS_LOCKING_OK } : { flags: pkcs11js.CKF_OS_LOCKING_OK, libraryParameters: `${initArgs} ` });
  } catch (err) {
    // Someone else in the process initialised it first: fine, the module is usable as it is.
    if (!isAlreadyInitialized(err)) throw toHsmError('C_Initialize', err);
  }
  MODULES.set(library, { module, initArgs });
  return module;
}

function slotsWithToken(module: Pkcs11): Buffer[] {
  try {
    return module.C_GetSlotList(true);
  } catch (err) {
    throw toHsmError('C_GetSlotList', err);
  }
}

/** The slot holding the token labelled `label` (labels are blank-padded to 32 bytes in CK_TOKEN_INFO). */
export function findSlotByLabel(module: Pkcs11, label: string): Buffer | undefined {
  for (const slot of slotsWithToken(module)) {
    try {
      if (module.C_GetTokenInfo(slot).label.trimEnd() === label) return slot;
    } catch {
      // A slot whose token vanished between the two calls is simply not a match.
    }
  }
  return undefined;
}

/** The slot with numeric id `id`, if a token is present in it. */
export function findSlotById(module: Pkcs11, id: number): Buffer | undefined {
  return slotsWithToken(module).find((slot) => slot.readBigUInt64LE(0) === BigInt(id));
}

/** The slot of the token named by label (preferred) or slot id; HsmError CKR_TOKEN_NOT_PRESENT when there is none. */
export function findSlot(module: Pkcs11, where: { tokenLabel?: string; slot?: number }): Buffer {
  const slot = where.tokenLabel !== undefined ? findSlotByLabel(module, where.tokenLabel) : findSlotById(module, where.slot!);
  if (!slot) throw tokenNotPresentError(where.tokenLabel !== undefined ? `no token labelled "${where.tokenLabel}"` : `no token in slot ${where.slot}`);
  return slot;
}

/** The token's own session cap (ulMaxRwSessionCount), when it states a finite one. */
export function tokenSessionCap(module: Pkcs11, slot: Buffer): number | undefined {
  let max: number;
  try {
    max = Number(module.C_GetTokenInfo(slot).maxRwSessionCount);
  } catch (err) {
    throw toHsmError('C_GetTokenInfo', err);
  }
  // 0 = CK_EFFECTIVELY_INFINITE; ~0 = CK_UNAVAILABLE_INFORMATION, which pkcs11js may hand over truncated to 32 bits
  // (openCryptoki: 4294967294): anything that large states no cap.
  return max > 0 && max < 0xffff_0000 ? max : undefined;
}
