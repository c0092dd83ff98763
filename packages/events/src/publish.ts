import type { Redis } from 'ioredis';
import {
  EVENT_DATA,
  EVENT_FEED_MAXLEN,
  EVENT_STREAM_MAXLEN,
  EVENT_STREAM_TTL_AFTER_TERMINAL_S,
  isTerminalEvent,
  type Keyspace,
  type VideoEvent,
  type VideoEventData,
  type VideoEventType,
  type VideoId,
} from '@rehyat/contracts';

/** Name of the stream entry field holding the event JSON (the contract's `payload`). */
export const PAYLOAD_FIELD = 'payload';

export interface PublishOptions {
  /** Approximate cap of the stream (`XADD MAXLEN ~`). @defaultValue `EVENT_STREAM_MAXLEN` */
  maxLen?: number;
  /** Seconds the stream lives after a terminal event. @defaultValue `EVENT_STREAM_TTL_AFTER_TERMINAL_S` */
  ttlAfterTerminalS?: number;
  /** Clock of `created_at`. @defaultValue `() => new Date()` */
  now?: () => Date;
}

/** A MULTI (or pipeline) that {@link appendVideoEvent} queues its commands on. */
export type EventTransaction = ReturnType<Redis['multi']>;

/**
 * Queues one event on `tx` without executing it: the XADD to the video's stream, the XADD to
 * the all-videos feed and, for a terminal event, the stream's EXPIRE (three replies, or two).
 * For callers that put events into a larger MULTI of their own (the API's batched creation adds
 * each new video's `video.queued` in the same MULTI as its job). `data` is validated first; a
 * ZodError means nothing was queued. Returns how many commands were queued; the first one's
 * reply is the entry id.
 */
export function appendVideoEvent<T extends VideoEventType>(
  tx: EventTransaction,
  keyspace: Keyspace,
  videoId: VideoId,
  type: T,
  data: VideoEventData<T>,
  opts: PublishOptions = {},
): number {
  const parsed = EVENT_DATA[type].parse(data) as VideoEventData<T>;
  const event: VideoEvent<T> = {
    type,
    video_id: videoId,
    created_at: (opts.now ?? (() => new Date()))().toISOString(),
    data: parsed,
  };
  const key = keyspace.videoEvents(videoId);
  const json = JSON.stringify(event);
  tx.xadd(key, 'MAXLEN', '~', opts.maxLen ?? EVENT_STREAM_MAXLEN, '*', PAYLOAD_FIELD, json);
  // The all-videos feed (webhooks, quota release): same payload, same MULTI.
  tx.xadd(keyspace.videoEventFeed(), 'MAXLEN', '~', EVENT_FEED_MAXLEN, '*', PAYLOAD_FIELD, json);
  if (!isTerminalEvent(type)) return 2;
  tx.expire(key, opts.ttlAfterTerminalS ?? EVENT_STREAM_TTL_AFTER_TERMINAL_S);
  return 3;
}

/**
 * Appends one event to a video's stream and returns its entry id (the SSE event id).
 * `data` is validated against the contract's `EVENT_DATA[type]` first (a ZodError on anything
 * off-contract, nothing written). The event is also appended to the all-videos feed
 * (`keyspace.videoEventFeed()`) in the same MULTI. A terminal event (`completed`, `failed`, `cancelled`) also sets
 * the stream's TTL, in the same MULTI, so finished streams clean themselves up.
 */
export async function publishVideoEvent<T extends VideoEventType>(
  redis: Redis,
  keyspace: Keyspace,
  videoId: VideoId,
  type: T,
  data: VideoEventData<T>,
  opts: PublishOptions = {},
): Promise<string> {
  const tx = redis.multi();
  appendVideoEvent(tx, keyspace, videoId, type, data, opts);
  const results = await tx.exec();
  if (!results) throw new Error(`publishVideoEvent: MULTI on ${keyspace.videoEvents(videoId)} was aborted`);
  const [xaddErr, id] = results[0] ?? [new Error('no XADD reply'), null];
  if (xaddErr) throw xaddErr;
  for (const [err] of results.slice(1)) if (err) throw err;
  return id as string;
}
