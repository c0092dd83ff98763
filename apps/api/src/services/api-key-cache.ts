import type { Redis } from 'ioredis';
import { apiKeyChangesChannel } from '../api-keys.js';

/** What authentication and the limits need of a key row. */
export interface ApiKeyRecord {
  id: string;
  role: 'user' | 'admin';
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  rateLimitRpm: number | null;
  maxActiveVideos: number | null;
}

export interface ApiKeyCacheOptions {
  /** Reads a key by the hash of its secret (the database). */
  load: (hash: string) => Promise<ApiKeyRecord | null>;
  /** How long an entry is trusted without an announcement. 0: no caching. */
  ttlMs: number;
  /** A connection of its own (it enters subscriber mode); closed by {@link ApiKeyCache.close}. */
  subscriber: Redis;
  /** Keyspace prefix: the channel is `apiKeyChangesChannel(prefix)`. */
  prefix: string;
  /** @defaultValue 10_000 */
  maxEntries?: number;
  onError?: (err: Error) => void;
  /** Confirms an announcement once its key was dropped (see `publishApiKeyChange`). */
  acknowledge?: (nonce: string) => void;
}

interface Entry {
  key: ApiKeyRecord;
  at: number;
}

/**
 * In-memory cache of API keys by secret hash, so an authenticated request costs no database
 * round trip. Revocation and limit changes stay immediate across every API instance: whoever
 * changes a key publishes its id (`publishApiKeyChange`; the keys and limits CLIs and
 * `ApiKeyService` do), every instance's subscriber drops it and confirms, and the publisher
 * waits for those confirmations, so when a revocation returns no instance still accepts the key
 * from memory. Entries are served only while
 * that subscription is live: when the subscriber connection drops, the cache is emptied and
 * bypassed (every request reads the database) until it has subscribed again, so a missed
 * announcement cannot keep a revoked key alive. A lookup that was in flight when an
 * announcement arrived is not cached (an epoch counter), so a read that raced a revocation cannot
 * store the pre-revocation row. `ttlMs` bounds staleness for writers that do not announce.
 * Revoked and unknown keys are never cached.
 */
export class ApiKeyCache {
  readonly #byHash = new Map<string, Entry>();
  readonly #hashById = new Map<string, string>();
  readonly #opts: ApiKeyCacheOptions;
  readonly #channel: string;
  #live = false;
  #epoch = 0;
  #closed = false;

  constructor(opts: ApiKeyCacheOptions) {
    this.#opts = opts;
    this.#channel = apiKeyChangesChannel(opts.prefix);
  }

  /** Whether entries are being served (the subscription is up and caching is on). */
  get live(): boolean {
    return this.#live;
  }

  get size(): number {
    return this.#byHash.size;
  }

  /** Connects the subscriber; returns at once (a Redis that is down only means no caching). */
  start(): void {
    if (this.#opts.ttlMs <= 0) return;
    const sub = this.#opts.subscriber;
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const [keyId, nonce] = message.split(' ');
      if (keyId) this.invalidate(keyId);
      if (nonce) this.#opts.acknowledge?.(nonce);
    });
    const down = () => {
      this.#live = false;
      this.clear();
    };
    sub.on('close', down);
    sub.on('end', down);
    sub.on('reconnecting', down);
    sub.on('error', (err: Error) => this.#opts.onError?.(err));
    sub.on('ready', () => {
      sub
        .subscribe(this.#channel)
        .then(() => {
          // Anything announced before the subscription took effect was missed: start empty.
          this.clear();
          if (!this.#closed && sub.status === 'ready') this.#live = true;
        })
        .catch((err: Error) => this.#opts.onError?.(err));
    });
    if (sub.status === 'wait') sub.connect().catch(() => undefined);
  }

  /** The key with this secret hash, from memory when possible. */
  async get(hash: string): Promise<ApiKeyRecord | null> {
    const hit = this.#byHash.get(hash);
    if (hit && this.#live && Date.now() - hit.at < this.#opts.ttlMs) return hit.key;
    const epoch = this.#epoch;
    const key = await this.#opts.load(hash);
    if (key && key.revokedAt === null && this.#live && epoch === this.#epoch) {
      if (this.#byHash.size >= (this.#opts.maxEntries ?? 10_000)) this.clear();
      this.#byHash.set(hash, { key, at: Date.now() });
      this.#hashById.set(key.id, hash);
    } else if (hit) {
      this.#drop(hash, hit.key.id);
    }
    return key;
  }

  /** Forgets one key (an announcement), or every key with `*`. */
  invalidate(keyId: string): void {
    this.#epoch++;
    if (keyId === '*') {
      this.clear();
      return;
    }
    const hash = this.#hashById.get(keyId);
    if (hash !== undefined) this.#drop(hash, keyId);
  }

  clear(): void {
    this.#epoch++;
    this.#byHash.clear();
    this.#hashById.clear();
  }

  #drop(hash: string, keyId: string): void {
    this.#byHash.delete(hash);
    this.#hashById.delete(keyId);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#live = false;
    this.clear();
    this.#opts.subscriber.disconnect();
  }
}
