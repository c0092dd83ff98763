import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { VideoEvent } from '@rehyat/contracts';
import { PAYLOAD_FIELD, parseStoredEvent } from '@rehyat/events';

export interface EventFeedConsumerOptions {
  redisUrl: string;
  /** The all-videos feed stream (`keyspace.videoEventFeed()`). */
  stream: string;
  /** Consumer group: each entry is handled by one consumer of the group. */
  group: string;
  /**
   * Handles the events of one read, in order; per event, an Error leaves that entry pending (to be
   * claimed again later), anything else acknowledges it.
   */
  handle: (items: Array<{ event: VideoEvent; entryId: string }>) => Promise<unknown[]>;
  onError: (err: unknown, entryId: string | null) => void;
  /** @defaultValue 2000 */
  blockMs?: number;
  /**
   * Most entries per read (handled as one batch).
   * @defaultValue 200
   */
  count?: number;
  /**
   * Entries pending this long (their consumer died or failed) are claimed by this one.
   * @defaultValue 30_000
   */
  claimIdleMs?: number;
}

type Entries = Array<[string, string[]]>;

/**
 * Reads the all-videos event feed with a Redis consumer group: every API instance running one
 * shares the work, each entry is acknowledged only after its handler succeeded, and entries left
 * pending by a crashed or stopped instance are claimed (XAUTOCLAIM) by a live one. So an event
 * published while no API runs is handled once one starts.
 */
export class EventFeedConsumer {
  private readonly redis: Redis;
  private readonly consumer = `c-${randomBytes(6).toString('hex')}`;
  private running = false;
  private loop: Promise<void> | null = null;
  private lastClaim = 0;

  constructor(private readonly opts: EventFeedConsumerOptions) {
    this.redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    this.redis.on('error', () => undefined);
  }

  /** Starts the loop and returns at once; a Redis that is down is retried, reported through `onError`. */
  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  private async ensureGroup(): Promise<void> {
    try {
      // `0`: a group created after events were published still sees them.
      await this.redis.xgroup('CREATE', this.opts.stream, this.opts.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  private async run(): Promise<void> {
    const claimIdle = this.opts.claimIdleMs ?? 30_000;
    let ready = false;
    while (this.running) {
      try {
        if (!ready) {
          if (this.redis.status === 'wait') await this.redis.connect();
          await this.ensureGroup();
          ready = true;
        }
        if (Date.now() - this.lastClaim >= Math.min(claimIdle, 10_000)) {
          this.lastClaim = Date.now();
          const claimed = (await this.redis.xautoclaim(this.opts.stream, this.opts.group, this.consumer, claimIdle, '0-0', 'COUNT', 100)) as [string, Entries];
          await this.handleAll(claimed[1] ?? []);
        }
        const res = (await this.redis.xreadgroup(
          'GROUP',
          this.opts.group,
          this.consumer,
          'COUNT',
          this.opts.count ?? 200,
          'BLOCK',
          this.opts.blockMs ?? 2000,
          'STREAMS',
          this.opts.stream,
          '>',
        )) as Array<[string, Entries]> | null;
        if (res) for (const [, entries] of res) await this.handleAll(entries);
      } catch (err) {
        if (!this.running) return;
        this.opts.onError(err, null);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async handleAll(entries: Entries): Promise<void> {
    const ack: string[] = [];
    const items: Array<{ event: VideoEvent; entryId: string }> = [];
    for (const [id, fields] of entries) {
      if (!fields) {
        ack.push(id); // trimmed away while pending: nothing to handle
        continue;
      }
      try {
        items.push({ event: parseStoredEvent(fields[fields.indexOf(PAYLOAD_FIELD) + 1] ?? ''), entryId: id });
      } catch (err) {
        this.opts.onError(err, id);
        ack.push(id); // off-contract: never retry
      }
    }
    if (items.length > 0) {
      let results: unknown[];
      try {
        results = await this.opts.handle(items);
      } catch (err) {
        results = items.map(() => err);
      }
      items.forEach((item, i) => {
        const r = results[i];
        if (!(r instanceof Error)) ack.push(item.entryId);
        else {
          this.opts.onError(r, item.entryId);
          if (r instanceof SyntaxError || r.name === 'ZodError') ack.push(item.entryId); // off-contract: never retry
        }
      });
    }
    // One XACK for the whole read.
    if (ack.length > 0) await this.redis.xack(this.opts.stream, this.opts.group, ...ack);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.redis.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
