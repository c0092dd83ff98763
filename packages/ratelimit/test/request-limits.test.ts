import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import { ActiveVideoLimiter, RequestLimits, RequestRateLimiter, type LimitRequest } from '../src/index.js';

/** `RequestLimits` against real Redis: mixed batches judged exactly as the separate limiters would. */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test-rlb-${randomBytes(4).toString('hex')}`;
const redis = new Redis(REDIS_URL);
const QUEUE = 'video-generation';

// Some tests use their own namespace beside `prefix` (`-q`, `-ttl`, `-conc`): each is cleaned under its own `prefix:`.
after(async () => {
  for (const p of [prefix, `${prefix}-q`, `${prefix}-ttl`, `${prefix}-conc`]) await deleteRedisPrefix(redis, p);
  redis.disconnect();
});

let n = 0;
const res = () => `req:${Date.now()}:${++n}`;
const creation = (keyId: string, rpm: number, maxActive: number): LimitRequest => ({ keyId, rpm, creation: true, maxActive, reservation: res() });

test('rate limit in a batch: the same verdicts, headers and GCRA state as one hit after the other', async () => {
  const limits = new RequestLimits({ redis, prefix, queueName: QUEUE, queueCap: 0 });
  const rl = new RequestRateLimiter({ redis, prefix });
  const batch = await limits.checkMany([
    ...Array.from({ length: 5 }, () => ({ keyId: 'key_r', rpm: 3, creation: false, maxActive: 0 })),
    { keyId: 'key_free', rpm: 0, creation: false, maxActive: 0 },
    { keyId: 'key_other', rpm: 3, creation: false, maxActive: 0 },
  ]);
  assert.deepEqual(batch.map((v) => v.refusedBy), [null, null, null, 'rate', 'rate', null, null]);
  assert.deepEqual(batch.slice(0, 5).map((v) => v.rate!.remaining), [2, 1, 0, 0, 0]);
  for (const v of batch.slice(3, 5)) {
    assert.equal(v.rate!.allowed, false);
    assert.ok(v.rate!.retryAfterMs > 0 && v.rate!.retryAfterMs <= 20_000, String(v.rate!.retryAfterMs));
    assert.ok(v.rate!.resetAfterMs > 40_000 && v.rate!.resetAfterMs <= 60_000, String(v.rate!.resetAfterMs));
  }
  assert.equal(batch[5]!.rate, undefined);
  assert.equal(batch[6]!.rate!.remaining, 2);
  // Same key as RequestRateLimiter: it sees the batch's three hits (and the refusals took none).
  const next = await rl.hit('key_r', 3);
  assert.equal(next.allowed, false);
  const seq = [];
  for (let i = 0; i < 5; i++) seq.push(await rl.hit('key_seq', 3));
  assert.deepEqual(seq.map((d) => d.remaining), [2, 1, 0, 0, 0]);
});

test('active cap in a mixed batch: allowed ones take a slot each, refused ones nothing; settle confirms and frees', async () => {
  const limits = new RequestLimits({ redis, prefix, queueName: QUEUE, queueCap: 0 });
  const active = new ActiveVideoLimiter({ redis, prefix });
  await active.acquire('key_a', 'video_old', 3);
  const reqs = [creation('key_a', 0, 3), creation('key_b', 0, 1), creation('key_a', 0, 3), creation('key_a', 0, 3), creation('key_b', 0, 1)];
  const v = await limits.checkMany(reqs);
  assert.deepEqual(v.map((x) => x.refusedBy), [null, null, null, 'active', 'active']);
  assert.deepEqual(v.map((x) => x.active), [2, 1, 3, 3, 1]);
  assert.deepEqual(new Set(await active.members('key_a')), new Set(['video_old', reqs[0]!.reservation, reqs[2]!.reservation]));
  assert.deepEqual(await active.members('key_b'), [reqs[1]!.reservation]);
  // Same reservation again (a retry): idempotent.
  assert.equal((await limits.checkMany([reqs[0]!]))[0]!.refusedBy, null);
  await Promise.all([
    limits.settle({ keyId: 'key_a', reservation: reqs[0]!.reservation!, videoId: 'video_new', active: true }),
    limits.settle({ keyId: 'key_a', reservation: reqs[2]!.reservation!, videoId: null, active: true }),
    limits.settle({ keyId: 'key_b', reservation: reqs[1]!.reservation!, videoId: 'video_b', active: true }),
  ]);
  assert.deepEqual(new Set(await active.members('key_a')), new Set(['video_old', 'video_new']));
  assert.deepEqual(await active.members('key_b'), ['video_b']);
});

test('queue cap in a mixed batch: counts queued jobs and unsettled admissions; refusals by each limit leave nothing', async () => {
  const qprefix = `${prefix}-q`;
  const queue = new Queue(QUEUE, { connection: redis, prefix: qprefix });
  try {
    await queue.add('generate', { x: 1 });
    await queue.add('generate', { x: 2 }, { priority: 5 });
    await queue.add('generate', { x: 3 }, { delay: 60_000 });
    const limits = new RequestLimits({ redis, prefix: qprefix, queueName: QUEUE, queueCap: 6 });
    const active = new ActiveVideoLimiter({ redis, prefix: qprefix });
    const reqs: LimitRequest[] = [
      creation('key_q', 0, 0), // 4th queued
      creation('key_rate', 1, 0), // 5th
      creation('key_rate', 1, 0), // refused by the rate: takes no queue place
      creation('key_cap', 0, 1), // 6th
      creation('key_cap', 0, 1), // the queue is full before the active cap is asked
      { keyId: 'key_q', rpm: 0, creation: false, maxActive: 0 }, // not a creation: no cap applies
      creation('key_q', 0, 0), // queue full
    ];
    const v = await limits.checkMany(reqs);
    assert.deepEqual(v.map((x) => x.refusedBy), [null, null, 'rate', null, 'queue', null, 'queue']);
    assert.equal(v[4]!.queued, 6);
    assert.equal(v[6]!.queued, 6);
    const admitting = await redis.zrange(limits.admittingKey(QUEUE), 0, -1);
    assert.deepEqual(new Set(admitting), new Set([reqs[0]!.reservation, reqs[1]!.reservation, reqs[3]!.reservation]));
    assert.deepEqual(await active.members('key_cap'), [reqs[3]!.reservation]);

    // A batch refused by the active cap after the queue would have admitted it: no admission left behind.
    await limits.settle({ keyId: 'key_q', reservation: reqs[0]!.reservation!, videoId: null, active: false });
    const capped = creation('key_cap', 0, 1);
    assert.equal((await limits.checkMany([capped]))[0]!.refusedBy, 'active');
    assert.equal(await redis.zscore(limits.admittingKey(QUEUE), capped.reservation!), null);
    // The freed admission lets exactly one more in.
    const two = await limits.checkMany([creation('key_q', 0, 0), creation('key_q', 0, 0)]);
    assert.deepEqual(two.map((x) => x.refusedBy), [null, 'queue']);
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
});

test('an admission that was never settled stops counting after its TTL', async () => {
  const qprefix = `${prefix}-ttl`;
  const limits = new RequestLimits({ redis, prefix: qprefix, queueName: QUEUE, queueCap: 1, admissionTtlMs: 1000 });
  assert.equal((await limits.checkMany([creation('k', 0, 0)]))[0]!.refusedBy, null);
  assert.equal((await limits.checkMany([creation('k', 0, 0)]))[0]!.refusedBy, 'queue');
  await new Promise((r) => setTimeout(r, 1300));
  assert.equal((await limits.checkMany([creation('k', 0, 0)]))[0]!.refusedBy, null);
});

test('concurrent batches on separate connections (several API instances) never oversubscribe a cap', async () => {
  const qprefix = `${prefix}-conc`;
  const r2 = new Redis(REDIS_URL);
  try {
    const a = new RequestLimits({ redis, prefix: qprefix, queueName: QUEUE, queueCap: 7 });
    const b = new RequestLimits({ redis: r2, prefix: qprefix, queueName: QUEUE, queueCap: 7 });
    // 60 requests through `check` (batched per event-loop turn), split over two instances and
    // several turns: key_x may have 5 active, the queue takes 7, key_x may make 20 requests a minute.
    const verdicts = [];
    for (let turn = 0; turn < 3; turn++) {
      verdicts.push(
        ...(await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).check(i % 3 ? creation('key_x', 20, 5) : creation('key_y', 0, 0))),
        )),
      );
    }
    const allowed = verdicts.filter((v) => v.refusedBy === null);
    assert.equal(allowed.length, 7);
    const active = new ActiveVideoLimiter({ redis, prefix: qprefix });
    assert.ok((await active.count('key_x')) <= 5);
    assert.equal(await redis.zcard(a.admittingKey(QUEUE)), 7);
    // 39 requests of key_x against a burst of 20 (one more if the test took over 3 s).
    const rateRefused = verdicts.filter((v) => v.refusedBy === 'rate').length;
    assert.ok(rateRefused === 19 || rateRefused === 18, String(rateRefused));
  } finally {
    r2.disconnect();
  }
});
