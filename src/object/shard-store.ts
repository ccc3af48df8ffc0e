// Where shards live. A ShardStore is one "node" per shard index (index i on node i % nodes); services implement it
// over their own nodes, FsShardStore over local folders. Readers treat a thrown error like a missing shard: a
// node that is down is a lost shard.

/** Appends one shard; nothing is visible under the shard's name until `commit()`. */
export interface ShardWriter {
  write(bytes: Uint8Array): Promise<void>;
  /** Makes the written bytes durable (fsync) without publishing them. */
  flush(): Promise<void>;
  /** Publishes the shard atomically (replacing any previous one) and makes the name durable. */
  commit(): Promise<void>;
  /** Drops everything written; safe to call at any time, also after a failure. */
  abort(): Promise<void>;
}

/** One shard opened for reading: random access for the length of an operation. */
export interface ShardReader {
  readonly size: number;
  /** Reads up to target.length bytes at `offset` into `target`; returns the count (less at the end). */
  read(offset: number, target: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

export interface ShardStore {
  /** Number of nodes; shard i is stored on node i % nodes. */
  readonly nodes: number;
  openWriter(objectId: string, shardIndex: number): Promise<ShardWriter>;
  /** The shard, or null when it does not exist (or its node is unreachable). */
  openReader(objectId: string, shardIndex: number): Promise<ShardReader | null>;
  /** Overwrites bytes in place (header rewrap: same length, a few hundred bytes), durably. */
  overwrite(objectId: string, shardIndex: number, offset: number, bytes: Uint8Array): Promise<void>;
  /** Removes a shard; a missing one is not an error. */
  remove(objectId: string, shardIndex: number): Promise<void>;
}
