import type { Redis } from 'ioredis';

const ACQUIRE_LUA = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {1, redis.call('ZCARD', KEYS[1])} end
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then return {0, n} end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]), ARGV[1])
return {1, n + 1}
`;

export interface ActiveDecision {
  allowed: boolean;
  limit: number;
  /** Active videos of the key, counting this one when allowed. */
  active: number;
}

export interface ActiveVideoLimiterOptions {
  redis: Redis;
  /** @defaultValue `rehyat` */
  prefix?: string;
}

/**
 * Cap on concurrently active (queued or in progress) videos per API key: a Redis sorted set of
 * the key's active video ids, changed only by atomic scripts, so the cap holds across API
 * instances. A video is released when it reaches a terminal status; `prune` drops members a
 * caller found terminal (self-healing if a release was ever missed).
 */
export class ActiveVideoLimiter {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(opts: ActiveVideoLimiterOptions) {
    this.redis = opts.redis;
    this.prefix = opts.prefix ?? 'rehyat';
    if (typeof (this.redis as unknown as { rehyatActiveAcquire?: unknown }).rehyatActiveAcquire !== 'function') {
      this.redis.defineCommand('rehyatActiveAcquire', { numberOfKeys: 1, lua: ACQUIRE_LUA });
    }
  }

  key(keyId: string): string {
    return `${this.prefix}:ratelimit:active:${keyId}`;
  }

  /** Takes a slot for `videoId` (idempotent for the same video). */
  async acquire(keyId: string, videoId: string, limit: number): Promise<ActiveDecision> {
    const r = (await (this.redis as unknown as { rehyatActiveAcquire: (k: string, v: string, l: number) => Promise<number[]> }).rehyatActiveAcquire(
      this.key(keyId),
      videoId,
      limit,
    )) as [number, number];
    return { allowed: r[0] === 1, limit, active: r[1] };
  }

  /**
   * Turns a reservation (a slot taken before the video id existed) into the video's slot, in
   * one MULTI: the slot count does not change.
   */
  async confirm(keyId: string, reservation: string, videoId: string): Promise<void> {
    const now = Math.floor(Date.now() / 1000);
    await this.redis.multi().zadd(this.key(keyId), now, videoId).zrem(this.key(keyId), reservation).exec();
  }

  async release(keyId: string, videoId: string): Promise<void> {
    await this.redis.zrem(this.key(keyId), videoId);
  }

  async members(keyId: string): Promise<string[]> {
    return this.redis.zrange(this.key(keyId), 0, -1);
  }

  async count(keyId: string): Promise<number> {
    return this.redis.zcard(this.key(keyId));
  }

  /**
   * Keeps only the members for which `isActive` answers true (ask the database). Returns how
   * many were dropped.
   */
  async prune(keyId: string, isActive: (videoIds: string[]) => Promise<boolean[]>): Promise<number> {
    const ids = await this.members(keyId);
    if (ids.length === 0) return 0;
    const flags = await isActive(ids);
    const dead = ids.filter((_, i) => !flags[i]);
    if (dead.length) await this.redis.zrem(this.key(keyId), ...dead);
    return dead.length;
  }
}
