import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import { ActiveVideoLimiter, checkQueueAdmission, FairPriority, formatDuration, rateLimitHeaders, RequestRateLimiter } from '../src/index.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test-rl-${randomBytes(4).toString('hex')}`;
const redis = new Redis(REDIS_URL);

after(async () => {
  await deleteRedisPrefix(redis, prefix);
  redis.disconnect();
});

test('GCRA: a burst of the minute quota, then denial with Retry-After; other keys unaffected', async () => {
  const rl = new RequestRateLimiter({ redis, prefix });
  const seen = [];
  for (let i = 0; i < 5; i++) seen.push(await rl.hit('key_a', 5));
  assert.deepEqual(seen.map((d) => d.allowed), [true, true, true, true, true]);
  assert.deepEqual(seen.map((d) => d.remaining), [4, 3, 2, 1, 0]);
  const denied = await rl.hit('key_a', 5);
  assert.equal(denied.allowed, false);
  assert.equal(denied.remaining, 0);
  assert.ok(denied.retryAfterMs > 0 && denied.retryAfterMs <= 12_000, String(denied.retryAfterMs));
  assert.ok(denied.resetAfterMs > 48_000 && denied.resetAfterMs <= 60_000, String(denied.resetAfterMs));
  const other = await rl.hit('key_b', 5);
  assert.equal(other.allowed, true);
  await rl.reset('key_a');
  assert.equal((await rl.hit('key_a', 5)).allowed, true);
});

test('GCRA holds across limiter instances on separate connections (several API replicas)', async () => {
  const r2 = new Redis(REDIS_URL);
  try {
    const a = new RequestRateLimiter({ redis, prefix });
    const b = new RequestRateLimiter({ redis: r2, prefix });
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).hit('key_shared', 10)));
    assert.equal(results.filter((d) => d.allowed).length, 10);
  } finally {
    r2.disconnect();
  }
});

test('headers: OpenAI names and Go-style durations; retry-after on denial only', () => {
  assert.equal(formatDuration(20), '20ms');
  assert.equal(formatDuration(1000), '1s');
  assert.equal(formatDuration(360_000), '6m0s');
  assert.equal(formatDuration(3_723_000), '1h2m3s');
  const ok = rateLimitHeaders({ allowed: true, limit: 60, remaining: 59, retryAfterMs: 0, resetAfterMs: 1000 });
  assert.deepEqual(ok, { 'x-ratelimit-limit-requests': '60', 'x-ratelimit-remaining-requests': '59', 'x-ratelimit-reset-requests': '1s' });
  const no = rateLimitHeaders({ allowed: false, limit: 60, remaining: 0, retryAfterMs: 1500, resetAfterMs: 60_000 });
  assert.equal(no['retry-after'], '2');
  assert.equal(no['retry-after-ms'], '1500');
});

test('active videos: cap, idempotent acquire, release, prune', async () => {
  const av = new ActiveVideoLimiter({ redis, prefix });
  assert.deepEqual(await av.acquire('k', 'v1', 2), { allowed: true, limit: 2, active: 1 });
  assert.deepEqual(await av.acquire('k', 'v1', 2), { allowed: true, limit: 2, active: 1 });
  assert.equal((await av.acquire('k', 'v2', 2)).allowed, true);
  assert.deepEqual(await av.acquire('k', 'v3', 2), { allowed: false, limit: 2, active: 2 });
  await av.release('k', 'v1');
  assert.equal((await av.acquire('k', 'v3', 2)).allowed, true);
  assert.equal(await av.prune('k', async (ids) => ids.map((id) => id !== 'v2')), 1);
  assert.deepEqual(await av.members('k'), ['v3']);
  assert.equal((await av.acquire('k', 'req:1', 2)).allowed, true);
  await av.confirm('k', 'req:1', 'v9');
  assert.deepEqual((await av.members('k')).sort(), ['v3', 'v9']);
  const racing = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((v) => av.acquire('k2', v, 3)));
  assert.equal(racing.filter((d) => d.allowed).length, 3);
});

test('global admission: refuses at the cap of waiting + prioritized + delayed jobs', async () => {
  const q = new Queue('adm', { connection: redis, prefix });
  await q.add('j', {});
  await q.add('j', {}, { priority: 3 });
  await q.add('j', {}, { delay: 60_000 });
  assert.deepEqual(await checkQueueAdmission(q, 3), { allowed: false, queued: 3, cap: 3 });
  assert.equal((await checkQueueAdmission(q, 4)).allowed, true);
  await q.obliterate({ force: true });
  await q.close();
});

test('fair priorities interleave a late key with a flooding key and keep each key in order', async () => {
  const name = 'fair';
  const q = new Queue(name, { connection: redis, prefix });
  const fair = new FairPriority({ redis, prefix, queueName: name });
  for (let i = 1; i <= 6; i++) await q.add('j', { k: 'A', i }, { priority: await fair.assign('A') });
  for (let i = 1; i <= 3; i++) await q.add('j', { k: 'B', i }, { priority: await fair.assign('B') });
  const order: string[] = [];
  const wconn = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const w = new Worker(
    name,
    async (job) => {
      order.push(`${job.data.k}${job.data.i}`);
    },
    { connection: wconn, prefix, concurrency: 1 },
  );
  while (order.length < 9) await new Promise((r) => setTimeout(r, 20));
  await w.close();
  wconn.disconnect();
  assert.deepEqual(order, ['A1', 'B1', 'A2', 'B2', 'A3', 'B3', 'A4', 'A5', 'A6']);
  // Drained: tags start again from 1.
  assert.equal(await fair.assign('A'), 1);
  await q.obliterate({ force: true });
  await q.close();
});

test('assignMany gives what assign-then-add one by one gives, priorities and queue positions', async () => {
  const owners = ['A', 'A', 'B', 'A', 'C', 'B', 'A'];
  const run = async (name: string, batch: boolean) => {
    const q = new Queue(name, { connection: redis, prefix });
    const fair = new FairPriority({ redis, prefix, queueName: name });
    await q.add('plain', {}); // one job on the wait list: everything prioritized runs after it
    for (const o of ['A', 'A', 'B']) await q.add('j', { o }, { priority: await fair.assign(o) });
    const got: Array<{ priority: number; position: number }> = [];
    if (batch) {
      const assigned = await fair.assignMany(owners);
      for (const [i, a] of assigned.entries()) await q.add('j', { o: owners[i] }, { priority: a.priority });
      got.push(...assigned);
    } else {
      for (const o of owners) {
        const priority = await fair.assign(o);
        const job = await q.add('j', { o }, { priority });
        const rank = await redis.zrank(`${prefix}:${name}:prioritized`, job.id!);
        got.push({ priority, position: (await redis.llen(`${prefix}:${name}:wait`)) + rank! });
      }
    }
    await q.obliterate({ force: true });
    await q.close();
    return got;
  };
  const one = await run('fair-one', false);
  assert.deepEqual(await run('fair-many', true), one);
  assert.deepEqual(one.map((x) => x.priority), [3, 4, 2, 5, 1, 3, 6]);
  assert.deepEqual(await new FairPriority({ redis, prefix, queueName: 'fair-empty' }).assignMany([]), []);
});
