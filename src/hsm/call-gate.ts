// Public calls in flight on one engine: close() waits for them to finish, and calls begun after close() are refused.
import { engineClosedError } from './ckr.js';

export class CallGate {
  #inFlight = 0;
  #closed = false;
  #onIdle: (() => void) | undefined;

  /** A call begins (pair with `leave` in a finally); throws the engine-closed HsmError once close() began. */
  enter(): void {
    if (this.#closed) throw engineClosedError();
    this.#inFlight++;
  }

  leave(): void {
    if (--this.#inFlight === 0) this.#onIdle?.();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Refuses new calls and resolves once every call in flight has settled. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#onIdle = resolve));
  }
}
