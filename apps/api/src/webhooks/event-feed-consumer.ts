import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { parseVideoEvent, type VideoEvent } from '@rehyat/contracts';
import { PAYLOAD_FIELD } from '@rehyat/events';

export interface EventFeedConsumerOptions {
  redisUrl: string;
  /** The all-videos feed stream (`keyspace.videoEventFeed()`). */
  stream: string;
  /** Consumer group: each entry is handled by one consumer of the group. */
  group: string;
  /** Handles one event; a throw leaves the entry pending, to be claimed again later. */
  handle: (event: VideoEvent, entryId: string) => Promise<void>;
  onError: (err: unknown, entryId: string | null) => void;
  /** @defaultValue 2000 */
  blockMs?: number;
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
          50,
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
    for (const [id, fields] of entries) {
      if (!fields) {
        // Trimmed away while pending: nothing to handle.
        await this.redis.xack(this.opts.stream, this.opts.group, id);
        continue;
      }
      const i = fields.indexOf(PAYLOAD_FIELD);
      try {
        const event = parseVideoEvent(fields[i + 1] ?? '');
        await this.opts.handle(event, id);
        await this.redis.xack(this.opts.stream, this.opts.group, id);
      } catch (err) {
        this.opts.onError(err, id);
        if (err instanceof SyntaxError || (err as Error).name === 'ZodError') {
          await this.redis.xack(this.opts.stream, this.opts.group, id); // off-contract: never retry
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.redis.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
