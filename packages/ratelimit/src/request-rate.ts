import type { Redis } from 'ioredis';

/**
 * GCRA (generic cell rate algorithm, the "leaky bucket as a meter"): one key per API key
 * holding its theoretical arrival time. Atomic in one Lua script that reads Redis's clock, so
 * every API instance sees the same limit and no instance's clock matters.
 *
 * KEYS[1] = tat key; ARGV = emission interval ms, burst, cost.
 * Returns {allowed (0|1), remaining, retry_after_ms, reset_after_ms}.
 */
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((now - allow_at) / interval)
return {1, remaining, 0, math.ceil(new_tat - now)}
`;

/** The verdict on one request, with what the `x-ratelimit-*` headers report. */
export interface RateDecision {
  allowed: boolean;
  /** Requests per minute for this key. */
  limit: number;
  /** Requests that would be allowed right now after this one. */
  remaining: number;
  /** When denied: milliseconds until one request is allowed (`Retry-After`). */
  retryAfterMs: number;
  /** Milliseconds until the bucket is full again (`x-ratelimit-reset-requests`). */
  resetAfterMs: number;
}

export interface RequestRateLimiterOptions {
  redis: Redis;
  /**
   * Key prefix (the deployment's keyspace prefix).
   * @defaultValue `rehyat`
   */
  prefix?: string;
}

/** Requests-per-minute limiter per API key; `limit` may differ per key. */
export class RequestRateLimiter {
  private readonly redis: Redis;
  private readonly prefix: string;

  constructor(opts: RequestRateLimiterOptions) {
    this.redis = opts.redis;
    this.prefix = opts.prefix ?? 'rehyat';
    if (typeof (this.redis as unknown as { rehyatGcra?: unknown }).rehyatGcra !== 'function') {
      this.redis.defineCommand('rehyatGcra', { numberOfKeys: 1, lua: GCRA_LUA });
    }
  }

  key(keyId: string): string {
    return `${this.prefix}:ratelimit:rpm:${keyId}`;
  }

  /**
   * Counts one request of `keyId` against `limitPerMinute` (a burst of up to the whole minute's
   * quota is allowed, then one request every `60 s / limit`).
   */
  async hit(keyId: string, limitPerMinute: number, cost = 1): Promise<RateDecision> {
    if (!(limitPerMinute > 0)) throw new RangeError('limitPerMinute must be positive');
    const interval = 60_000 / limitPerMinute;
    const r = (await (this.redis as unknown as { rehyatGcra: (k: string, i: number, b: number, c: number) => Promise<number[]> }).rehyatGcra(
      this.key(keyId),
      interval,
      limitPerMinute,
      cost,
    )) as [number, number, number, number];
    return {
      allowed: r[0] === 1,
      limit: limitPerMinute,
      remaining: Math.min(limitPerMinute, Math.max(0, r[1])),
      retryAfterMs: Math.ceil(r[2]),
      resetAfterMs: Math.ceil(r[3]),
    };
  }

  /** Forgets a key's history (after its limit changed, or in tests). */
  async reset(keyId: string): Promise<void> {
    await this.redis.del(this.key(keyId));
  }
}
