// A pool of R/W sessions on one token that survives session and login loss, like a good PKCS#11 client: one
// operation per session at a time (PKCS#11 sessions are not safe for concurrent operations, and an *Init left
// pending blocks the next one), waiters queued in order with a deadline, sessions lost to C_CloseAllSessions, a
// device reset or a failover reopened, a lost login restored with the PIN the pool keeps, and the call retried once.
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import {
  engineClosedError, isAlreadyLoggedIn, isSessionCountExceeded, leavesSessionUnusable, lostLogin, lostSession,
  notLoggedInError, pinIncorrectError, sessionWaitTimeoutError, toHsmError,
} from './ckr.js';
import { ModuleGate } from './module-gate.js';
import type { Pkcs11 } from './module.js';

type Session = Buffer;

/** CKS_RW_USER_FUNCTIONS: a R/W session of a logged-in user (pkcs11js exports no CKS_* constants). */
const CKS_RW_USER_FUNCTIONS = 3;

// Login is process-wide per token: a second engine's C_Login answers CKR_USER_ALREADY_LOGGED_IN whatever PIN it
// gives. We remember a salted scrypt digest of the PIN that logged in (slow on purpose: PINs are short, and the
// digest sits in memory), so a second engine with a wrong PIN is refused too. Keyed by library and slot.
const LOGINS = new Map<string, { salt: Buffer; digest: Buffer }>();
const pinDigest = (salt: Buffer, pin: Buffer) => scryptSync(pin, salt, 32, { N: 1 << 14, r: 8, p: 1 });

export interface SessionPoolOptions {
  maxSessions: number;
  /** Longest wait for a free session before the call fails with HsmError CKR_SESSION_COUNT. */
  sessionWaitMs: number;
  /** Which login this is (library + slot): the process-wide login record's key. */
  loginKey: string;
  /**
   * The module's gate (module-gate.ts: crypt calls share the module, object management runs alone), shared by
   * every pool on the module; a gate of this pool's own when not given.
   */
  gate?: ModuleGate;
}

export interface UseOptions {
  /**
   * Check after the operation that the session was still logged in, and run it again after re-login if not: a
   * C_FindObjects on a logged-out session silently finds no private object, which must not read as "no key".
   */
  verifyLogin?: boolean;
  /**
   * The operation is a crypt call, or touches no token object (a session key pair): it shares the module with
   * crypt calls. Otherwise it runs alone on the module (ModuleGate.exclusive), after taking its session.
   */
  shared?: boolean;
}

