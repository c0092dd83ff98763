import type { Redis } from 'ioredis';

/** Largest priority BullMQ accepts. */
export const BULLMQ_MAX_PRIORITY = 2_097_152;

/**
 * Start-time fair queuing on top of BullMQ priorities (lower runs first; FIFO within one
 * priority). Every job gets a tag `max(V, last[key] + 1)`, where `V` is the priority of the job
 * at the head of the queue (the current virtual time) and `last[key]` the tag of the key's
 * previous job. A key with many queued jobs holds the tags V, V+1, V+2, ...; a key that arrives
 * later starts at V, so jobs interleave round-robin between keys instead of first-come order,
 * and each key's own jobs stay in order.
 *
 * `V` is read from the queue's `prioritized` sorted set inside the script (BullMQ 6 scores it
 * `priority * 2^32 + counter`). When that set is empty every `last` is forgotten, so tags start
 * again from 1: they only grow while the queue never drains, and are capped at BullMQ's maximum
 * (where ordering degrades to FIFO).
 *
 * KEYS[1] = the queue's prioritized zset, KEYS[2] = hash of last tags; ARGV[1] = owner, ARGV[2] = max.
 */
const ASSIGN_LUA = `
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local v = 1
if head[2] == nil then
  redis.call('DEL', KEYS[2])
else
  v = math.floor(tonumber(head[2]) / 4294967296)
  if v < 1 then v = 1 end
end
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local tag = math.max(v, last + 1)
local cap = tonumber(ARGV[2])
if tag > cap then tag = cap end
redis.call('HSET', KEYS[2], ARGV[1], tag)
return tag
`;

export interface FairPriorityOptions {
  redis: Redis;
  /** BullMQ prefix of the queue (the keyspace prefix). @defaultValue `rehyat` */
  prefix?: string;
  /** Queue name, e.g. `video-generation`. */
  queueName: string;
}

/** Hands out BullMQ priorities for a queue so that keys share it fairly. */
export class FairPriority {
  private readonly redis: Redis;
  private readonly prioritizedKey: string;
  private readonly lastKey: string;

  constructor(opts: FairPriorityOptions) {
    this.redis = opts.redis;
    const prefix = opts.prefix ?? 'rehyat';
    this.prioritizedKey = `${prefix}:${opts.queueName}:prioritized`;
    this.lastKey = `${prefix}:ratelimit:fair:${opts.queueName}`;
    if (typeof (this.redis as unknown as { rehyatFairAssign?: unknown }).rehyatFairAssign !== 'function') {
      this.redis.defineCommand('rehyatFairAssign', { numberOfKeys: 2, lua: ASSIGN_LUA });
    }
  }

  /** The priority to pass to `queue.add(..., { priority })` for a job of `ownerId`. */
  async assign(ownerId: string): Promise<number> {
    const fn = (this.redis as unknown as { rehyatFairAssign: (a: string, b: string, o: string, m: number) => Promise<number> }).rehyatFairAssign;
    return Number(await fn.call(this.redis, this.prioritizedKey, this.lastKey, ownerId, BULLMQ_MAX_PRIORITY));
  }
}
