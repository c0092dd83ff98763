import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GENERATION_QUEUE } from '@rehyat/contracts';
import { startStack, type Stack } from './helpers.js';

/**
 * The limits of concurrent requests are judged together (one script call per event-loop turn):
 * in a burst mixing keys, each limit still refuses exactly the requests over it, with its
 * OpenAI-shaped error and Retry-After, and a refused request leaves no row, job, slot or
 * admission behind.
 */
let stack: Stack;
before(async () => {
  stack = await startStack({ env: { QUEUE_MAX_QUEUED: '8', WEBHOOK_WORKER_ENABLED: 'false' } });
});
after(async () => stack.close());

interface Answer {
  key: string;
  status: number;
  headers: Headers;
  body: { id?: string; error?: { code: string; type: string; message: string; param: unknown } };
}

async function create(key: string, secret: string, i: number): Promise<Answer> {
  const res = await fetch(`${stack.baseURL}/videos`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify({ prompt: `${key} ${i}`, seconds: '2', size: '256x160' }),
  });
  return { key, status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
}

async function until(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('condition not reached');
}

test('a burst mixing keys: rate, active cap and queue cap each refuse exactly the requests over them', async () => {
  const rate = await stack.client('rate');
  const capped = await stack.client('capped');
  const free = await stack.client('free');
  await stack.app.prisma.apiKey.update({ where: { id: rate.keyId }, data: { rateLimitRpm: 2 } });
  await stack.app.prisma.apiKey.update({ where: { id: capped.keyId }, data: { maxActiveVideos: 2 } });

  // Phase 1: 4 creations of each limited key at once, interleaved.
  const first = await Promise.all(
    Array.from({ length: 8 }, (_, i) => (i % 2 ? create('capped', capped.secret, i) : create('rate', rate.secret, i))),
  );
  const byKey = (answers: Answer[], key: string) => answers.filter((a) => a.key === key);
  const rateOk = byKey(first, 'rate').filter((a) => a.status === 200);
  const rateRefused = byKey(first, 'rate').filter((a) => a.status !== 200);
  assert.equal(rateOk.length, 2);
  assert.equal(rateRefused.length, 2);
  for (const a of rateRefused) {
    assert.equal(a.status, 429);
    assert.equal(a.body.error!.code, 'rate_limit_exceeded');
    assert.equal(a.body.error!.type, 'rate_limit_error');
    assert.equal(a.headers.get('x-ratelimit-limit-requests'), '2');
    assert.equal(a.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.ok(Number(a.headers.get('retry-after')) >= 1);
    assert.ok(Number(a.headers.get('retry-after-ms')) >= 1);
  }
  for (const a of rateOk) assert.equal(a.headers.get('x-ratelimit-limit-requests'), '2');
  const cappedOk = byKey(first, 'capped').filter((a) => a.status === 200);
  const cappedRefused = byKey(first, 'capped').filter((a) => a.status !== 200);
  assert.equal(cappedOk.length, 2);
  for (const a of cappedRefused) {
    assert.equal(a.status, 429);
    assert.equal(a.body.error!.code, 'too_many_active_videos');
    assert.equal(a.body.error!.type, 'rate_limit_error');
    assert.equal(a.headers.get('retry-after'), '10');
    assert.equal(a.headers.get('x-ratelimit-limit-requests'), null); // this key has no rate limit
  }
  assert.equal(cappedRefused.length, 2);

  // Phase 2: 4 jobs queued of 8; 6 creations at once from a key without limits: 4 fit.
  const second = await Promise.all(Array.from({ length: 6 }, (_, i) => create('free', free.secret, i)));
  const freeOk = second.filter((a) => a.status === 200);
  const full = second.filter((a) => a.status !== 200);
  assert.equal(freeOk.length, 4);
  for (const a of full) {
    assert.equal(a.status, 503);
    assert.equal(a.body.error!.code, 'queue_full');
    assert.equal(a.body.error!.type, 'server_error');
    assert.equal(a.headers.get('retry-after'), '30');
  }

  // Nothing left behind by a refusal: rows and jobs are exactly the created videos, the active
  // set holds the created videos only, and every admission was settled.
  const created = [...rateOk, ...cappedOk, ...freeOk].map((a) => a.body.id!).sort();
  const rows = await stack.app.prisma.video.findMany({ select: { id: true } });
  assert.deepEqual(rows.map((r) => r.id).sort(), created);
  const counts = await stack.app.generationQueue.getJobCounts('waiting', 'prioritized', 'delayed');
  assert.equal((counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.delayed ?? 0), 8);
  const admitting = stack.app.limits.checks.admittingKey(GENERATION_QUEUE);
  await until(async () => (await stack.redis.zcard(admitting)) === 0);
  await until(async () => (await stack.app.limits.active.members(capped.keyId)).every((m) => m.startsWith('video_')));
  assert.deepEqual((await stack.app.limits.active.members(capped.keyId)).sort(), cappedOk.map((a) => a.body.id!).sort());

  // Full queue: a key with room under its own cap gets queue_full; the rate key is still limited
  // on any route (the same GCRA state as a request judged alone).
  const more = await create('capped', capped.secret, 99);
  assert.equal(more.status, 503);
  assert.equal(more.body.error!.code, 'queue_full');
  const list = await fetch(`${stack.baseURL}/videos`, { headers: { authorization: `Bearer ${rate.secret}` } });
  assert.equal(list.status, 429);
  assert.equal(((await list.json()) as Answer['body']).error!.code, 'rate_limit_exceeded');
  assert.equal((await stack.app.prisma.video.count()), created.length);
});
