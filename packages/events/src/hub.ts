import type { Redis } from 'ioredis';
import type { Keyspace, VideoId } from '@rehyat/contracts';
import { STREAM_START_ID, compareStreamIds, normalizeStreamId } from './event-id.js';
import { InvalidStreamEntryError, decodeEntry, type RawEntry, type StoredVideoEvent } from './read.js';

export interface VideoEventHubOptions {
  /**
   * A connection for non-blocking commands (catch-up reads, `CLIENT UNBLOCK`). The hub
   * duplicates it once for its single blocking `XREAD`; it must not use ioredis `keyPrefix`
   * (the Keyspace prefixes keys).
   */
  redis: Redis;
  keyspace: Keyspace;
  /** Longest single `XREAD BLOCK`; new subscriptions interrupt it. @defaultValue `5000` */
  blockMs?: number;
  /** Most entries per stream per read. @defaultValue `200` */
  count?: number;
  /** Pause after a failed read (Redis down) before the next. @defaultValue `500` */
  retryDelayMs?: number;
  /** Redis failures, off-contract entries and listener exceptions; the hub keeps going. */
  onError?: (err: Error) => void;
}

export interface SubscribeOptions {
  /** Deliver events strictly after this id (SSE `Last-Event-ID`). @defaultValue the stream start */
  after?: string;
  /** Called once per event, in stream order, never twice for one id. */
  onEvent: (event: StoredVideoEvent) => void;
}

export interface HubSubscription {
  readonly videoId: VideoId;
  /** Stops delivery; idempotent. */
  close(): void;
}

interface Sub {
  lastId: string;
  /** Live events held back while the subscriber catches up on older ones; `null` once live. */
  pending: StoredVideoEvent[] | null;
  onEvent: (event: StoredVideoEvent) => void;
  closed: boolean;
}

interface Group {
  videoId: VideoId;
  key: string;
  /** Id of the last entry this group has read from the stream. */
  lastId: string;
  subs: Set<Sub>;
}

/**
 * Fans the events of many video streams out to many subscribers over ONE blocking Redis
 * connection: a single `XREAD BLOCK ... STREAMS k1..kn id1..idn` covers every video that has at
 * least one subscriber, and each entry is handed to every subscriber of its video. So 1,000
 * concurrent SSE clients cost one blocking connection, not 1,000.
 *
 * A subscriber that resumes from an older id than its video's group catches up with a bounded
 * `XRANGE` on the command connection while newer live events wait in its queue; ids are compared,
 * so nothing is delivered twice or out of order. When the set of watched streams changes, the
 * pending `XREAD` is cut short with `CLIENT UNBLOCK`.
 */
export class VideoEventHub {
  private readonly redis: Redis;
  private readonly keyspace: Keyspace;
  private readonly blockMs: number;
  private readonly count: number;
  private readonly retryDelayMs: number;
  private readonly onError: (err: Error) => void;
  private readonly groups = new Map<VideoId, Group>();
  private readonly groupsByKey = new Map<string, Group>();
  private blocking: Redis | null = null;
  private blockingId: number | null = null;
  private loop: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private closed = false;
  private blocked = false;
  private generation = 0;
  private unblockRequested = -1;
  private wakeIdle: (() => void) | null = null;
  private subscribers = 0;

  constructor(opts: VideoEventHubOptions) {
    this.redis = opts.redis;
    this.keyspace = opts.keyspace;
    this.blockMs = opts.blockMs ?? 5_000;
    this.count = opts.count ?? 200;
    this.retryDelayMs = opts.retryDelayMs ?? 500;
    this.onError = opts.onError ?? (() => {});
  }

  /**
   * Opens the blocking connection and starts the read loop. Idempotent: concurrent and later
   * calls share one start; a failed start (Redis down) is retried by the next call.
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('VideoEventHub is closed'));
    if (!this.starting) {
      this.starting = this.open().catch((err: unknown) => {
        this.starting = null;
        throw err;
      });
    }
    return this.starting;
  }

  private async open(): Promise<void> {
    const blocking = this.redis.duplicate({ lazyConnect: true, connectionName: 'rehyat-event-hub' });
    blocking.on('error', (err: Error) => this.onError(err));
    blocking.on('ready', () => {
      blocking.client('ID').then(
        (id) => {
          this.blockingId = Number(id);
        },
        (err: Error) => this.onError(err),
      );
    });
    blocking.on('close', () => {
      this.blockingId = null;
    });
    try {
      await blocking.connect();
      this.blockingId = Number(await blocking.client('ID'));
    } catch (err) {
      blocking.disconnect();
      throw err;
    }
    if (this.closed) {
      blocking.disconnect();
      throw new Error('VideoEventHub is closed');
    }
    this.blocking = blocking;
    this.loop = this.run();
  }

  /** Counts, for metrics and tests. */
  stats(): { videos: number; subscribers: number } {
    return { videos: this.groups.size, subscribers: this.subscribers };
  }

