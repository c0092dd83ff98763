/**
 * The admin API with Redis unreachable (a closed port): the routes that read Redis answer 503
 * `service_unavailable` within `DEPENDENCY_TIMEOUT_MS` instead of hanging (the webhook queue's
 * connection waits for Redis indefinitely); the video listing, which reads only Postgres, works.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { closedPort, startStack, type Stack } from './helpers.js';

let stack: Stack;
let secret: string;
let failedId: string;

before(async () => {
  const port = await closedPort();
  // The webhook delivery worker subscribes to Redis while the app is built; not what this is about.
  stack = await startStack({ env: { REDIS_URL: `redis://127.0.0.1:${port}`, WEBHOOK_WORKER_ENABLED: 'false' } });
  const admin = await stack.keys.create({ name: 'ops', role: 'admin' });
  secret = admin.secret;
  const owner = await stack.keys.create({ name: 'someone' });
  failedId = 'video_0123456789abcdef0123456789abcdef';
  await stack.app.prisma.video.create({
    data: {
      id: failedId,
      ownerId: owner.id,
      status: 'failed',
      prompt: 'a red ball',
      model: 'rehyat-test',
      seconds: 1,
      size: '64x64',
      width: 64,
      height: 64,
      seed: 1n,
      steps: 4,
      guidance: 1,
      chunksTotal: 1,
      errorCode: 'device_error',
      errorMessage: 'lost the GPU',
    },
  });
});
after(async () => {
  await stack.close();
});

async function call(method: 'GET' | 'POST', url: string) {
  const res = await stack.app.inject({ method, url, headers: { authorization: `Bearer ${secret}` } });
  return { status: res.statusCode, body: res.json() as { error?: { code: string; message: string } } };
}

test('queues, pause, resume, workers and retry: 503 service_unavailable naming Redis', async () => {
  for (const [method, url] of [
    ['GET', '/v1/admin/queues'],
    ['POST', '/v1/admin/queues/video-generation/pause'],
    ['POST', '/v1/admin/queues/webhook-delivery/resume'],
    ['GET', '/v1/admin/workers'],
    ['POST', `/v1/admin/jobs/${failedId}/retry`],
  ] as const) {
    const res = await call(method, url);
    assert.equal(res.status, 503, `${method} ${url}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error?.code, 'service_unavailable');
    assert.match(res.body.error!.message, /Redis is unavailable/);
  }
  const row = await stack.app.prisma.video.findUniqueOrThrow({ where: { id: failedId } });
  assert.equal(row.status, 'failed', 'a retry that could not reach the queue changed nothing');
});

test('the video listing reads only Postgres and still answers', async () => {
  const res = await stack.app.inject({ url: '/v1/admin/videos', headers: { authorization: `Bearer ${secret}` } });
  assert.equal(res.statusCode, 200, res.body);
  assert.deepEqual((res.json() as { data: Array<{ id: string }> }).data.map((v) => v.id), [failedId]);
});
