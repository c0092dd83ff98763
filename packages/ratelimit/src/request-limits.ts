import type { Redis } from 'ioredis';
import type { RateDecision } from './request-rate.js';

/**
 * Every limit of a batch of requests in one script call, in arrival order, each request exactly
 * as the separate scripts would judge it one after the other at the same instant:
 *
 * 1. the key's requests per minute: the GCRA of `RequestRateLimiter` (same key, same state);
 *    a refusal stops here and changes nothing;
 * 2. creations only, the global queue cap: jobs waiting to start (wait + prioritized + delayed,
 *    what `checkQueueAdmission` counts) plus the admissions not yet settled (the `admitting`
 *    set: creations allowed whose job may not be queued yet; older than the TTL: dropped),
 *    against the cap; a refusal stops here;
 * 3. creations only, the key's active-video cap: `ActiveVideoLimiter`'s acquire of the request's
 *    reservation (same sorted set); a refusal takes nothing;
 * 4. allowed creations under a queue cap enter the `admitting` set (member: the reservation).
 *
 * KEYS[1..4] = wait list, prioritized zset, delayed zset, admitting zset; then per entry (an
 * API key with its limits, once per batch) its GCRA key and its active set. ARGV[1] = queue cap
 * (0: off), ARGV[2] = admission TTL ms, ARGV[3] = entries; then per entry: rpm limit (0: off),
 * active cap (0: off); then per request: its entry (1-based), creation (0|1), reservation.
 * The emission interval is `60000 / rpm`, the same double `RequestRateLimiter` computes.
 * Returns per request {verdict, remaining, retry_after_ms, reset_after_ms, count}: verdict 0 =
 * allowed, 1 = rate, 2 = queue full (count = queued), 3 = active cap (count = active); when
 * allowed, count = the key's active videos counting this reservation (or -1).
 */
