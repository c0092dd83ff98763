import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { WebhookDeliveryQueue } from '@rehyat/webhooks';
import type { VideoEvent } from '@rehyat/contracts';
import { playbackUrls } from '../src/signed-url.js';
import { handleFeedEvents } from '../src/webhooks/emitter.js';
import { startStack, type Stack } from './helpers.js';

/**
 * The feed consumer hands each read to `handleFeedEvents` as one batch (two reads for the whole
 * batch): every entry must get what handling it alone gives.
 */
let stack: Stack;
let queue: WebhookDeliveryQueue;

before(async () => {
  stack = await startStack({ env: { WEBHOOK_WORKER_ENABLED: 'false' } });
  queue = new WebhookDeliveryQueue({ redisUrl: stack.config.REDIS_URL, prefix: stack.app.keyspace.prefix });
});
after(async () => {
  await queue.close();
  await stack.close();
});

test('a batch of feed entries: deliveries only where a target wants the event, slots released on terminal events', async () => {
  const a = await stack.client('feed-a');
  const b = await stack.client('feed-b');
  const create = async (secret: string) => {
    const res = await fetch(`${stack.baseURL}/videos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'feed' }),
    });
    return ((await res.json()) as { id: string }).id;
  };
  const a1 = await create(a.secret);
  const b1 = await create(b.secret);
  // A wants only completions; B has no endpoint at all.
  await stack.app.prisma.webhookEndpoint.create({
    data: { id: `whe_${randomBytes(16).toString('hex')}`, ownerId: a.keyId, url: 'https://example.com/hook', eventTypes: ['video.completed'], secret: 'whsec_test' },
  });
  const active = stack.app.limits.active;
  await active.acquire(a.keyId, a1, 10);
  await active.acquire(b.keyId, b1, 10);

  const at = new Date().toISOString();
  const ev = (video_id: string, type: VideoEvent['type'], data: object): VideoEvent => ({ type, video_id, created_at: at, data }) as VideoEvent;
  const items = [
    ev(a1, 'video.queued', { queue_position: 0 }),
    ev(b1, 'video.queued', { queue_position: 1 }),
    ev(a1, 'video.progress', { progress: 50, chunk: 0, chunks_total: 1, step: 1, steps_total: 2, eta: null }),
    ev(a1, 'video.completed', { chunks_total: 1, seconds: 4 }),
    ev(b1, 'video.cancelled', {}),
    ev(`video_${'0'.repeat(32)}`, 'video.completed', { chunks_total: 1, seconds: 4 }),
  ].map((event, i) => ({ event, entryId: `1700000000000-${i}` }));
  const deps = { prisma: stack.app.prisma, pg: stack.app.pg, queue, active, view: { urls: playbackUrls(stack.config), retentionS: 0 } };
  const results = await handleFeedEvents(deps, items);
  assert.deepEqual(results, [0, 0, 0, 1, 0, 0]);

  const deliveries = await stack.app.prisma.webhookDelivery.findMany({ where: { ownerId: { in: [a.keyId, b.keyId] } } });
  assert.deepEqual(deliveries.map((d) => [d.videoId, d.eventType]), [[a1, 'video.completed']]);
  assert.deepEqual(await active.members(a.keyId), []);
  assert.deepEqual(await active.members(b.keyId), []);
  // Handling the same entries again sends nothing twice.
  assert.deepEqual(await handleFeedEvents(deps, items), [0, 0, 0, 1, 0, 0]);
  assert.equal(await stack.app.prisma.webhookDelivery.count({ where: { ownerId: a.keyId } }), 1);
});