interface Waiter {
  resolve: (session: Session) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class SessionPool {
  readonly #module: Pkcs11;
  readonly #slot: Buffer;
  readonly #options: SessionPoolOptions;
  #maxSessions: number;
  /** The PIN, kept (deliberately) for re-login after a lost login; engine-owned, zeroed by close(). */
  #pin: Buffer | undefined;
  readonly #idle: Session[] = [];
  readonly #all = new Set<Session>();
  readonly #waiters: Waiter[] = [];
  #closed = false;
  #drained: Promise<void> | undefined;
  #onDrained: (() => void) | undefined;
  /** Bumped whenever sessions or the login were lost: token-object handles read before may be stale. */
  #generation = 0;
  readonly #gate: ModuleGate;

  /** The pool takes `pin` over: it is kept for re-login and zeroed by close() (give it memory of its own). */
  constructor(module: Pkcs11, slot: Buffer, pin: Buffer, options: SessionPoolOptions) {
    this.#module = module;
    this.#slot = slot;
    this.#options = options;
    this.#maxSessions = options.maxSessions;
    this.#pin = pin;
    this.#gate = options.gate ?? new ModuleGate();
  }

  /** The module's gate: crypt calls off this pool's sessions (an HSM lane's) take a share of it per call. */
  get gate(): ModuleGate {
    return this.#gate;
  }

  get generation(): number {
    return this.#generation;
  }

  get hasPin(): boolean {
    return this.#pin !== undefined;
  }

  /** Lowers the session cap (the token's own ulMaxRwSessionCount). */
  capSessions(max: number): void {
    if (max >= 1 && max < this.#maxSessions) this.#maxSessions = max;
  }

  /** Opens the first session and logs the user in (or checks the PIN against the process's login). */
  login(): void {
    const session = this.#openSession();
    this.#idle.push(session);
    const pin = this.#pin!;
    try {
      this.#module.C_Login(session, pkcs11js.CKU_USER, pin.toString('utf8'));
      const salt = randomBytes(16);
      LOGINS.set(this.#options.loginKey, { salt, digest: pinDigest(salt, pin) });
    } catch (err) {
      if (!isAlreadyLoggedIn(err)) throw toHsmError('C_Login', err);
      const known = LOGINS.get(this.#options.loginKey);
      if (known && !timingSafeEqual(known.digest, pinDigest(known.salt, pin))) throw pinIncorrectError();
    }
  }

  /**
   * Runs `operation` with a session of its own, alone on the module unless `options.shared` (the session is taken
   * first, so a call holding the module never waits for a session); a lost session or login is recovered and the
   * operation run once more.
   */
  async use<T>(operation: (session: Session) => Promise<T> | T, options?: UseOptions): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const session = attempt === 0 ? await this.#acquire() : await this.#acquireLive();
      const generation = this.#generation;
      let healthy = true;
      try {
        const result = options?.shared ? await this.#shared(() => operation(session)) : await this.#gate.exclusive(() => operation(session));
        if (options?.verifyLogin && !this.#isLoggedIn(session)) throw notLoggedInError();
        return result;
      } catch (err) {
        healthy = !leavesSessionUnusable(err);
        if (attempt > 0 || !this.recoveredSince(generation, err, healthy ? session : undefined)) throw err;
      } finally {
        this.#release(session, healthy);
      }
    }
  }

  async #shared<T>(operation: () => Promise<T> | T): Promise<T> {
    const wait = this.#gate.share();
    if (wait) await wait;
    try {
      return await operation();
    } finally {
      this.#gate.release();
    }
  }

  /**
   * Runs crypt call `operation` synchronously if a session is (or can be made) idle right now, else returns
   * undefined. The caller holds a share of the gate.
   */
  tryUseSync<T>(operation: (session: Session) => T): { value: T } | undefined {
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) return undefined;
      // Open another session rather than fall back to the async path: otherwise sessions held by async calls
      // (released only when the event loop turns) push every later call onto the slower async path too.
      if (this.#idle.length === 0 && this.#all.size < this.#maxSessions) {
        const opened = this.#tryOpenSession();
        if (opened) this.#idle.push(opened);
      }
      const session = attempt === 0 ? this.#idle.pop() : this.#popLive();
      if (!session) return undefined;
      let healthy = true;
      try {
        return { value: operation(session) };
      } catch (err) {
        healthy = !leavesSessionUnusable(err);
        if (attempt > 0 || !this.recover(err, healthy ? session : undefined)) throw err;
      } finally {
        this.#release(session, healthy);
      }
    }
  }

  /**
   * A session held past one operation (an HSM lane's: calls it runs one after another share it): give it back with
   * `unlease`, healthy or not. `live`: checked to be alive (for a retry after a lost session). Recovery is the
   * holder's part (`recover`).
   */
  lease(live = false): Promise<Session> {
    return live ? this.#acquireLive() : this.#acquire();
  }

  unlease(session: Session, healthy: boolean): void {
    this.#release(session, healthy);
  }

