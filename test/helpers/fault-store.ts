// A ShardStore wrapper for fault injection: counts every call by kind and, past a chosen count, fails it
// (StoreError, as a real node would) or stalls it (a promise that settles only on release()). An onCall hook
// sees every call first (the crash child SIGKILLs itself at call N). The store underneath is the real one.
import { StoreError, type ListOptions, type OpenWriterOptions, type ShardReader, type ShardStore, type ShardWriter } from '../../dist/index.js';

export type Op = 'openWriter' | 'write' | 'flush' | 'commit' | 'abort' | 'openReader' | 'read' | 'remove' | 'list';
/** A kind of call, or a group of them: writes (openWriter, write, flush, commit), reads (openReader, read). */
export type OpClass = Op | 'writes' | 'reads' | 'removes' | 'lists';
const CLASS: Record<Op, OpClass> = {
  openWriter: 'writes', write: 'writes', flush: 'writes', commit: 'writes', abort: 'writes', openReader: 'reads', read: 'reads', remove: 'removes', list: 'lists',
};

export interface FaultRule {
  /** Which calls count. */
  on: OpClass;
  /** The first `after` such calls pass; the later ones fault. */
  after: number;
  mode: 'fail' | 'stall';
  /** Only on this node (default: any). */
  node?: number;
}

export class FaultStore implements ShardStore {
  readonly inner: ShardStore;
  rules: FaultRule[];
  readonly counts = new Map<OpClass, number>();
  calls = 0;
  faults = 0;
  onCall: ((op: Op, n: number) => void) | undefined;
  readonly #stalled: Array<() => void> = [];

  constructor(inner: ShardStore, rules: FaultRule[] = [], onCall?: (op: Op, n: number) => void) {
    this.inner = inner;
    this.rules = rules;
    this.onCall = onCall;
  }

  get nodes(): number {
    return this.inner.nodes;
  }

  /** Lets every stalled call proceed (to the real store), and stops stalling. */
  release(): void {
    this.rules = this.rules.filter((r) => r.mode !== 'stall');
    for (const go of this.#stalled.splice(0)) go();
  }

  get stalled(): number {
    return this.#stalled.length;
  }

  async #gate(op: Op, node: number): Promise<void> {
    this.calls++;
    this.onCall?.(op, this.calls);
    for (const c of new Set<OpClass>([op, CLASS[op]])) this.counts.set(c, (this.counts.get(c) ?? 0) + 1);
    for (const rule of this.rules) {
      if (rule.node !== undefined && rule.node !== node) continue;
      if (rule.on !== op && rule.on !== CLASS[op]) continue;
      if ((this.counts.get(rule.on) ?? 0) <= rule.after) continue;
      this.faults++;
      if (rule.mode === 'fail') throw new StoreError(node, op, 'injected fault');
      await new Promise<void>((resolve) => this.#stalled.push(resolve));
    }
  }

  async openWriter(node: number, key: string, options?: OpenWriterOptions): Promise<ShardWriter> {
    await this.#gate('openWriter', node);
    const w = await this.inner.openWriter(node, key, options);
    return {
      write: async (bytes) => { await this.#gate('write', node); return w.write(bytes); },
      flush: async () => { await this.#gate('flush', node); return w.flush(); },
      // The put's last chunk + trailer + flush in one call where the inner store has it: gated as a write, then a
      // flush, as the calls it stands for.
      ...(w.writeFinal && {
        writeFinal: async (parts: readonly Uint8Array[]) => { await this.#gate('write', node); await this.#gate('flush', node); return w.writeFinal!(parts); },
      }),
      commit: async () => { await this.#gate('commit', node); return w.commit(); },
      abort: async () => { this.calls++; this.onCall?.('abort', this.calls); return w.abort(); },
    };
  }

  async openReader(node: number, key: string): Promise<ShardReader | null> {
    await this.#gate('openReader', node);
    const r = await this.inner.openReader(node, key);
    if (!r) return null;
    return {
      size: r.size,
      read: async (offset, target) => { await this.#gate('read', node); return r.read(offset, target); },
      close: () => r.close(),
    };
  }

  async remove(node: number, key: string): Promise<void> {
    await this.#gate('remove', node);
    return this.inner.remove(node, key);
  }

  async list(node: number, options: ListOptions): Promise<string[]> {
    await this.#gate('list', node);
    return this.inner.list(node, options);
  }
}
