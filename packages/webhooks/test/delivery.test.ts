import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import {
  buildEventBody,
  generateSecret,
  MemoryDeliveryStore,
  newDeliveryId,
  newEventId,
  newMessageId,
  SsrfGuard,
  WebhookDeliveryQueue,
  WebhookDeliveryWorker,
  type AttemptOutcome,
  type DeliveryRecord,
} from '../src/index.js';
import { startReceiver, until } from './receiver.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test-wh-${randomBytes(4).toString('hex')}`;
const guard = new SsrfGuard({ allowedCidrs: ['127.0.0.0/8', '::1/128'] });
const retry = { scheduleMs: [0, 50, 50, 50], jitter: 0 };

// BullMQ keys are `${prefix}:<queue>:…`; the stalled-job test uses its own `${prefix}-stall`.
// Each namespace is cleaned under its own `prefix:`, so no other test's keys can match.
after(async () => {
  const r = new Redis(REDIS_URL);
  await deleteRedisPrefix(r, prefix);
  await deleteRedisPrefix(r, `${prefix}-stall`);
  r.disconnect();
});

function setup(): { store: MemoryDeliveryStore; secret: string; add: (url: string, endpointId?: string | null) => DeliveryRecord } {
  const store = new MemoryDeliveryStore();
  const secret = generateSecret();
  store.endpoints.set('whe_1', { secrets: [secret], enabled: true, disabledReason: null });
  const add = (url: string, endpointId: string | null = 'whe_1'): DeliveryRecord => {
    const d: DeliveryRecord = {
      id: newDeliveryId(),
      messageId: newMessageId(),
      endpointId,
      url,
      eventType: 'video.completed',
      payload: buildEventBody({ id: newEventId(), type: 'video.completed', createdAt: new Date(), data: { id: 'video_00000000000000000000000000000001', object: 'video' } }),
      status: 'pending',
      attempts: 0,
      nextAttemptAt: new Date(),
      lastStatusCode: null,
      lastLatencyMs: null,
      lastResponseExcerpt: null,
      lastError: null,
    };
    store.deliveries.set(d.id, d);
    return d;
  };
  return { store, secret, add };
}

function startWorker(store: MemoryDeliveryStore, extra: Partial<ConstructorParameters<typeof WebhookDeliveryWorker>[0]> = {}): { w: WebhookDeliveryWorker; outcomes: AttemptOutcome[] } {
  const outcomes: AttemptOutcome[] = [];
  const w = new WebhookDeliveryWorker({
    redisUrl: REDIS_URL,
    prefix,
    store,
    guard,
    retry,
    timeoutMs: 500,
    reconcileIntervalMs: 0,
    onOutcome: (_d, o) => outcomes.push(o),
    ...extra,
  });
  return { w, outcomes };
}

test('a receiver failing the first two attempts gets the same signed message until it succeeds', async () => {
  const r = await startReceiver((n, _req, res) => (n <= 2 ? res.writeHead(500).end('boom ' + n) : res.writeHead(204).end()));
  const { store, secret, add } = setup();
  const { w } = startWorker(store);
  try {
    const d = add(r.url);
    await w.producer.schedule(d.id, 1);
    await until(() => store.deliveries.get(d.id)!.status !== 'pending');
    const rec = store.deliveries.get(d.id)!;
    assert.equal(rec.status, 'succeeded');
    assert.equal(rec.attempts, 3);
    assert.equal(rec.lastStatusCode, 204);
    assert.equal(r.received.length, 3);
    const ids = new Set(r.received.map((x) => x.headers['webhook-id']));
    assert.deepEqual([...ids], [d.messageId]);
    const wh = new Webhook(secret);
    const openai = new OpenAI({ apiKey: 'unused', webhookSecret: secret });
    for (const got of r.received) {
      assert.equal(got.body, d.payload);
      wh.verify(got.body, got.headers as Record<string, string>);
      const ev = (await openai.webhooks.unwrap(got.body, got.headers as Record<string, string>)) as unknown as { type: string };
      assert.equal(ev.type, 'video.completed');
    }
  } finally {
    await w.close();
    await r.close();
  }
});

test('a hanging receiver times out; the delivery fails after the last scheduled attempt', async () => {
  const r = await startReceiver(() => undefined);
  const { store, add } = setup();
  const { w } = startWorker(store);
  try {
    const d = add(r.url);
    await w.producer.schedule(d.id, 1);
    await until(() => store.deliveries.get(d.id)!.status !== 'pending');
    const rec = store.deliveries.get(d.id)!;
    assert.equal(rec.status, 'failed');
    assert.equal(rec.attempts, 4);
    assert.equal(rec.lastStatusCode, null);
    assert.match(rec.lastError ?? '', /^timeout/);
    assert.equal(r.received.length, 4);
  } finally {
    await w.close();
    await r.close();
  }
});

test('410 Gone disables the endpoint after one attempt, with the response excerpt kept', async () => {
  const r = await startReceiver((_n, _req, res) => res.writeHead(410).end('endpoint removed'));
  const { store, add } = setup();
  const { w } = startWorker(store);
  try {
    const d = add(r.url);
    await w.producer.schedule(d.id, 1);
    await until(() => store.deliveries.get(d.id)!.status !== 'pending');
    const rec = store.deliveries.get(d.id)!;
    assert.equal(rec.status, 'failed');
    assert.equal(rec.attempts, 1);
    assert.equal(rec.lastStatusCode, 410);
    assert.equal(rec.lastResponseExcerpt, 'endpoint removed');
    assert.equal(store.endpoints.get('whe_1')!.enabled, false);
    // A later message to the disabled endpoint fails without a request.
    const d2 = add(r.url);
    await w.producer.schedule(d2.id, 1);
    await until(() => store.deliveries.get(d2.id)!.status !== 'pending');
    assert.match(store.deliveries.get(d2.id)!.lastError ?? '', /^endpoint_disabled/);
    assert.equal(r.received.length, 1);
  } finally {
    await w.close();
    await r.close();
  }
});