  /**
   * `recover`, or true when another call recovered since `generation` (read when this call began): a call that
   * was under way while the session or login was lost fails with whatever the token says then, and by the time
   * it is seen, the first failure may have put everything in order already.
   */
  recoveredSince(generation: number, err: unknown, session?: Session): boolean {
    return this.recover(err, session) || (!this.#closed && this.#generation !== generation);
  }

  /**
   * After a failure: when it says the session or the login is gone (or the login is found gone: the failure may
   * say something else), drop dead idle sessions and log in again.
   * True when something was recovered and the call is worth one more try. Synchronous, so concurrent failures
   * recover one after the other, and the later ones find everything in order.
   */
  recover(err: unknown, session?: Session): boolean {
    if (this.#closed) return false;
    if (!(lostSession(err) || lostLogin(err))) {
      // A call under way when another handle closed sessions or logged out can fail with something else (SoftHSM:
      // C_Encrypt after an Init made while logged in gives CKR_GENERAL_ERROR): look whether that happened.
      if (session !== undefined && !this.#isAlive(session)) session = undefined;
      else if (!this.#loginLost(session)) return false;
    }
    this.#generation++;
    for (const session of this.#idle.splice(0)) {
      if (this.#isAlive(session)) this.#idle.push(session);
      else this.#discard(session);
    }
    this.ensureLoggedIn(session);
    return true;
  }

  /**
   * Logs in again if the token lost the login (another handle's C_Logout, a reset); true when it had to. Uses
   * `held` (a session the caller holds) or an idle one, else opens one even beyond the cap for this moment: a
   * login must not wait behind calls that cannot succeed without it.
   */
  ensureLoggedIn(held?: Session): boolean {
    if (this.#closed || !this.#pin) return false;
    const session = held ?? this.#idle.pop() ?? this.#openSession();
    try {
      if (this.#isLoggedIn(session)) return false;
      try {
        this.#module.C_Login(session, pkcs11js.CKU_USER, this.#pin.toString('utf8'));
      } catch (err) {
        if (!isAlreadyLoggedIn(err)) throw toHsmError('C_Login', err);
      }
      this.#generation++;
      return true;
    } finally {
      if (!held) this.#release(session, true);
    }
  }

  get busy(): number {
    return this.#all.size - this.#idle.length;
  }

  #isLoggedIn(session: Session): boolean {
    try {
      return this.#module.C_GetSessionInfo(session).state === CKS_RW_USER_FUNCTIONS;
    } catch (err) {
      throw toHsmError('C_GetSessionInfo', err);
    }
  }

  /** Whether the login is gone, seen on `held` (alive) or an idle session; false when there is none to ask. */
  #loginLost(held?: Session): boolean {
    let session = held ?? this.#idle.at(-1);
    if (!session) {
      session = this.#tryOpenSession();
      if (!session) return false;
      this.#idle.push(session);
    }
    try {
      return this.#module.C_GetSessionInfo(session).state !== CKS_RW_USER_FUNCTIONS;
    } catch {
      return true; // that session is gone too
    }
  }

  /** Whether `session` is still open (C_GetSessionInfo answers). */
  alive(session: Session): boolean {
    return this.#isAlive(session);
  }

  #isAlive(session: Session): boolean {
    try {
      this.#module.C_GetSessionInfo(session);
      return true;
    } catch {
      return false;
    }
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

  /** A new session, or undefined when the token has no more to give (others use them): then wait for ours. */
  #tryOpenSession(): Session | undefined {
    try {
      return this.#openSession();
    } catch (err) {
      if (isSessionCountExceeded(err) && this.#all.size > 0) return undefined;
      throw err;
    }
  }

  async #acquire(): Promise<Session> {
    if (this.#closed) throw engineClosedError();
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#all.size < this.#maxSessions) {
      const opened = this.#tryOpenSession();
      if (opened) return opened;
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const at = this.#waiters.indexOf(waiter);
          if (at >= 0) this.#waiters.splice(at, 1);
          reject(sessionWaitTimeoutError(this.#options.sessionWaitMs));
        }, this.#options.sessionWaitMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /**
   * For a retry: a session checked to be alive. Sessions busy when the loss was recovered come back to the pool
   * dead, and a retry must not meet one of them.
   */
  async #acquireLive(): Promise<Session> {
    for (;;) {
      const session = await this.#acquire();
      if (this.#isAlive(session)) return session;
      this.#release(session, false);
    }
  }

  #popLive(): Session | undefined {
    for (let session = this.#idle.pop(); session; session = this.#idle.pop()) {
      if (this.#isAlive(session)) return session;
      this.#discard(session);
    }
    return this.#all.size < this.#maxSessions ? this.#tryOpenSession() : undefined;
  }

  #nextWaiter(): Waiter | undefined {
    const waiter = this.#waiters.shift();
    if (waiter) clearTimeout(waiter.timer);
    return waiter;
  }

  #release(session: Session, healthy: boolean): void {
    if (!healthy || this.#closed) {
      this.#discard(session);
      if (this.#closed) {
        if (this.#all.size === 0) this.#onDrained?.();
        return;
      }
      const waiter = this.#nextWaiter();
      if (waiter) {
        try {
          waiter.resolve(this.#openSession());
        } catch (err) {
          waiter.reject(err as Error);
        }
      }
      return;
    }
    const waiter = this.#nextWaiter();
    if (waiter) waiter.resolve(session);
    else this.#idle.push(session);
  }

  #discard(session: Session): void {
    this.#all.delete(session);
    try {
      this.#module.C_CloseSession(session);
    } catch {
      // Already gone (token removed, handle invalid): nothing left to release.
    }
  }

  /**
   * Refuses new work, waits for the operations holding sessions, closes this pool's sessions only (never
   * C_CloseAllSessions: another engine may share the token) and wipes the PIN. Never logs out: the login is shared.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const session of this.#idle.splice(0)) this.#discard(session);
      for (const waiter of this.#waiters.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(engineClosedError());
      }
      this.#drained = this.#all.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#onDrained = resolve));
    }
    await this.#drained;
    this.#pin?.fill(0);
    this.#pin = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
