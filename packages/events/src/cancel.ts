import type { Redis } from 'ioredis';
import { EVENT_STREAM_TTL_AFTER_TERMINAL_S, isVideoId, type Keyspace, type VideoId } from '@rehyat/contracts';

export interface RequestCancelOptions {
  /** Stored as the key's value; the worker reports it. @defaultValue `requested` */
  reason?: string;
  /** Lifetime of the cancel key. @defaultValue `EVENT_STREAM_TTL_AFTER_TERMINAL_S` */
  ttlS?: number;
}

/**
 * Asks a running video to stop: sets the cancel key (polled by the worker between denoising
 * steps, so it works even if the announcement is missed) and PUBLISHes the video id on the cancel
 * channel (so a subscribed worker reacts at once). Returns how many subscribers got the announcement.
 */
export async function requestCancel(
  redis: Redis,
  keyspace: Keyspace,
  videoId: VideoId,
  opts: RequestCancelOptions = {},
): Promise<number> {
  const results = await redis
    .multi()
    .set(keyspace.videoCancel(videoId), opts.reason ?? 'requested', 'EX', opts.ttlS ?? EVENT_STREAM_TTL_AFTER_TERMINAL_S)
    .publish(keyspace.cancelChannel(), videoId)
    .exec();
  if (!results) throw new Error(`requestCancel: MULTI for ${videoId} was aborted`);
  for (const [err] of results) if (err) throw err;
  return Number(results[1]?.[1] ?? 0);
}

/** The cancel reason if a cancel was requested for the video, else `null`. */
export async function getCancelRequest(redis: Redis, keyspace: Keyspace, videoId: VideoId): Promise<string | null> {
  return redis.get(keyspace.videoCancel(videoId));
}

/** Whether a cancel was requested for the video. */
export async function isCancelRequested(redis: Redis, keyspace: Keyspace, videoId: VideoId): Promise<boolean> {
  return (await redis.exists(keyspace.videoCancel(videoId))) === 1;
}

/** Removes the cancel key (after the worker honoured it, or when a video is re-queued). */
export async function clearCancelRequest(redis: Redis, keyspace: Keyspace, videoId: VideoId): Promise<void> {
  await redis.del(keyspace.videoCancel(videoId));
}

/**
 * Listens to cancel announcements. `subscriber` must be a connection dedicated to pub/sub (it
 * enters subscriber mode). Resolves once subscribed; the returned function unsubscribes.
 * Announcements can be missed (pub/sub has no history): always also poll `isCancelRequested`.
 */
export async function onCancelRequested(
  subscriber: Redis,
  keyspace: Keyspace,
  listener: (videoId: VideoId) => void,
): Promise<() => Promise<void>> {
  const channel = keyspace.cancelChannel();
  const handler = (ch: string, message: string) => {
    if (ch === channel && isVideoId(message)) listener(message);
  };
  subscriber.on('message', handler);
  await subscriber.subscribe(channel);
  return async () => {
    subscriber.off('message', handler);
    await subscriber.unsubscribe(channel);
  };
}
