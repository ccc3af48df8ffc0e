// INTERIM, until the generation-based object layer (objects-v2) takes a namespace: the current object layer's
// ShardStore (shards named by object id and index) laid over the blob store under the bucket's namespace
// `bo/<bucket>/<enc(name)>/-s.<index>`, shard i on node i % nodes. Names are encoded as in layout.ts.
import type { ShardStore as BlobStore } from '../object/blob-store.js';
import type { ShardReader, ShardStore, ShardWriter } from '../object/shard-store.js';
import { objectBase } from './layout.js';

export const shardKey = (bucket: string, name: string, index: number) => `${objectBase(bucket, name)}/-s.${index}`;

export class BucketShardStore implements ShardStore {
  readonly #blobs: BlobStore;
  readonly #bucket: string;

  constructor(blobs: BlobStore, bucket: string) {
    this.#blobs = blobs;
    this.#bucket = bucket;
  }

  get nodes(): number {
    return this.#blobs.nodes;
  }

  openWriter(objectId: string, shardIndex: number): Promise<ShardWriter> {
    return this.#blobs.openWriter(shardIndex % this.nodes, shardKey(this.#bucket, objectId, shardIndex));
  }

  openReader(objectId: string, shardIndex: number): Promise<ShardReader | null> {
    return this.#blobs.openReader(shardIndex % this.nodes, shardKey(this.#bucket, objectId, shardIndex));
  }

  remove(objectId: string, shardIndex: number): Promise<void> {
    return this.#blobs.remove(shardIndex % this.nodes, shardKey(this.#bucket, objectId, shardIndex));
  }

  /** Blobs are immutable: a patched copy is published in its place (atomic per blob). */
  async overwrite(objectId: string, shardIndex: number, offset: number, bytes: Uint8Array): Promise<void> {
    const node = shardIndex % this.nodes;
    const key = shardKey(this.#bucket, objectId, shardIndex);
    const reader = await this.#blobs.openReader(node, key);
    if (!reader) throw new Error('shard vanished during overwrite');
    const copy = Buffer.alloc(reader.size);
    try {
      await reader.read(0, copy);
    } finally {
      await reader.close();
    }
    copy.set(bytes, offset);
    const writer = await this.#blobs.openWriter(node, key);
    try {
      await writer.write(copy);
      await writer.commit();
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }
}
