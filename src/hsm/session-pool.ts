// A pool of R/W sessions on one token: one operation per session at a time, waiters queued in order.
// PKCS#11 sessions are not safe for concurrent operations, and an *Init left pending blocks the next one,
// so every operation borrows a session for its whole Init/Call sequence.
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { engineClosedError, isAlreadyLoggedIn, leavesSessionUnusable, pinIncorrectError, toHsmError } from './ckr.js';
import type { Pkcs11 } from './module.js';

type Session = Buffer;

// Login is process-wide per token: a second engine's C_Login answers CKR_USER_ALREADY_LOGGED_IN whatever PIN it
// gives. We remember a salted scrypt digest of the PIN that logged in (slow on purpose: PINs are short, and the
// digest sits in memory), so a second engine with a wrong PIN is refused too.
const LOGINS = new Map<string, { salt: Buffer; digest: Buffer }>();
const pinDigest = (salt: Buffer, pin: string) => scryptSync(pin, salt, 32, { N: 1 << 14, r: 8, p: 1 });

export class SessionPool {
  readonly #module: Pkcs11;
  readonly #slot: Buffer;
  readonly #maxSessions: number;
  readonly #idle: Session[] = [];
  readonly #all = new Set<Session>();
  readonly #waiters: { resolve: (session: Session) => void; reject: (err: Error) => void }[] = [];
  #closed = false;

  constructor(module: Pkcs11, slot: Buffer, maxSessions: number) {
    this.#module = module;
    this.#slot = slot;
    this.#maxSessions = maxSessions;
  }

  /** Opens the first session and logs the user in. The PIN is not kept. */
  login(pin: string): void {
    const session = this.#openSession();
    this.#idle.push(session);
    const loginKey = `${this.#slot.toString('hex')}`;
    try {
      this.#module.C_Login(session, pkcs11js.CKU_USER, pin);
      const salt = randomBytes(16);
      LOGINS.set(loginKey, { salt, digest: pinDigest(salt, pin) });
    } catch (err) {
      if (!isAlreadyLoggedIn(err)) throw toHsmError('C_Login', err);
      const known = LOGINS.get(loginKey);
      if (known && !timingSafeEqual(known.digest, pinDigest(known.salt, pin))) {
        throw pinIncorrectError();
      }
    }
  }

  /** Runs `operation` with a session of its own; the session returns to the pool when the promise settles. */
  async use<T>(operation: (session: Session) => Promise<T> | T): Promise<T> {
    const session = await this.#acquire();
    let healthy = true;
    try {
      return await operation(session);
    } catch (err) {
      healthy = !leavesSessionUnusable(err);
      throw err;
    } finally {
      this.#release(session, healthy);
    }
  }

  /** Runs `operation` synchronously if a session is (or can be made) idle right now, else returns undefined. */
  tryUseSync<T>(operation: (session: Session) => T): { value: T } | undefined {
    if (this.#closed) return undefined;
    // Open another session rather than fall back to the async path: otherwise sessions held by async calls
    // (released only when the event loop turns) push every later call onto the slower async path too.
    if (this.#idle.length === 0 && this.#all.size < this.#maxSessions) this.#idle.push(this.#openSession());
    const session = this.#idle.pop();
    if (!session) return undefined;
    let healthy = true;
    try {
      return { value: operation(session) };
    } catch (err) {
      healthy = !leavesSessionUnusable(err);
      throw err;
    } finally {
      this.#release(session, healthy);
    }
  }

  get busy(): number {
    return this.#all.size - this.#idle.length;
  }

  #openSession(): Session {
    try {
      const session = this.#module.C_OpenSession(this.#slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      this.#all.add(session);
      return session;
    } catch (err) {
      throw toHsmError('C_OpenSession', err);
    }
  }

  async #acquire(): Promise<Session> {
    if (this.#closed) throw engineClosedError();
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#all.size < this.#maxSessions) return this.#openSession();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #release(session: Session, healthy: boolean): void {
    if (!healthy || this.#closed) {
      this.#all.delete(session);
      this.#closeSession(session);
      if (this.#closed) return;
      const waiter = this.#waiters.shift();
      if (waiter) {
        try {
          waiter.resolve(this.#openSession());
        } catch (err) {
          waiter.reject(err as Error);
        }
      }
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(session);
    else this.#idle.push(session);
  }

  #closeSession(session: Session): void {
    try {
      this.#module.C_CloseSession(session);
    } catch {
      // Already gone (token removed, handle invalid): nothing left to release.
    }
  }

  /** Closes this pool's sessions only (never C_CloseAllSessions: another engine may share the token). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const session of this.#idle) {
      this.#all.delete(session);
      this.#closeSession(session);
    }
    this.#idle.length = 0;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.reject(engineClosedError());
    }
    // Busy sessions close as their operations release them.
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
