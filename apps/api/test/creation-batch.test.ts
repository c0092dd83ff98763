import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import { GENERATION_QUEUE, GenerateJobPayload, JOBS, parseVideoEvent } from '@rehyat/contracts';
import { DATABASE_FAILED_MESSAGE, QUEUE_FAILED_MESSAGE } from '../src/services/creation-batcher.js';
import { startStack, type Stack } from './helpers.js';

/**
 * Video creation is batched (one INSERT and one Redis MULTI for the creations that arrive
 * together): concurrent creations must each end up in Postgres and in the queue with their own
 * event and position, and a failed batch must leave nothing behind.
 */
let stack: Stack;
let queue: Queue;
let secret: string;
let keyId: string;

before(async () => {
  // No webhook worker: a test below breaks the all-videos feed on purpose.
  stack = await startStack({ env: { WEBHOOK_WORKER_ENABLED: 'false' } });
  ({ secret, keyId } = await stack.client('batch'));
  queue = new Queue(GENERATION_QUEUE, { connection: stack.redis, prefix: stack.config.REDIS_PREFIX });
});
after(async () => {
  await queue.close();
  await stack.close();
});

interface Created {
  status: number;
  body: { id?: string; queue_position?: number | null; status?: string; error?: { code: string; message: string } };
}