test('Retry-After sets the floor of the next delay', async () => {
  const r = await startReceiver((n, _req, res) => (n === 1 ? res.writeHead(429, { 'retry-after': '1' }).end() : res.writeHead(200).end('ok')));
  const { store, add } = setup();
  const { w, outcomes } = startWorker(store);
  try {
    const d = add(r.url);
    await w.producer.schedule(d.id, 1);
    await until(() => store.deliveries.get(d.id)!.status !== 'pending');
    assert.equal(store.deliveries.get(d.id)!.status, 'succeeded');
    const first = outcomes.find((o) => o.kind === 'recorded' && o.update.attempts === 1);
    assert.ok(first && first.kind === 'recorded' && first.next);
    assert.equal(first.next.delayMs, 1000);
    assert.equal(first.result?.retryAfterMs, 1000);
  } finally {
    await w.close();
    await r.close();
  }
});

test('a worker restart between attempts loses nothing: the delayed attempt runs in the new worker', async () => {
  const r = await startReceiver((n, _req, res) => (n === 1 ? res.writeHead(503).end() : res.writeHead(200).end()));
  const { store, add } = setup();
  const slow = { scheduleMs: [0, 1500], jitter: 0 };
  const first = startWorker(store, { retry: slow });
  const d = add(r.url);
  await first.w.producer.schedule(d.id, 1);
  await until(() => store.deliveries.get(d.id)!.attempts === 1);
  await first.w.close();
  assert.equal(store.deliveries.get(d.id)!.status, 'pending');
  const second = startWorker(store, { retry: slow });
  try {
    await until(() => store.deliveries.get(d.id)!.status !== 'pending');
    assert.equal(store.deliveries.get(d.id)!.status, 'succeeded');
    assert.equal(r.received.length, 2);
  } finally {
    await second.w.close();
    await r.close();
  }
});

test('a worker dying mid-attempt: another worker takes the stalled job over and the message arrives', async () => {
  let hang = true;
  const r = await startReceiver((_n, _req, res) => {
    if (hang) return; // the first request never gets an answer
    res.writeHead(200).end('ok');
  });
  const { store, add } = setup();
  // Its own queue namespace: BullMQ runs the stalled check at most once per interval per queue,
  // and the workers of earlier tests set that marker with the default 30 s interval.
  const fast = { lockDurationMs: 1000, stalledIntervalMs: 300, timeoutMs: 20_000, prefix: `${prefix}-stall` };
  const first = startWorker(store, fast);
  const d = add(r.url);
  await first.w.producer.schedule(d.id, 1);
  await until(() => r.received.length === 1);
  // Simulated crash: cut the worker's Redis connection (no lock renewal, no completion) and stop
  // it without waiting for its in-flight attempt.
  (first.w as unknown as { connection: Redis }).connection.disconnect();
  void first.w.worker.close(true).catch(() => undefined);
  hang = false;
  const second = startWorker(store, fast);
  try {
    await until(() => store.deliveries.get(d.id)!.status !== 'pending');
    const rec = store.deliveries.get(d.id)!;
    assert.equal(rec.status, 'succeeded');
    assert.equal(rec.attempts, 1);
    assert.equal(r.received.length, 2);
    assert.equal(r.received[0]!.headers['webhook-id'], r.received[1]!.headers['webhook-id']);
  } finally {
    await second.w.close();
    await first.w.producer.close();
    await r.close();
  }
});

test('the reconciler re-adds a pending delivery whose job was never added; duplicate jobs do nothing', async () => {
  const r = await startReceiver((_n, _req, res) => res.writeHead(200).end());
  const { store, add } = setup();
  const { w, outcomes } = startWorker(store, { reconcileGraceMs: 0 });
  try {
    const d = add(r.url);
    assert.equal(await w.reconcile(new Date(Date.now() + 1000)), 1);
    await until(() => store.deliveries.get(d.id)!.status !== 'pending');
    assert.equal(store.deliveries.get(d.id)!.status, 'succeeded');
    // A replayed job for attempt 1 is skipped by the record check.
    const q = new WebhookDeliveryQueue({ redisUrl: REDIS_URL, prefix });
    await q.schedule(d.id, 1);
    await q.close();
    await until(() => outcomes.some((o) => o.kind === 'skipped'));
    assert.equal(r.received.length, 1);
  } finally {
    await w.close();
    await r.close();
  }
});

test('a delivery to a refused address fails at once without retries', async () => {
  const r = await startReceiver((_n, _req, res) => res.writeHead(200).end());
  const { store, add } = setup();
  const { w } = startWorker(store, { guard: new SsrfGuard() });
  try {
    const d = add(r.url);
    await w.producer.schedule(d.id, 1);
    await until(() => store.deliveries.get(d.id)!.status !== 'pending');
    const rec = store.deliveries.get(d.id)!;
    assert.equal(rec.status, 'failed');
    assert.equal(rec.attempts, 1);
    assert.match(rec.lastError ?? '', /^blocked_address/);
    assert.equal(r.received.length, 0);
  } finally {
    await w.close();
    await r.close();
  }
});
