/**
 * The worker heartbeat against real Redis: the contract hash (field `state`, TTL
 * `HEARTBEAT_TTL_S`) and the worker registry (`Keyspace.workers()`, scored by the beat's time)
 * written together on every beat, and both removed by the stop function.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { HEARTBEAT_TTL_S, Keyspace, WorkerHeartbeat } from '@rehyat/contracts';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import { WorkerActivity, startHeartbeat } from '../src/heartbeat.js';
import { createLogger } from '../src/logger.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyspace = new Keyspace({ prefix: `test-heartbeat-${randomBytes(4).toString('hex')}` });
let redis: Redis;

before(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});
after(async () => {
  await deleteRedisPrefix(redis, keyspace.prefix);
  await redis.quit();
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function readBeat(workerId: string): Promise<{ state: WorkerHeartbeat; ttl: number; score: number | null } | null> {
  const key = keyspace.workerHeartbeat(workerId);
  const [raw, ttl, score] = await Promise.all([redis.hget(key, 'state'), redis.ttl(key), redis.zscore(keyspace.workers(), workerId)]);
  if (raw === null) return null;
  return { state: WorkerHeartbeat.parse(JSON.parse(raw)), ttl, score: score === null ? null : Number(score) };
}

test('each beat writes the hash with its TTL and scores the worker in the registry at the beat\'s time; stop removes both', async () => {
  const activity = new WorkerActivity();
  const start = (workerId: string) =>
    startHeartbeat({
      redis,
      keyspace,
      workerId,
      intervalMs: 50,
      activity,
      deviceInfo: async () => ({ device: 'cpu', memoryUsedBytes: null, memoryTotalBytes: null }),
      log: createLogger('silent'),
    });
  const stop = await start('gpu-0');
  const stopOther = await start('gpu-1');
  try {
    const first = await readBeat('gpu-0');
    assert.ok(first, 'written before startHeartbeat resolves');
    assert.equal(first.state.worker_id, 'gpu-0');
    assert.equal(first.state.current_video_id, null);
    assert.ok(first.ttl > 0 && first.ttl <= HEARTBEAT_TTL_S, `ttl ${first.ttl}`);
    assert.equal(first.score, Date.parse(first.state.updated_at), 'registry score = the beat\'s updated_at, in ms');

    activity.currentVideoId = 'video_0123456789abcdef0123456789abcdef';
    await until('a later beat', async () => {
      const b = await readBeat('gpu-0');
      return b !== null && b.state.current_video_id === activity.currentVideoId && b.state.updated_at !== first.state.updated_at;
    });
    const later = (await readBeat('gpu-0'))!;
    assert.equal(later.score, Date.parse(later.state.updated_at));
    assert.ok(later.score! > first.score!);
    assert.equal(later.state.started_at, first.state.started_at);
    assert.deepEqual((await redis.zrange(keyspace.workers(), 0, -1)).sort(), ['gpu-0', 'gpu-1']);
  } finally {
    await stop();
  }
  assert.equal(await redis.exists(keyspace.workerHeartbeat('gpu-0')), 0, 'hash deleted');
  assert.equal(await redis.zscore(keyspace.workers(), 'gpu-0'), null, 'registry entry removed');
  await new Promise((r) => setTimeout(r, 200)); // four intervals: a stopped heartbeat writes nothing more
  assert.equal(await redis.exists(keyspace.workerHeartbeat('gpu-0')), 0);
  assert.deepEqual(await redis.zrange(keyspace.workers(), 0, -1), ['gpu-1'], 'the other worker is untouched');
  await stopOther();
  assert.equal(await redis.exists(keyspace.workers()), 0);
});
