import type { Redis } from 'ioredis';
import type { Keyspace, VideoId } from '@rehyat/contracts';
import { isCancelRequested, onCancelRequested } from '@rehyat/events';

/** The reason a generation's AbortSignal carries when the API cancelled the video. */
export class VideoCancelledError extends Error {
  override name = 'VideoCancelledError';
}

/**
 * Announcements on the cancel channel, shared by every job of the process: one pub/sub
 * connection, listeners per video.
 */
export class CancelAnnouncements {
  #listeners = new Map<string, Set<() => void>>();
  #stop: (() => Promise<void>) | undefined;

  static async start(subscriber: Redis, keyspace: Keyspace): Promise<CancelAnnouncements> {
    const c = new CancelAnnouncements();
    c.#stop = await onCancelRequested(subscriber, keyspace, (id) => {
      for (const fn of c.#listeners.get(id) ?? []) fn();
    });
    return c;
  }

  on(videoId: string, fn: () => void): () => void {
    let set = this.#listeners.get(videoId);
    if (!set) this.#listeners.set(videoId, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.#listeners.delete(videoId);
    };
  }

  async stop(): Promise<void> {
    await this.#stop?.();
  }
}

/**
 * Aborts `controller` with a {@link VideoCancelledError} when a cancel is requested for the video:
 * at once on the pub/sub announcement, or at the next poll of the cancel key (announcements can
 * be missed). Returns a function that stops watching.
 */
export function watchCancel(opts: {
  redis: Redis;
  keyspace: Keyspace;
  videoId: VideoId;
  controller: AbortController;
  pollMs: number;
  announcements?: CancelAnnouncements;
  onError: (err: unknown) => void;
}): () => void {
  const abort = () => {
    if (!opts.controller.signal.aborted) opts.controller.abort(new VideoCancelledError(`video ${opts.videoId} was cancelled`));
  };
  const off = opts.announcements?.on(opts.videoId, abort);
  const timer = setInterval(() => {
    isCancelRequested(opts.redis, opts.keyspace, opts.videoId).then((yes) => yes && abort(), opts.onError);
  }, opts.pollMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    off?.();
  };
}