/** `n` creations sent at once, each on its own connection. */
async function createMany(n: number, opts: { idempotencyKey?: (i: number) => string } = {}): Promise<Created[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await fetch(`${stack.baseURL}/videos`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${secret}`,
          'content-type': 'application/json',
          connection: 'close',
          ...(opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey(i) } : {}),
        },
        body: JSON.stringify({ prompt: `batch ${i}`, seconds: '2', size: '256x160' }),
      });
      return { status: res.status, body: (await res.json()) as Created['body'] };
    }),
  );
}

async function batchCount(): Promise<number> {
  const text = await (await stack.app.inject({ url: '/metrics' })).body;
  return Number(/^rehyat_api_video_creation_batch_size_count (\S+)$/m.exec(text)?.[1] ?? 0);
}

async function queuedEvents(id: string) {
  const entries = await stack.redis.xrange(stack.app.keyspace.videoEvents(id as never), '-', '+');
  return entries.map(([, fields]) => parseVideoEvent(fields[fields.indexOf('payload') + 1]!));
}

describe('batched creation', () => {
  test('concurrent creations: each stored, queued with its payload and event, positions 0..n-1', async () => {
    await queue.obliterate({ force: true });
    const batches0 = await batchCount();
    const n = 30;
    const created = await createMany(n);
    for (const c of created) assert.equal(c.status, 200, JSON.stringify(c.body));
    const batches = (await batchCount()) - batches0;
    assert.ok(batches >= 1 && batches < n, `${n} creations went out in ${batches} batches`);

    const ids = created.map((c) => c.body.id!);
    const rows = await stack.app.prisma.video.findMany({ where: { id: { in: ids } } });
    assert.equal(rows.length, n);
    // One key, an empty queue: the jobs run in creation order, 0..n-1.
    assert.deepEqual(created.map((c) => c.body.queue_position).sort((a, b) => a! - b!), Array.from({ length: n }, (_, i) => i));
    for (const c of created) {
      const id = c.body.id!;
      const row = rows.find((r) => r.id === id)!;
      assert.equal(row.status, 'queued');
      assert.equal(row.prompt, (GenerateJobPayload.parse((await queue.getJob(id))!.data)).prompt);
      const job = (await queue.getJob(id))!;
      assert.equal(job.name, JOBS.generate.name);
      assert.equal(job.opts.attempts, JOBS.generate.attempts);
      assert.equal(job.data.owner_id, keyId);
      assert.ok((job.opts.priority ?? 0) > 0, 'FAIR_QUEUE: added with a priority');
      const events = await queuedEvents(id);
      assert.deepEqual(events.map((e) => e.type), ['video.queued']);
      assert.deepEqual(events[0]!.data, { queue_position: c.body.queue_position });
      // The answer is what a read gives (but for the signed URL's expiry, which may have moved on).
      const read = await fetch(`${stack.baseURL}/videos/${id}`, { headers: { authorization: `Bearer ${secret}` } });
      const { playlist_url: readUrl, ...readRest } = (await read.json()) as Record<string, unknown>;
      const { playlist_url: url, ...rest } = c.body as Record<string, unknown>;
      assert.deepEqual(readRest, rest);
      assert.equal(String(readUrl).split('?')[0], String(url).split('?')[0]);
    }
  });

  test('the INSERT fails: every creation of the batch is 503, nothing stored, nothing queued, no event', async () => {
    await queue.obliterate({ force: true });
    await stack.app.pg.query(`CREATE FUNCTION refuse_video_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: inserts refused'; END $$`);
    await stack.app.pg.query('CREATE TRIGGER refuse_video_insert BEFORE INSERT ON videos FOR EACH STATEMENT EXECUTE FUNCTION refuse_video_insert()');
    const before = await stack.app.prisma.video.count();
    const feedBefore = await stack.redis.xlen(stack.app.keyspace.videoEventFeed());
    try {
      const created = await createMany(12);
      for (const c of created) {
        assert.equal(c.status, 503);
        assert.equal(c.body.error!.code, 'service_unavailable');
        assert.equal(c.body.error!.message, DATABASE_FAILED_MESSAGE);
      }
    } finally {
      await stack.app.pg.query('DROP TRIGGER refuse_video_insert ON videos');
      await stack.app.pg.query('DROP FUNCTION refuse_video_insert()');
    }
    assert.equal(await stack.app.prisma.video.count(), before);
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    assert.deepEqual(Object.values(counts), [0, 0, 0, 0]);
    assert.equal(await stack.redis.xlen(stack.app.keyspace.videoEventFeed()), feedBefore);
    // And the next creation works.
    const [ok] = await createMany(1);
    assert.equal(ok!.status, 200);
  });

  test('the queue step fails: every creation is 503, its row (and idempotency record) deleted, no job left', async () => {
    await queue.obliterate({ force: true });
    const feed = stack.app.keyspace.videoEventFeed();
    const before = await stack.app.prisma.video.count();
    // XADD to the all-videos feed now fails (WRONGTYPE) inside the MULTI; the jobs' adds succeed.
    await stack.redis.del(feed);
    await stack.redis.set(feed, 'not a stream');
    try {
      const created = await createMany(8, { idempotencyKey: (i) => `queue-fails-${i}` });
      for (const c of created) {
        assert.equal(c.status, 503, JSON.stringify(c.body));
        assert.equal(c.body.error!.code, 'service_unavailable');
        assert.equal(c.body.error!.message, QUEUE_FAILED_MESSAGE);
      }
    } finally {
      await stack.redis.del(feed);
    }
    assert.equal(await stack.app.prisma.video.count(), before);
    assert.equal(await stack.app.prisma.idempotencyRecord.count({ where: { key: { startsWith: 'queue-fails-' } } }), 0);
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
    assert.deepEqual(Object.values(counts), [0, 0, 0, 0]);
    // The keys were forgotten with the rows: the same key now creates a video.
    const [again] = await createMany(1, { idempotencyKey: () => 'queue-fails-0' });
    assert.equal(again!.status, 200);
  });

  test('a prompt with a NUL character is refused (400) before it can reach a batch', async () => {
    const res = await fetch(`${stack.baseURL}/videos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a\u0000b' }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; param: string } };
    assert.deepEqual([body.error.code, body.error.param], ['invalid_value', 'prompt']);
  });
});

describe('batched creation without fair queuing', () => {
  test('FIFO: positions from the wait list, no priority', async () => {
    const fifo = await startStack({ env: { WEBHOOK_WORKER_ENABLED: 'false', FAIR_QUEUE: 'false' } });
    const q = new Queue(GENERATION_QUEUE, { connection: fifo.redis, prefix: fifo.config.REDIS_PREFIX });
    try {
      const { secret: s } = await fifo.client('fifo');
      await q.add('other', {}); // one job already waiting
      const created = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const res = await fetch(`${fifo.baseURL}/videos`, {
            method: 'POST',
            headers: { authorization: `Bearer ${s}`, 'content-type': 'application/json', connection: 'close' },
            body: JSON.stringify({ prompt: `fifo ${i}` }),
          });
          return (await res.json()) as { id: string; queue_position: number };
        }),
      );
      assert.deepEqual(created.map((c) => c.queue_position).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i + 1));
      for (const c of created) {
        const job = (await q.getJob(c.id))!;
        assert.equal(job.opts.priority ?? 0, 0);
        const read = await fetch(`${fifo.baseURL}/videos/${c.id}`, { headers: { authorization: `Bearer ${s}` } });
        assert.equal(((await read.json()) as { queue_position: number }).queue_position, c.queue_position);
      }
    } finally {
      await q.close();
      await fifo.close();
    }
  });
});
