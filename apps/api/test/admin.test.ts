/**
 * The admin API (`/v1/admin/*`) and the dashboard page (`/admin`) against real Redis, Postgres and
 * BullMQ: auth, queue counts of real jobs, pause/resume seen by a real BullMQ worker, workers from
 * heartbeats written the way apps/worker writes them, every owner's videos with pagination, the
 * retry of a failed video and each of its refusals.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Script } from 'node:vm';
import { after, before, describe, test } from 'node:test';
import { Job, Queue, QueueEvents, UnrecoverableError, Worker, type Processor } from 'bullmq';
import { Redis } from 'ioredis';
import type OpenAI from 'openai';
import {
  GENERATION_QUEUE,
  GenerateJobPayload,
  HEARTBEAT_TTL_S,
  JOBS,
  Keyspace,
  WORKER_REGISTRY_PRUNE_AFTER_S,
  WorkerHeartbeat,
  type VideoId,
} from '@rehyat/contracts';
import { publishVideoEvent, readVideoEvents } from '@rehyat/events';
import { WEBHOOK_QUEUE } from '@rehyat/webhooks';
import { REDIS_URL, startStack, type Stack } from './helpers.js';
import { openSse } from './sse-client.js';

let stack: Stack;
let keyspace: Keyspace;
let queue: Queue;
let adminSecret: string;
let alice: { client: OpenAI; keyId: string; secret: string };
let bob: { client: OpenAI; keyId: string; secret: string };

before(async () => {
  stack = await startStack();
  keyspace = new Keyspace({ prefix: stack.config.REDIS_PREFIX });
  queue = new Queue(GENERATION_QUEUE, { connection: stack.redis, prefix: stack.config.REDIS_PREFIX });
  adminSecret = (await stack.keys.create({ name: 'ops', role: 'admin' })).secret;
  alice = await stack.client('alice');
  bob = await stack.client('bob');
});
after(async () => {
  await queue.close();
  await stack.close();
});

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function call(method: 'GET' | 'POST', url: string, secret: string | null = adminSecret) {
  const res = await stack.app.inject({ method, url, headers: secret === null ? {} : { authorization: `Bearer ${secret}` } });
  return { status: res.statusCode, body: res.json() as Record<string, unknown>, headers: res.headers };
}

function assertError(res: { status: number; body: unknown }, status: number, code: string, param?: string): ErrorBody['error'] {
  assert.equal(res.status, status, JSON.stringify(res.body));
  const { error } = res.body as ErrorBody;
  assert.equal(error.code, code);
  assert.equal(typeof error.message, 'string');
  assert.ok('type' in error && 'param' in error, 'OpenAI\'s error shape');
  if (param !== undefined) assert.equal(error.param, param);
  return error;
}

/** A BullMQ worker on the generation queue (own connection, as a worker process has). */
function startWorker(processor: Processor): { worker: Worker; connection: Redis } {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const worker = new Worker(GENERATION_QUEUE, processor, { connection, prefix: stack.config.REDIS_PREFIX, concurrency: 4 });
  return { worker, connection };
}
async function stopWorker(w: { worker: Worker; connection: Redis }): Promise<void> {
  await w.worker.close();
  w.connection.disconnect();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

type Counts = Record<'waiting' | 'active' | 'delayed' | 'prioritized' | 'completed' | 'failed' | 'paused', number>;
interface AdminQueue {
  object: 'queue';
  name: string;
  is_paused: boolean;
  counts: Counts;
}
async function generationQueueState(): Promise<AdminQueue> {
  const res = await call('GET', '/v1/admin/queues');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const data = res.body.data as AdminQueue[];
  assert.deepEqual(data.map((q) => q.name), [GENERATION_QUEUE, WEBHOOK_QUEUE]);
  return data[0]!;
}

const ROUTES: Array<['GET' | 'POST', string]> = [
  ['GET', '/v1/admin/queues'],
  ['GET', '/v1/admin/workers'],
  ['GET', '/v1/admin/videos'],
  ['POST', `/v1/admin/queues/${GENERATION_QUEUE}/pause`],
  ['POST', `/v1/admin/queues/${GENERATION_QUEUE}/resume`],
  ['POST', '/v1/admin/jobs/video_00000000000000000000000000000000/retry'],
];

describe('auth', () => {
  test('no key: 401 missing_api_key; a user key: 403 permission_denied; an unknown key: 401', async () => {
    for (const [method, url] of ROUTES) {
      assertError(await call(method, url, null), 401, 'missing_api_key');
      const denied = assertError(await call(method, url, alice.secret), 403, 'permission_denied');
      assert.match(denied.message, /admin API key/);
      assert.equal(denied.type, 'permission_error');
      assertError(await call(method, url, `rh_${'x'.repeat(40)}`), 401, 'invalid_api_key');
    }
  });

  test('a user key is refused before its request is validated (403, not 400)', async () => {
    assertError(await call('GET', '/v1/admin/videos?limit=0', alice.secret), 403, 'permission_denied');
    assertError(await call('POST', '/v1/admin/queues/nope/pause', alice.secret), 403, 'permission_denied');
  });

  test('an admin key is let in; a revoked admin key is not', async () => {
    assert.equal((await call('GET', '/v1/admin/queues')).status, 200);
    const other = await stack.keys.create({ name: 'ops-2', role: 'admin' });
    assert.equal((await call('GET', '/v1/admin/workers', other.secret)).status, 200);
    await stack.keys.revoke(other.id);
    assertError(await call('GET', '/v1/admin/workers', other.secret), 401, 'invalid_api_key');
  });
});

describe('queues', () => {
  test('counts reflect real jobs in every state', async () => {
    // active / completed / failed: a real BullMQ worker on the generation queue.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = startWorker(async (job) => {
      if (job.name === 'fail') throw new UnrecoverableError('on purpose');
      if (job.name === 'hold') await gate;
    });
    try {
      await queue.add('complete', {}, { jobId: 'count-complete' });
      await queue.add('fail', {}, { jobId: 'count-fail', attempts: 1 });
      await queue.add('hold', {}, { jobId: 'count-hold' });
      await until('one job of each', async () => {
        const c = await queue.getJobCounts('active', 'completed', 'failed');
        return c.active === 1 && c.completed === 1 && c.failed === 1;
      });
      const q = await generationQueueState();
      assert.equal(q.is_paused, false);
      assert.deepEqual(q.counts, { waiting: 0, active: 1, delayed: 0, prioritized: 0, completed: 1, failed: 1, paused: 0 });
      release();
      await until('the held job to complete', async () => (await queue.getJobCounts('completed')).completed === 2);
    } finally {
      release();
      await stopWorker(w);
    }

    // waiting / prioritized: videos created through the API (fair ordering gives priorities); delayed: a job with a delay.
    await alice.client.videos.create({ prompt: 'counted one', model: 'rehyat-test' });
    await bob.client.videos.create({ prompt: 'counted two', model: 'rehyat-test' });
    await queue.add('later', {}, { jobId: 'count-delayed', delay: 60 * 60_000 });
    const q = await generationQueueState();
    const direct = await queue.getJobCounts('waiting', 'prioritized');
    assert.equal(q.counts.waiting + q.counts.prioritized, 2);
    assert.deepEqual([q.counts.waiting, q.counts.prioritized], [direct.waiting, direct.prioritized]);
    assert.deepEqual(
      { active: q.counts.active, delayed: q.counts.delayed, completed: q.counts.completed, failed: q.counts.failed, paused: q.counts.paused },
      { active: 0, delayed: 1, completed: 2, failed: 1, paused: 0 },
    );
    await queue.remove('count-delayed');

    const res = await call('GET', '/v1/admin/queues');
    const webhook = (res.body.data as AdminQueue[])[1]!;
    assert.equal(webhook.object, 'queue');
    assert.equal(webhook.is_paused, false);
    assert.deepEqual(Object.keys(webhook.counts).sort(), ['active', 'completed', 'delayed', 'failed', 'paused', 'prioritized', 'waiting']);
  });

  test('pause holds jobs back from a real BullMQ worker; resume lets it take them', async () => {
    const paused = await call('POST', `/v1/admin/queues/${GENERATION_QUEUE}/pause`);
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.is_paused, true);
    assert.equal(await queue.isPaused(), true, 'BullMQ sees the queue paused');
    assert.equal((await call('POST', `/v1/admin/queues/${GENERATION_QUEUE}/pause`)).status, 200, 'pausing twice is fine');

    const video = await alice.client.videos.create({ prompt: 'held back by the pause', model: 'rehyat-test' });
    const state = await generationQueueState();
    assert.equal(state.is_paused, true);
    assert.ok(state.counts.paused >= 1);
    assert.equal(state.counts.paused, state.counts.waiting + state.counts.prioritized);

    const taken: string[] = [];
    const w = startWorker(async (job) => {
      taken.push(job.id!);
    });
    const events = new QueueEvents(GENERATION_QUEUE, { connection: { url: REDIS_URL }, prefix: stack.config.REDIS_PREFIX });
    try {
      await w.worker.waitUntilReady();
      await events.waitUntilReady();
      await new Promise((r) => setTimeout(r, 500)); // a running worker, given the chance to take a job
      assert.equal(taken.length, 0, 'a paused queue hands out nothing');
      assert.ok(['waiting', 'prioritized'].includes(await (await queue.getJob(video.id))!.getState()));

      const done = Job.fromId(queue, video.id).then((job) => job!.waitUntilFinished(events, 10_000));
      const resumed = await call('POST', `/v1/admin/queues/${GENERATION_QUEUE}/resume`);
      assert.equal(resumed.status, 200);
      assert.equal(resumed.body.is_paused, false);
      assert.equal((resumed.body.counts as Counts).paused, 0);
      assert.equal(await queue.isPaused(), false);
      await done;
      assert.ok(taken.includes(video.id), 'the worker took the held job after the resume');
      assert.equal((await call('POST', `/v1/admin/queues/${GENERATION_QUEUE}/resume`)).status, 200, 'resuming twice is fine');
    } finally {
      await events.close();
      await stopWorker(w);
    }
  });

  test('the webhook delivery queue pauses and resumes too', async () => {
    const webhookQueue = new Queue(WEBHOOK_QUEUE, { connection: stack.redis, prefix: stack.config.REDIS_PREFIX });
    try {
      const paused = await call('POST', `/v1/admin/queues/${WEBHOOK_QUEUE}/pause`);
      assert.equal(paused.status, 200);
      assert.equal(paused.body.name, WEBHOOK_QUEUE);
      assert.equal(await webhookQueue.isPaused(), true);
      assert.equal(await queue.isPaused(), false, 'only that queue');
      assert.equal((await call('POST', `/v1/admin/queues/${WEBHOOK_QUEUE}/resume`)).status, 200);
      assert.equal(await webhookQueue.isPaused(), false);
    } finally {
      await webhookQueue.close();
    }
  });

  test('an unknown queue name is 400 invalid_value naming it', async () => {
    const err = assertError(await call('POST', '/v1/admin/queues/nope/pause'), 400, 'invalid_value', 'name');
    assert.match(err.message, /video-generation/);
    assertError(await call('POST', '/v1/admin/queues/nope/resume'), 400, 'invalid_value', 'name');
  });
});

