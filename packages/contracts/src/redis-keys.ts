import type { VideoId } from './ids.js';

/**
 * Every Redis key and channel the API and workers share. All are under one prefix so several
 * deployments (or test runs) can share a Redis.
 */
export interface KeyspaceOptions {
  /**
   * Prefix of every key, also used as BullMQ's queue prefix.
   * @defaultValue `rehyat`
   */
  prefix?: string;
}

export class Keyspace {
  readonly prefix: string;
  constructor(opts: KeyspaceOptions = {}) {
    this.prefix = opts.prefix ?? 'rehyat';
  }
  /** Stream of a video's live events (XADD by producers, XREAD by the SSE route). */
  videoEvents(id: VideoId): string {
    return `${this.prefix}:video:${id}:events`;
  }
  /**
   * One stream of every video's events (each entry also appended to the video's own stream, in
   * the same MULTI): consumers that follow all videos (webhooks, quota release) read it with a
   * consumer group, so each event is handled once across API replicas and survives restarts.
   */
  videoEventFeed(): string {
    return `${this.prefix}:events:feed`;
  }
  /** Set (to a reason) when a running video must stop; the worker polls it between steps. */
  videoCancel(id: VideoId): string {
    return `${this.prefix}:video:${id}:cancel`;
  }
  /** Pub/sub channel on which cancel requests are announced (payload: the video id). */
  cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }
  /** Hash of one worker's heartbeat, with a TTL; see `WorkerHeartbeat`. */
  workerHeartbeat(workerId: string): string {
    return `${this.prefix}:worker:${workerId}`;
  }
  /** Pattern matching every worker heartbeat key. */
  workerHeartbeatPattern(): string {
    return `${this.prefix}:worker:*`;
  }
  /**
   * Sorted set of worker ids, each scored by its last heartbeat (ms since the epoch, the worker's
   * clock), written with the heartbeat hash: readers find workers here instead of scanning the
   * keyspace. Members older than `WORKER_REGISTRY_PRUNE_AFTER_S` may be removed by any reader; a
   * member whose heartbeat hash is gone is a worker that stopped or died.
   */
  workers(): string {
    return `${this.prefix}:workers`;
  }
}

/** Event streams are capped (approximate MAXLEN) and expire after the video is terminal. */
export const EVENT_STREAM_MAXLEN = 10_000;
export const EVENT_STREAM_TTL_AFTER_TERMINAL_S = 24 * 60 * 60;
/** The all-videos feed is capped too (approximate MAXLEN); consumers keep up well within it. */
export const EVENT_FEED_MAXLEN = 100_000;