const CHECK_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_s = tonumber(t[1])
local qcap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local entries = tonumber(ARGV[3])
local queued = nil
local out = {}
local first = 4 + 2 * entries
for a = first, #ARGV, 3 do
  local e = tonumber(ARGV[a])
  local rkey = KEYS[3 + 2 * e]
  local akey = KEYS[4 + 2 * e]
  local limit = tonumber(ARGV[2 + 2 * e])
  local acap = tonumber(ARGV[3 + 2 * e])
  local creation = ARGV[a + 1] == '1'
  local reservation = ARGV[a + 2]
  local verdict, remaining, retry, reset, count = 0, 0, 0, 0, -1
  if limit > 0 then
    local tat = tonumber(redis.call('GET', rkey) or '0')
    if tat < now then tat = now end
    local interval = 60000 / limit
    local new_tat = tat + interval
    local allow_at = new_tat - limit * interval
    if now < allow_at then
      verdict, retry, reset = 1, math.ceil(allow_at - now), math.ceil(tat - now)
    else
      redis.call('SET', rkey, new_tat, 'PX', math.max(1, math.ceil(new_tat - now)))
      remaining, reset = math.floor((now - allow_at) / interval), math.ceil(new_tat - now)
    end
  end
  local admit = false
  if verdict == 0 and creation and qcap > 0 then
    if queued == nil then
      redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - ttl)
      queued = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
    end
    if redis.call('ZSCORE', KEYS[4], reservation) then
      admit = false
    elseif queued >= qcap then
      verdict, count = 2, queued
    else
      admit = true
    end
  end
  if verdict == 0 and creation and acap > 0 then
    if redis.call('ZSCORE', akey, reservation) then
      count = redis.call('ZCARD', akey)
    else
      local m = redis.call('ZCARD', akey)
      if m >= acap then
        verdict, count = 3, m
      else
        redis.call('ZADD', akey, now_s, reservation)
        count = m + 1
      end
    end
  end
  if verdict == 0 and admit then
    redis.call('ZADD', KEYS[4], now, reservation)
    queued = queued + 1
  end
  out[#out + 1] = {verdict, remaining, retry, reset, count}
end
return out
`;

/**
 * Ends a batch of reservations (`RequestLimits#settle`). KEYS[1] = admitting zset, then per item
 * the key's active set; ARGV[1] = 1 when a queue cap is on; then per item: reservation, video id
 * ('' when nothing was created), holds an active slot (0|1).
 */
const SETTLE_LUA = `
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local admitting = ARGV[1] == '1'
for i = 1, #KEYS - 1 do
  local a = 2 + (i - 1) * 3
  local reservation, video = ARGV[a], ARGV[a + 1]
  if admitting then redis.call('ZREM', KEYS[1], reservation) end
  if ARGV[a + 2] == '1' then
    if video ~= '' then redis.call('ZADD', KEYS[1 + i], now_s, video) end
    redis.call('ZREM', KEYS[1 + i], reservation)
  end
end
return #KEYS - 1
`;

/** One request to judge. */
export interface LimitRequest {
  keyId: string;
  /** Requests per minute of the key; 0: not limited. */
  rpm: number;
  /** Creates a video (and so a job): the queue cap and the active cap apply. */
  creation: boolean;
  /** Active videos the key may have; 0: not limited. */
  maxActive: number;
  /**
   * Creations under a queue cap or an active cap: the id of the admission / slot taken when
   * allowed, to hand to `settle` once the request is answered.
   */
  reservation?: string;
}

/** The verdict on one request; `refusedBy` names the first limit that refused it. */
export interface LimitVerdict {
  refusedBy: null | 'rate' | 'queue' | 'active';
  /** The rate decision (`x-ratelimit-*` headers); absent when `rpm` is 0. */
  rate?: RateDecision;
  /** Refused by the queue cap: jobs waiting to start plus admissions not yet settled. */
  queued?: number;
  /** Refused by the active cap: the key's active videos; allowed: counting this reservation. */
  active?: number;
}

/** How a reservation ends (`RequestLimits#settle`). */
export interface Settlement {
  keyId: string;
  reservation: string;
  /** The video created: it takes the reservation's active slot; null: nothing created, the slot is freed. */
  videoId: string | null;
  /** The reservation holds an active slot (it was checked with `maxActive > 0`). */
  active: boolean;
}

export interface RequestLimitsOptions {
  redis: Redis;
  /** @defaultValue `rehyat` */
  prefix?: string;
  /** The generation queue's name (its wait, prioritized and delayed keys under `prefix`). */
  queueName: string;
  /** Global cap on queued jobs; 0: off. */
  queueCap: number;
  /**
   * An admission not settled after this long belongs to a request that died: it no longer counts.
   * @defaultValue 300000
   */
  admissionTtlMs?: number;
  /**
   * Most requests in one script call.
   * @defaultValue 256
   */
  maxBatch?: number;
}

interface Pending {
  req: LimitRequest;
  resolve: (v: LimitVerdict) => void;
  reject: (err: unknown) => void;
}

/**
 * Judges the requests that arrive in the same event-loop turn together: one Lua call for the
 * rate limit, queue cap and active cap of all of them (see {@link CHECK_LUA}) instead of up to
 * three round trips per request, and one script call for the reservations settled in one turn. Exact:
 * the script runs atomically, in arrival order, on the same keys as `RequestRateLimiter` and
 * `ActiveVideoLimiter`, so concurrent batches (and other instances) cannot oversubscribe a key's
 * cap, and a refused request leaves nothing behind. The queue cap also counts admissions whose
 * job may not be queued yet, so it is not overshot either (between a job's add and its
 * settlement it counts twice: briefly conservative, never over).
 */
export class RequestLimits {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #queueKeys: [string, string, string, string];
  readonly #queueCap: number;
  readonly #ttlMs: number;
  readonly #maxBatch: number;
  #pending: Pending[] = [];
  #scheduled = false;
  #settling: Array<{ s: Settlement; done: (err?: unknown) => void }> = [];

  constructor(opts: RequestLimitsOptions) {
    this.#redis = opts.redis;
    this.#prefix = opts.prefix ?? 'rehyat';
    const q = `${this.#prefix}:${opts.queueName}`;
    this.#queueKeys = [`${q}:wait`, `${q}:prioritized`, `${q}:delayed`, this.admittingKey(opts.queueName)];
    this.#queueCap = opts.queueCap;
    this.#ttlMs = opts.admissionTtlMs ?? 300_000;
    this.#maxBatch = opts.maxBatch ?? 256;
    if (typeof (this.#redis as unknown as { rehyatCheckLimits?: unknown }).rehyatCheckLimits !== 'function') {
      this.#redis.defineCommand('rehyatCheckLimits', { lua: CHECK_LUA });
    }
    if (typeof (this.#redis as unknown as { rehyatSettleLimits?: unknown }).rehyatSettleLimits !== 'function') {
      this.#redis.defineCommand('rehyatSettleLimits', { lua: SETTLE_LUA });
    }
  }

  /** The sorted set of admissions not yet settled (reservation -> ms of admission). */
  admittingKey(queueName: string): string {
    return `${this.#prefix}:ratelimit:admitting:${queueName}`;
  }

  /** Judges one request (batched with the others of this event-loop turn). */
  check(req: LimitRequest): Promise<LimitVerdict> {
    if (!(req.rpm >= 0) || !(req.maxActive >= 0) || !Number.isFinite(req.rpm)) return Promise.reject(new RangeError('limits must be >= 0'));
    if (req.creation && (req.maxActive > 0 || this.#queueCap > 0) && !req.reservation) {
      return Promise.reject(new TypeError('a creation under a queue or active cap needs a reservation'));
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ req, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        while (this.#pending.length > 0) {
          const batch = this.#pending.splice(0, this.#maxBatch);
          this.checkMany(batch.map((p) => p.req)).then(
            (verdicts) => batch.forEach((p, i) => p.resolve(verdicts[i]!)),
            (err: unknown) => batch.forEach((p) => p.reject(err)),
          );
        }
      });
    });
  }

  /** Judges `reqs` in this order in one script call. */
  async checkMany(reqs: readonly LimitRequest[]): Promise<LimitVerdict[]> {
    if (reqs.length === 0) return [];
    // Each API key (with its limits) once per call: most batches are a few keys' many requests.
    const keys: string[] = [...this.#queueKeys];
    const limits: Array<string | number> = [];
    const tail: Array<string | number> = [];
    const entries = new Map<string, number>();
    for (const r of reqs) {
      const id = `${r.keyId}\n${r.rpm}\n${r.maxActive}`;
      let e = entries.get(id);
      if (e === undefined) {
        e = entries.size + 1;
        entries.set(id, e);
        keys.push(`${this.#prefix}:ratelimit:rpm:${r.keyId}`, `${this.#prefix}:ratelimit:active:${r.keyId}`);
        limits.push(r.rpm, r.maxActive);
      }
      tail.push(e, r.creation ? 1 : 0, r.reservation ?? '');
    }
    const fn = (this.#redis as unknown as { rehyatCheckLimits: (n: number, ...args: Array<string | number>) => Promise<number[][]> }).rehyatCheckLimits;
    const rows = await fn.call(this.#redis, keys.length, ...keys, this.#queueCap, this.#ttlMs, entries.size, ...limits, ...tail);
    return reqs.map((r, i) => {
      const [verdict, remaining, retry, reset, count] = rows[i]!.map(Number) as [number, number, number, number, number];
      const out: LimitVerdict = { refusedBy: verdict === 1 ? 'rate' : verdict === 2 ? 'queue' : verdict === 3 ? 'active' : null };
      if (r.rpm > 0) {
        out.rate = {
          allowed: verdict !== 1,
          limit: r.rpm,
          remaining: verdict === 1 ? 0 : Math.min(r.rpm, Math.max(0, remaining)),
          retryAfterMs: Math.ceil(retry),
          resetAfterMs: Math.ceil(reset),
        };
      }
      if (verdict === 2) out.queued = count;
      if ((verdict === 3 || verdict === 0) && count >= 0) out.active = count;
      return out;
    });
  }

  /**
   * Ends a reservation allowed by `check`: it leaves the admitting set; with an active slot, the
   * created video takes the slot (what `ActiveVideoLimiter#confirm` does) or the slot is freed.
   * The settlements of one event-loop turn go out in one script call.
   */
  settle(s: Settlement): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#settling.push({ s, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (this.#settling.length > 1) return;
      setImmediate(() => {
        const items = this.#settling.splice(0);
        const keys: string[] = [this.#queueKeys[3]];
        const argv: Array<string | number> = [this.#queueCap > 0 ? 1 : 0];
        for (const { s: x } of items) {
          keys.push(`${this.#prefix}:ratelimit:active:${x.keyId}`);
          argv.push(x.reservation, x.videoId ?? '', x.active ? 1 : 0);
        }
        const fn = (this.#redis as unknown as { rehyatSettleLimits: (n: number, ...args: Array<string | number>) => Promise<number> }).rehyatSettleLimits;
        fn.call(this.#redis, keys.length, ...keys, ...argv).then(
          () => items.forEach((x) => x.done()),
          (err: unknown) => items.forEach((x) => x.done(err ?? new Error('settle failed'))),
        );
      });
    });
  }
}