describe('workers', () => {
  interface AdminWorker {
    id: string;
    host: string;
    pid: number;
    device: string;
    device_memory_used_bytes: number | null;
    device_memory_total_bytes: number | null;
    current_video_id: string | null;
    current_video: { id: string; model: string; status: string; progress: number; owner_id: string } | null;
    chunks_per_second: number | null;
    started_at: number;
    last_seen_at: number;
    seconds_since_seen: number;
    stale: boolean;
  }

  /**
   * What apps/worker's heartbeat does: the contract's state as JSON in field `state`, TTL
   * HEARTBEAT_TTL_S, and the worker id scored in the registry with the beat's time.
   */
  async function beat(state: WorkerHeartbeat): Promise<void> {
    const key = keyspace.workerHeartbeat(state.worker_id);
    await stack.redis
      .multi()
      .hset(key, 'state', JSON.stringify(WorkerHeartbeat.parse(state)))
      .expire(key, HEARTBEAT_TTL_S)
      .zadd(keyspace.workers(), Date.parse(state.updated_at), state.worker_id)
      .exec();
  }
  /** What apps/worker's stop function does. */
  async function stopped(...ids: string[]): Promise<void> {
    for (const id of ids) await stack.redis.multi().del(keyspace.workerHeartbeat(id)).zrem(keyspace.workers(), id).exec();
  }
  const iso = (ms: number) => new Date(ms).toISOString();
  const idle = (id: string, updatedAtMs: number): WorkerHeartbeat => ({
    worker_id: id,
    host: 'node-c',
    pid: 1,
    device: 'cpu',
    device_memory_used_bytes: null,
    device_memory_total_bytes: null,
    current_video_id: null,
    chunks_per_second: null,
    started_at: iso(updatedAtMs - 60_000),
    updated_at: iso(updatedAtMs),
  });

  test('live workers from their heartbeats, with the video each generates; an old heartbeat is stale', async () => {
    assert.deepEqual((await call('GET', '/v1/admin/workers')).body, { object: 'list', data: [], stale_after_s: HEARTBEAT_TTL_S });

    const video = await alice.client.videos.create({ prompt: 'being generated', model: 'rehyat-test' });
    await stack.app.prisma.video.update({ where: { id: video.id }, data: { status: 'in_progress', progress: 40, workerId: 'gpu-0' } });
    const now = Date.now();
    await beat({
      worker_id: 'gpu-0',
      host: 'node-a',
      pid: 101,
      device: 'NVIDIA H100 80GB HBM3',
      device_memory_used_bytes: 20 * 2 ** 30,
      device_memory_total_bytes: 80 * 2 ** 30,
      current_video_id: video.id,
      chunks_per_second: 1.5,
      started_at: iso(now - 3_600_000),
      updated_at: iso(now - 2_000),
    });
    await beat({
      worker_id: 'gpu-1',
      host: 'node-b',
      pid: 202,
      device: 'cpu',
      device_memory_used_bytes: null,
      device_memory_total_bytes: null,
      current_video_id: null,
      chunks_per_second: null,
      started_at: iso(now - 7_200_000),
      updated_at: iso(now - (HEARTBEAT_TTL_S + 30) * 1000),
    });
    await beat({
      worker_id: 'gpu-2',
      host: 'node-b',
      pid: 303,
      device: 'cuda:1',
      device_memory_used_bytes: null,
      device_memory_total_bytes: null,
      current_video_id: 'video_ffffffffffffffffffffffffffffffff', // deleted since
      chunks_per_second: null,
      started_at: iso(now - 60_000),
      updated_at: iso(now - 1_000),
    });
    // Not a contract heartbeat: left out, not a 500.
    await stack.redis.multi().hset(keyspace.workerHeartbeat('broken'), 'state', '{not json').zadd(keyspace.workers(), now, 'broken').exec();

    const res = await call('GET', '/v1/admin/workers');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.stale_after_s, HEARTBEAT_TTL_S);
    const workers = res.body.data as AdminWorker[];
    assert.deepEqual(workers.map((w) => [w.id, w.stale]), [['gpu-0', false], ['gpu-1', true], ['gpu-2', false]]);
    const [g0, g1, g2] = workers as [AdminWorker, AdminWorker, AdminWorker];
    assert.deepEqual(
      { host: g0.host, pid: g0.pid, device: g0.device, used: g0.device_memory_used_bytes, total: g0.device_memory_total_bytes, cps: g0.chunks_per_second },
      { host: 'node-a', pid: 101, device: 'NVIDIA H100 80GB HBM3', used: 20 * 2 ** 30, total: 80 * 2 ** 30, cps: 1.5 },
    );
    assert.equal(g0.current_video_id, video.id);
    assert.deepEqual(g0.current_video, { id: video.id, model: 'rehyat-test', status: 'in_progress', progress: 40, owner_id: alice.keyId });
    assert.equal(g0.last_seen_at, Math.floor((now - 2_000) / 1000));
    assert.equal(g0.started_at, Math.floor((now - 3_600_000) / 1000));
    assert.ok(g0.seconds_since_seen >= 2 && g0.seconds_since_seen < HEARTBEAT_TTL_S);
    assert.ok(g1.seconds_since_seen > HEARTBEAT_TTL_S);
    assert.equal(g1.current_video, null);
    assert.equal(g2.current_video_id, 'video_ffffffffffffffffffffffffffffffff');
    assert.equal(g2.current_video, null, 'a video that no longer exists');

    // A worker that stopped deletes its key and its registry entry (apps/worker's stop function): it is gone from the list.
    await stopped('gpu-2', 'broken');
    const after = (await call('GET', '/v1/admin/workers')).body.data as AdminWorker[];
    assert.deepEqual(after.map((w) => w.id), ['gpu-0', 'gpu-1']);
    await stopped('gpu-0', 'gpu-1');
  });

  test('workers are found in the registry, not by scanning keys: entries of dead workers are skipped, then pruned', async () => {
    const now = Date.now();
    await beat(idle('live', now - 1_000));
    // A worker that died: its hash expired, its registry entry (score 2 min ago) is still there.
    await stack.redis.zadd(keyspace.workers(), now - 120_000, 'died');
    // Long dead: last seen before the prune horizon.
    await stack.redis.zadd(keyspace.workers(), now - (WORKER_REGISTRY_PRUNE_AFTER_S + 60) * 1000, 'long-dead');
    // A heartbeat hash nobody registered (a worker from before the registry): not looked for.
    const unregistered = keyspace.workerHeartbeat('unregistered');
    await stack.redis.multi().hset(unregistered, 'state', JSON.stringify(idle('unregistered', now))).expire(unregistered, HEARTBEAT_TTL_S).exec();

    const res = await call('GET', '/v1/admin/workers');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual((res.body.data as AdminWorker[]).map((w) => [w.id, w.stale]), [['live', false]]);
    assert.deepEqual(
      (await stack.redis.zrange(keyspace.workers(), 0, -1)).sort(),
      ['died', 'live'],
      'entries older than WORKER_REGISTRY_PRUNE_AFTER_S are pruned by the read; a recent one without a hash waits for its turn',
    );

    // Its next beat puts a worker back at once, whatever happened to its entry.
    await stack.redis.zrem(keyspace.workers(), 'live');
    await beat(idle('live', Date.now()));
    assert.deepEqual(((await call('GET', '/v1/admin/workers')).body.data as AdminWorker[]).map((w) => w.id), ['live']);
    await stopped('live', 'died');
    await stack.redis.del(unregistered);
  });
});