  /** Delivers the video's events after `after` to `onEvent`, then every new one, until closed. */
  subscribe(videoId: VideoId, opts: SubscribeOptions): HubSubscription {
    if (this.closed) throw new Error('VideoEventHub is closed');
    if (!this.loop) throw new Error('VideoEventHub.start() was not awaited');
    const after = opts.after === undefined ? STREAM_START_ID : normalizeStreamId(opts.after);
    const sub: Sub = { lastId: after, pending: null, onEvent: opts.onEvent, closed: false };
    let group = this.groups.get(videoId);
    if (!group) {
      group = { videoId, key: this.keyspace.videoEvents(videoId), lastId: after, subs: new Set() };
      this.groups.set(videoId, group);
      this.groupsByKey.set(group.key, group);
      group.subs.add(sub);
      this.wake();
    } else {
      group.subs.add(sub);
      if (compareStreamIds(after, group.lastId) < 0) {
        sub.pending = [];
        void this.catchUp(group, sub, group.lastId);
      }
    }
    this.subscribers++;
    return {
      videoId,
      close: () => {
        if (sub.closed) return;
        sub.closed = true;
        this.subscribers--;
        const g = this.groups.get(videoId);
        if (!g) return;
        g.subs.delete(sub);
        if (g.subs.size === 0) {
          this.groups.delete(videoId);
          this.groupsByKey.delete(g.key);
        }
      },
    };
  }

  /** Stops the loop and closes the blocking connection; subscriptions get nothing further. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakeIdle?.();
    const blocking = this.blocking;
    if (blocking) blocking.disconnect();
    await this.starting?.catch(() => {});
    this.blocking?.disconnect();
    await this.loop?.catch(() => {});
    this.groups.clear();
    this.groupsByKey.clear();
  }

  private async run(): Promise<void> {
    const blocking = this.blocking;
    if (!blocking) return;
    while (!this.closed) {
      if (this.groups.size === 0) {
        await new Promise<void>((resolve) => {
          this.wakeIdle = resolve;
        });
        this.wakeIdle = null;
        continue;
      }
      const keys: string[] = [];
      const ids: string[] = [];
      for (const g of this.groups.values()) {
        keys.push(g.key);
        ids.push(g.lastId);
      }
      this.generation++;
      let reply: [string, RawEntry[]][] | null;
      try {
        this.blocked = true;
        const pending = blocking.xread('COUNT', this.count, 'BLOCK', this.blockMs, 'STREAMS', ...keys, ...ids);
        reply = (await pending) as [string, RawEntry[]][] | null;
      } catch (err) {
        if (this.closed) break;
        this.onError(err as Error);
        await new Promise((r) => setTimeout(r, this.retryDelayMs));
        continue;
      } finally {
        this.blocked = false;
      }
      if (reply) this.dispatch(reply);
    }
  }

  private dispatch(reply: [string, RawEntry[]][]): void {
    for (const [key, entries] of reply) {
      const group = this.groupsByKey.get(key);
      if (!group) continue; // every subscriber left while the read was in flight
      for (const raw of entries) {
        if (compareStreamIds(raw[0], group.lastId) <= 0) continue;
        group.lastId = raw[0];
        const decoded = decodeEntry(key, raw);
        if (decoded instanceof InvalidStreamEntryError) {
          this.onError(decoded);
          continue;
        }
        for (const sub of group.subs) this.deliver(sub, decoded);
      }
    }
  }

  private deliver(sub: Sub, event: StoredVideoEvent): void {
    if (sub.closed) return;
    if (sub.pending) {
      sub.pending.push(event);
      return;
    }
    if (compareStreamIds(event.id, sub.lastId) <= 0) return;
    sub.lastId = event.id;
    try {
      sub.onEvent(event);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  /** Reads (sub.lastId, target] for a subscriber that is behind its group, then makes it live. */
  private async catchUp(group: Group, sub: Sub, target: string): Promise<void> {
    try {
      while (!sub.closed && compareStreamIds(sub.lastId, target) < 0) {
        const entries = (await this.redis.xrange(group.key, `(${sub.lastId}`, target, 'COUNT', 500)) as RawEntry[];
        if (entries.length === 0) break;
        for (const raw of entries) {
          const decoded = decodeEntry(group.key, raw);
          if (decoded instanceof InvalidStreamEntryError) {
            this.onError(decoded);
            sub.lastId = raw[0];
            continue;
          }
          const queued = sub.pending;
          sub.pending = null;
          this.deliver(sub, decoded);
          if (!sub.closed) sub.pending = queued;
        }
      }
    } catch (err) {
      this.onError(err as Error);
    }
    const queued = sub.pending ?? [];
    sub.pending = null;
    for (const event of queued) this.deliver(sub, event);
  }

  /** Makes the loop pick up a changed set of streams now rather than after `blockMs`. */
  private wake(): void {
    if (this.wakeIdle) {
      this.wakeIdle();
      return;
    }
    if (!this.blocked || this.unblockRequested === this.generation) return;
    const gen = this.generation;
    this.unblockRequested = gen;
    const attempt = (tries: number) => {
      const id = this.blockingId;
      if (id === null || this.closed || this.generation !== gen) return;
      this.redis.client('UNBLOCK', id).then(
        (n) => {
          // 0: our XREAD has not reached Redis yet (it travels on another connection); retry.
          if (Number(n) === 0 && this.generation === gen && this.blocked && tries < 50) {
            setTimeout(() => attempt(tries + 1), 2);
          }
        },
        (err: Error) => this.onError(err),
      );
    };
    attempt(0);
  }
}
