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
 * The script assigns a batch of jobs in one round trip (one job is a batch of one), also
 * counting for each job the jobs already in Redis that run before it: the wait list (served
 * first) and the prioritized jobs of a priority up to its own (FIFO within one priority). The
 * batch's own earlier jobs are not in Redis yet; the caller adds those (`assignMany` does).
 *
 * KEYS[1] = prioritized zset, KEYS[2] = hash of last tags, KEYS[3] = wait list;
 * ARGV[1] = max, ARGV[2..] = owners in batch order. Returns {tag1, ahead1, tag2, ahead2, ...}.
 */
const ASSIGN_MANY_LUA = `
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local v = 1
if head[2] == nil then
  redis.call('DEL', KEYS[2])
else
  v = math.floor(tonumber(head[2]) / 4294967296)
  if v < 1 then v = 1 end
end
local cap = tonumber(ARGV[1])
local waiting = redis.call('LLEN', KEYS[3])
local last = {}
local out = {}
for i = 2, #ARGV do
  local owner = ARGV[i]
  local l = last[owner]
  if l == nil then l = tonumber(redis.call('HGET', KEYS[2], owner) or '0') end
  local tag = math.max(v, l + 1)
  if tag > cap then tag = cap end
  last[owner] = tag
  out[#out + 1] = tag
  out[#out + 1] = waiting + redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. string.format('%.0f', (tag + 1) * 4294967296))
end
for owner, tag in pairs(last) do redis.call('HSET', KEYS[2], owner, tag) end
return out
`;

/** A job's priority and its place in line (0 = next to run). */
export interface FairAssignment {
  priority: number;
  /** Jobs that run before it (wait list, prioritized jobs of priority <= its own, earlier jobs of the batch). */
  position: number;
}

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
  private readonly waitKey: string;

  constructor(opts: FairPriorityOptions) {
    this.redis = opts.redis;
    const prefix = opts.prefix ?? 'rehyat';
    this.prioritizedKey = `${prefix}:${opts.queueName}:prioritized`;
    this.lastKey = `${prefix}:ratelimit:fair:${opts.queueName}`;
    this.waitKey = `${prefix}:${opts.queueName}:wait`;
    if (typeof (this.redis as unknown as { rehyatFairAssignMany?: unknown }).rehyatFairAssignMany !== 'function') {
      this.redis.defineCommand('rehyatFairAssignMany', { numberOfKeys: 3, lua: ASSIGN_MANY_LUA });
    }
  }

  /**
   * Priorities for a batch of jobs about to be added in this order (one Lua call), each with its
   * queue position: what `assign` one by one, each followed by its add, would give.
   */
  async assignMany(ownerIds: readonly string[]): Promise<FairAssignment[]> {
    if (ownerIds.length === 0) return [];
    const fn = (this.redis as unknown as { rehyatFairAssignMany: (...args: Array<string | number>) => Promise<number[]> }).rehyatFairAssignMany;
    const r = await fn.call(this.redis, this.prioritizedKey, this.lastKey, this.waitKey, BULLMQ_MAX_PRIORITY, ...ownerIds);
    const out: FairAssignment[] = [];
    for (let i = 0; i < ownerIds.length; i++) {
      const priority = Number(r[2 * i]);
      // Earlier jobs of this batch run before this one when their priority is not higher.
      let position = Number(r[2 * i + 1]);
      for (let j = 0; j < i; j++) if (out[j]!.priority <= priority) position++;
      out.push({ priority, position });
    }
    return out;
  }

  /** The priority to pass to `queue.add(..., { priority })` for a job of `ownerId`. */
  async assign(ownerId: string): Promise<number> {
    return (await this.assignMany([ownerId]))[0]!.priority;
  }
}
