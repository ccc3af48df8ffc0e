// Token-object lookups shared by the stores: C_FindObjects in batches, attributes read as typed values.
import pkcs11js from 'pkcs11js';
import { toHsmError } from './ckr.js';
import type { Pkcs11 } from './module.js';

const FIND_BATCH = 256;

/** Every object matching `template` visible to the session. */
export function findObjects(module: Pkcs11, session: Buffer, template: pkcs11js.Template): Buffer[] {
  const found: Buffer[] = [];
  try {
    module.C_FindObjectsInit(session, template);
    try {
      for (;;) {
        const batch = module.C_FindObjects(session, FIND_BATCH);
        found.push(...batch);
        if (batch.length < FIND_BATCH) break;
      }
    } finally {
      module.C_FindObjectsFinal(session);
    }
  } catch (err) {
    throw toHsmError('C_FindObjects', err);
  }
  return found;
}

/** Attribute values as raw bytes, in the order asked. */
export function readAttributes(module: Pkcs11, session: Buffer, handle: Buffer, types: number[]): Buffer[] {
  try {
    return module.C_GetAttributeValue(session, handle, types.map((type) => ({ type }))).map((a) => a.value as Buffer);
  } catch (err) {
    throw toHsmError('C_GetAttributeValue', err);
  }
}

export function destroyObject(module: Pkcs11, session: Buffer, handle: Buffer): void {
  try {
    module.C_DestroyObject(session, handle);
  } catch (err) {
    throw toHsmError('C_DestroyObject', err);
  }
}
