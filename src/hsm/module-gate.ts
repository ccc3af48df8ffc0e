// Which of this process's calls into one PKCS#11 module may overlap: crypt calls (Init + Encrypt/Decrypt/Sign on a
// key, wherever they run: this thread, the HSM lane, the libuv pool) share the module; object management (generate,
// create, unwrap into the token, set attributes, destroy, find, read attributes) runs alone — it waits for the
// crypt calls in flight to finish and holds new ones back until it is done. Why: SoftHSM 2.6.1's file object store
// is not safe for a write racing reads on another thread. A write truncates and rewrites the object's file while a
// crypt call on another thread re-reads it (its fcntl locks do not exclude threads of one process), finds it empty
// and marks the object invalid for the rest of the process: C_SetAttributeValue racing lane C_EncryptInit calls on
// the same key gave CKR_GENERAL_ERROR and then CKR_OBJECT_HANDLE_INVALID for every later call, the key no longer
// found by C_FindObjects (3 of 3 scratch runs of 4 s), though the file on disk was whole. C_GenerateKey and
// C_CreateObject write the new object's file before the token lists it, so another thread re-indexing the token
// meanwhile can pick up the half-written file (SoftHSM issue #573: concurrent generate/create fail with
// CKR_GENERAL_ERROR). For a token that is thread-safe the gate costs a counter per call and a short pause of the
// crypt stream per key-management call, which are rare. One gate per module and process, shared by every engine.

export class ModuleGate {
  /** Crypt calls holding a share. */
  #shared = 0;
  /** An object-management call holds the module (from when it is admitted until it has settled). */
  #exclusive = false;
  readonly #writers: Array<() => void> = [];
  readonly #readers: Array<() => void> = [];

  /**
   * A share for one crypt call: undefined when taken at once, else a promise that resolves once it is taken (an
   * object-management call holds or waits for the module). Pair with `release()`.
   */
  share(): Promise<void> | undefined {
    return this.tryShare() ? undefined : new Promise<void>((resolve) => this.#readers.push(resolve));
  }

  /** Whether a crypt call may start now (no object-management call holds or waits for the module). */
  get open(): boolean {
    return !this.#exclusive && this.#writers.length === 0;
  }

  /** A share taken only if it can be at once. */
  tryShare(): boolean {
    if (!this.open) return false;
    this.#shared++;
    return true;
  }

  release(): void {
    if (--this.#shared === 0) this.#admit(false);
  }

  /** Runs `operation` alone on the module: after the crypt calls in flight, before those that wait. */
  async exclusive<T>(operation: () => Promise<T> | T): Promise<T> {
    if (this.#exclusive || this.#shared > 0 || this.#writers.length > 0) await new Promise<void>((resolve) => this.#writers.push(resolve));
    else this.#exclusive = true;
    try {
      return await operation();
    } finally {
      this.#exclusive = false;
      this.#admit(true);
    }
  }

  /** Crypt calls holding a share, and object-management calls holding or waiting (tests). */
  get state(): { shared: number; exclusive: boolean; waiting: number } {
    return { shared: this.#shared, exclusive: this.#exclusive, waiting: this.#writers.length + this.#readers.length };
  }

  /**
   * When the module is free, in turns so that neither kind starves the other: after an object-management call,
   * every crypt call that waited (all at once), else the next object-management call; after the last crypt call,
   * the next object-management call, else nothing waits.
   */
  #admit(afterExclusive: boolean): void {
    if (this.#exclusive || this.#shared > 0) return;
    if (afterExclusive && this.#readers.length > 0) return this.#admitReaders();
    const writer = this.#writers.shift();
    if (writer) {
      this.#exclusive = true;
      writer();
    } else this.#admitReaders();
  }

  #admitReaders(): void {
    const readers = this.#readers.splice(0);
    this.#shared += readers.length;
    for (const resolve of readers) resolve();
  }
}

const GATES = new Map<string, ModuleGate>();

/** The gate of the module loaded from `library` (the same for every engine in the process). */
export function moduleGate(library: string): ModuleGate {
  let gate = GATES.get(library);
  if (!gate) GATES.set(library, (gate = new ModuleGate()));
  return gate;
}