describe('videos', () => {
  interface AdminVideo {
    object: string;
    id: string;
    owner: { id: string; name: string; prefix: string };
    status: string;
    progress: number;
    error: { code: string; message: string } | null;
    last_error: { code: string; message: string; at: number } | null;
    created_at: number;
    started_at: number | null;
    completed_at: number | null;
  }
  interface Page {
    object: 'list';
    data: AdminVideo[];
    first_id: string | null;
    last_id: string | null;
    has_more: boolean;
  }

  test('every owner\'s videos, newest first, page by page; filtered by status', async () => {
    for (let i = 0; i < 3; i++) await alice.client.videos.create({ prompt: `alice ${i}`, model: 'rehyat-test' });
    for (let i = 0; i < 2; i++) await bob.client.videos.create({ prompt: `bob ${i}`, model: 'rehyat-test' });
    const failedId = (await bob.client.videos.create({ prompt: 'bob fails', model: 'rehyat-test' })).id;
    const failedAt = new Date();
    await stack.app.prisma.video.update({
      where: { id: failedId },
      data: { status: 'failed', errorCode: 'generation_failed', errorMessage: 'NaN in the latents', completedAt: failedAt, startedAt: failedAt, lastErrorCode: 'generation_failed', lastErrorMessage: 'NaN in the latents', lastErrorAt: failedAt },
    });
    const expected = await stack.app.prisma.video.findMany({ orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], select: { id: true, ownerId: true } });

    const seen: AdminVideo[] = [];
    let after: string | null = null;
    for (;;) {
      const res = await call('GET', `/v1/admin/videos?limit=2${after ? `&after=${after}` : ''}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const page = res.body as unknown as Page;
      assert.equal(page.object, 'list');
      assert.ok(page.data.length <= 2);
      assert.equal(page.first_id, page.data[0]?.id ?? null);
      assert.equal(page.last_id, page.data.at(-1)?.id ?? null);
      seen.push(...page.data);
      if (!page.has_more) break;
      after = page.last_id;
    }
    assert.deepEqual(seen.map((v) => v.id), expected.map((v) => v.id), 'all of them, once, newest first');
    assert.deepEqual(new Set(seen.map((v) => v.owner.name)), new Set(['alice', 'bob']));
    const bobKey = await stack.app.prisma.apiKey.findUniqueOrThrow({ where: { id: bob.keyId } });
    const failed = seen.find((v) => v.id === failedId)!;
    assert.deepEqual(failed.owner, { id: bob.keyId, name: 'bob', prefix: bobKey.prefix });
    assert.equal(failed.object, 'admin.video');
    assert.equal(failed.status, 'failed');
    assert.deepEqual(failed.error, { code: 'generation_failed', message: 'NaN in the latents' });
    assert.deepEqual(failed.last_error, { code: 'generation_failed', message: 'NaN in the latents', at: Math.floor(failedAt.getTime() / 1000) });
    assert.equal(failed.completed_at, Math.floor(failedAt.getTime() / 1000));

    const onlyFailed = (await call('GET', '/v1/admin/videos?status=failed')).body as unknown as Page;
    assert.deepEqual(onlyFailed.data.map((v) => v.id), [failedId]);
    assert.equal(onlyFailed.has_more, false);
    const queued = (await call('GET', '/v1/admin/videos?status=queued&limit=100')).body as unknown as Page;
    assert.ok(queued.data.length > 0 && queued.data.every((v) => v.status === 'queued'));
    // The cursor keeps its place with a filter too.
    const firstQueued = (await call('GET', '/v1/admin/videos?status=queued&limit=1')).body as unknown as Page;
    const rest = (await call('GET', `/v1/admin/videos?status=queued&limit=100&after=${firstQueued.last_id}`)).body as unknown as Page;
    assert.deepEqual([...firstQueued.data, ...rest.data].map((v) => v.id), queued.data.map((v) => v.id));
  });

  test('bad parameters: 400 naming them', async () => {
    assertError(await call('GET', '/v1/admin/videos?after=video_00000000000000000000000000000000'), 400, 'invalid_value', 'after');
    assertError(await call('GET', '/v1/admin/videos?after=nope'), 400, 'invalid_value', 'after');
    assertError(await call('GET', '/v1/admin/videos?limit=0'), 400, 'invalid_value', 'limit');
    assertError(await call('GET', '/v1/admin/videos?limit=101'), 400, 'invalid_value', 'limit');
    assertError(await call('GET', '/v1/admin/videos?status=done'), 400, 'invalid_value', 'status');
    assertError(await call('GET', '/v1/admin/videos?owner=key_1'), 400, 'unknown_parameter', 'owner');
  });
});

describe('retry', () => {
  /** Fails a video the way apps/worker does on its last attempt: row, `video.failed`, then the job fails for good. */
  async function failThroughWorker(videoId: string): Promise<void> {
    const w = startWorker(async (job) => {
      if (job.id !== videoId) return;
      const now = new Date();
      await stack.app.prisma.video.update({
        where: { id: videoId },
        data: { status: 'failed', errorCode: 'device_error', errorMessage: 'CUDA error: an illegal memory access', completedAt: now, lastErrorCode: 'device_error', lastErrorMessage: 'CUDA error: an illegal memory access', lastErrorAt: now },
      });
      await publishVideoEvent(stack.redis, keyspace, videoId as VideoId, 'video.failed', { code: 'device_error', message: 'CUDA error: an illegal memory access' });
      throw new UnrecoverableError('CUDA error: an illegal memory access');
    });
    try {
      await until(`${videoId}'s job to fail`, async () => (await (await queue.getJob(videoId))?.getState()) === 'failed');
    } finally {
      await stopWorker(w);
    }
  }

  async function failedVideo(prompt: string): Promise<string> {
    const video = await alice.client.videos.create({ prompt, model: 'rehyat-test' });
    await failThroughWorker(video.id);
    // The API's feed consumer frees the owner's slot when it reads video.failed; a retry before
    // that would take the slot and then lose it to the late release.
    await until(`${video.id}'s active slot to be freed`, async () => !(await stack.app.limits.active.members(alice.keyId)).includes(video.id));
    return video.id;
  }

  test('a failed video goes back to the queue with the job the API queued, attempts reset', async () => {
    const id = await failedVideo('retried');
    const before = await queue.getJob(id);
    const payload = before!.data as unknown;
    assert.equal(before!.attemptsMade, 1);
    const stream = keyspace.videoEvents(id as VideoId);
    assert.ok((await stack.redis.ttl(stream)) > 0, 'the terminal event set the stream to expire');

    const res = await call('POST', `/v1/admin/jobs/${id}/retry`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.id, id);
    assert.equal(res.body.status, 'queued');
    assert.equal(res.body.error, null);
    const lastError = res.body.last_error as { code: string; message: string };
    assert.deepEqual([lastError.code, lastError.message], ['device_error', 'CUDA error: an illegal memory access'], 'last_error is kept');
    assert.equal(res.body.completed_at, null);

    const job = (await queue.getJob(id))!;
    assert.ok(['waiting', 'prioritized'].includes(await job.getState()));
    assert.equal(job.attemptsMade, 0);
    assert.deepEqual(job.data, payload, 'the payload the API queued at creation');
    GenerateJobPayload.parse(job.data);
    assert.equal(job.opts.attempts, JOBS.generate.attempts);

    const video = await alice.client.videos.retrieve(id);
    assert.equal(video.status, 'queued');
    assert.equal(video.error, null);
    const events = await readVideoEvents(stack.redis, keyspace, id as VideoId);
    assert.deepEqual(events.map((e) => e.event.type).slice(-2), ['video.failed', 'video.queued']);
    assert.equal(await stack.redis.ttl(stream), -1, 'the stream lives while the video runs again');
    assert.ok((await stack.app.limits.active.members(alice.keyId)).includes(id), 'the owner\'s active-video slot is taken again');

    // A worker gets the job and its contract payload.
    let received: unknown = null;
    const w = startWorker(async (j) => {
      if (j.id === id) received = j.data;
    });
    try {
      await until('the retried job to be taken', async () => received !== null);
    } finally {
      await stopWorker(w);
    }
    assert.equal(GenerateJobPayload.parse(received).video_id, id);
  });

  test('SSE after a retry: a new client, or one resuming from before the failure, gets the new attempt instead of the end', async () => {
    const id = await failedVideo('watched across the retry');
    const before = await readVideoEvents(stack.redis, keyspace, id as VideoId);
    assert.equal(before.at(-1)?.event.type, 'video.failed');
    assert.equal((await call('POST', `/v1/admin/jobs/${id}/retry`)).status, 200);
    const url = `${stack.baseURL}/videos/${id}/events`;
    const auth = { authorization: `Bearer ${alice.secret}` };

    const fresh = await openSse(url, auth);
    const resumed = await openSse(url, { ...auth, 'last-event-id': before.at(-2)!.id });
    try {
      const types: string[] = [];
      for (let m = await fresh.nextEvent(); m; m = await fresh.nextEvent()) {
        types.push(m.event!);
        if (types.length === before.length + 1) break;
      }
      assert.deepEqual(types, [...before.map((e) => e.event.type), 'video.queued']);
      assert.deepEqual([(await resumed.nextEvent())?.event, (await resumed.nextEvent())?.event], ['video.failed', 'video.queued']);
      await publishVideoEvent(stack.redis, keyspace, id as VideoId, 'video.in_progress', { worker_id: 'gpu-9' });
      assert.equal((await fresh.nextEvent())?.event, 'video.in_progress', 'both still open');
      assert.equal((await resumed.nextEvent())?.event, 'video.in_progress');
    } finally {
      fresh.close();
      resumed.close();
    }
  });

  test('refusals: unknown video 404; not failed, cancel requested, job gone or not failed, off-contract payload 409', async () => {
    assertError(await call('POST', '/v1/admin/jobs/video_00000000000000000000000000000000/retry'), 404, 'video_not_found', 'videoId');
    assertError(await call('POST', '/v1/admin/jobs/nope/retry'), 404, 'video_not_found', 'videoId');

    const queued = await alice.client.videos.create({ prompt: 'still queued', model: 'rehyat-test' });
    let err = assertError(await call('POST', `/v1/admin/jobs/${queued.id}/retry`), 409, 'video_not_retryable', 'videoId');
    assert.match(err.message, /it is queued; only a failed video can be retried/);

    const cancelled = await failedVideo('cancel asked');
    await stack.app.prisma.video.update({ where: { id: cancelled }, data: { cancelRequestedAt: new Date() } });
    err = assertError(await call('POST', `/v1/admin/jobs/${cancelled}/retry`), 409, 'video_not_retryable');
    assert.match(err.message, /owner asked to cancel/);

    const gone = await failedVideo('job expired');
    await queue.remove(gone);
    err = assertError(await call('POST', `/v1/admin/jobs/${gone}/retry`), 409, 'video_not_retryable');
    assert.match(err.message, /no longer kept/);

    // The row says failed while the job is still waiting (a worker between recording and failing).
    const early = await alice.client.videos.create({ prompt: 'row failed first', model: 'rehyat-test' });
    await stack.app.prisma.video.update({ where: { id: early.id }, data: { status: 'failed', errorCode: 'internal_error', errorMessage: 'x' } });
    err = assertError(await call('POST', `/v1/admin/jobs/${early.id}/retry`), 409, 'video_not_retryable');
    assert.match(err.message, /not failed yet/);

    const stale = await failedVideo('old contract');
    const job = (await queue.getJob(stale))!;
    await job.updateData({ ...(job.data as object), v: 0 });
    err = assertError(await call('POST', `/v1/admin/jobs/${stale}/retry`), 409, 'video_not_retryable');
    assert.match(err.message, /contract/);

    for (const id of [cancelled, gone, early.id, stale]) {
      assert.equal((await stack.app.prisma.video.findUniqueOrThrow({ where: { id } })).status, 'failed', 'a refusal changes nothing');
    }
    assert.equal(await (await queue.getJob(stale))!.getState(), 'failed');
  });

  test('two retries at once: one runs, the other is 409', async () => {
    const id = await failedVideo('retried twice');
    const [a, b] = await Promise.all([call('POST', `/v1/admin/jobs/${id}/retry`), call('POST', `/v1/admin/jobs/${id}/retry`)]);
    assert.deepEqual([a.status, b.status].sort(), [200, 409]);
    assertError(a.status === 409 ? a : b, 409, 'video_not_retryable');
    assert.ok(['waiting', 'prioritized'].includes(await (await queue.getJob(id))!.getState()));
  });

  test('a retry that cannot be queued puts the video back as failed (503); a later one succeeds', async () => {
    const id = await failedVideo('redis refuses the event');
    const stream = keyspace.videoEvents(id as VideoId);
    const saved = await stack.redis.dumpBuffer(stream);
    await stack.redis.del(stream);
    await stack.redis.set(stream, 'not a stream'); // XADD answers WRONGTYPE
    assertError(await call('POST', `/v1/admin/jobs/${id}/retry`), 503, 'service_unavailable');
    const row = await stack.app.prisma.video.findUniqueOrThrow({ where: { id } });
    assert.deepEqual(
      { status: row.status, code: row.errorCode, message: row.errorMessage, completed: row.completedAt !== null },
      { status: 'failed', code: 'device_error', message: 'CUDA error: an illegal memory access', completed: true },
    );
    assert.equal(await (await queue.getJob(id))!.getState(), 'failed', 'the job was not retried');

    await stack.redis.del(stream);
    await stack.redis.restore(stream, 0, saved!);
    const ok = await call('POST', `/v1/admin/jobs/${id}/retry`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.status, 'queued');
  });
});

describe('dashboard and docs', () => {
  test('/admin serves the page without a key, with nothing from elsewhere and a CSP that admits its own script', async () => {
    for (const url of ['/admin', '/admin/']) {
      const res = await stack.app.inject({ url });
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/html; charset=utf-8/);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      const html = res.body;
      assert.match(html, /^<!doctype html>/);
      assert.match(html, /<title>rehyat admin<\/title>/);
      assert.doesNotMatch(html, /https?:\/\//, 'no CDN, no external URL');
      assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+stylesheet/);
      assert.match(html, /sessionStorage/);
      assert.match(html, /\/v1\/admin/);

      const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
      const style = /<style>([\s\S]*)<\/style>/.exec(html)![1]!;
      assert.doesNotThrow(() => new Script(script), 'the inline script parses');
      const csp = String(res.headers['content-security-policy']);
      const hash = (t: string) => `'sha256-${createHash('sha256').update(t).digest('base64')}'`;
      assert.ok(csp.includes(`script-src ${hash(script)}`), csp);
      assert.ok(csp.includes(`style-src ${hash(style)}`), csp);
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /connect-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
    }
  });

  test('/openapi.json documents the admin routes with their schemas and errors', async () => {
    const doc = (await stack.app.inject({ url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, { tags?: string[]; security?: unknown[]; responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, unknown> };
    };
    for (const [path, method] of [
      ['/v1/admin/queues', 'get'],
      ['/v1/admin/queues/{name}/pause', 'post'],
      ['/v1/admin/queues/{name}/resume', 'post'],
      ['/v1/admin/workers', 'get'],
      ['/v1/admin/videos', 'get'],
      ['/v1/admin/jobs/{videoId}/retry', 'post'],
    ] as const) {
      const op = doc.paths[path]?.[method];
      assert.ok(op, `${method} ${path} is documented`);
      assert.deepEqual(op.tags, ['admin']);
      assert.ok(op.security?.length);
      for (const status of ['200', '401', '403']) assert.ok(op.responses[status], `${method} ${path} documents ${status}`);
    }
    assert.ok(doc.paths['/v1/admin/jobs/{videoId}/retry']!.post!.responses['409']);
    for (const name of ['AdminQueueList', 'AdminWorkerList', 'AdminVideoList', 'AdminVideo']) assert.ok(doc.components.schemas[name], name);
    assert.equal(doc.paths['/admin'], undefined, 'the page is not an API route');
  });
});
