import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { publishVideoEvent } from '@rehyat/events';
import type { VideoEventType, VideoEventData } from '@rehyat/contracts';
import { buildApp } from '../src/app.js';
import { startStack, type Stack } from './helpers.js';

/** A real HTTP receiver on 127.0.0.1 answering with `reply(n)` for its n-th request. */
async function receiver(reply: (n: number, res: http.ServerResponse) => void) {
  const got: Array<{ headers: Record<string, string>; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8') });
      reply(got.length, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    got,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

async function until<T>(fn: () => Promise<T | undefined | null | false>, limitMs = 20_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const WEBHOOK_ENV = {
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8,::1/128',
  WEBHOOK_RETRY_SCHEDULE_MS: '0,300,300,300',
  WEBHOOK_RETRY_JITTER: '0',
  WEBHOOK_TIMEOUT_MS: '1500',
};

type Ev = { id: string; object: string; type: string; created_at: number; data: { id: string; object: string; status: string } };
type Delivery = { id: string; status: string; attempts: number; message_id: string; last_status_code: number | null; last_latency_ms: number | null; last_response_excerpt: string | null; last_error: string | null; event_type: string };

describe('webhooks', () => {
  let stack: Stack;
  let client: OpenAI;
  let secretKey: string;
  /** The app that replaces the stack's own after the restart test (the stack closes only its own). */
  let replacement: FastifyInstance | null = null;
  before(async () => {
    stack = await startStack({ env: WEBHOOK_ENV });
    ({ client, secret: secretKey } = await stack.client('webhooks'));
  });
  after(async () => {
    await replacement?.close();
    await stack.close();
  });

  const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${stack.baseURL}${path}`, {
      method,
      headers: { authorization: `Bearer ${secretKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  const publish = <T extends VideoEventType>(id: string, type: T, data: VideoEventData<T>) => publishVideoEvent(stack.redis, stack.app.keyspace, id, type, data);
  const deliveries = async (endpointId: string) => (await api<{ data: Delivery[] }>('GET', `/webhook_endpoints/${endpointId}/deliveries`)).body.data;

  test('endpoints: create (secret once), retrieve, list, update, delete through the openai client', async () => {
    const created = await client.webhooks.create({ url: 'http://127.0.0.1:9/hook', event_types: ['video.completed', 'video.failed'], name: 'main' });
    assert.match(created.id, /^whe_[0-9a-f]{32}$/);
    assert.match(created.signing_secret, /^whsec_/);
    assert.equal(created.signing_secret_hint, `whsec_...${created.signing_secret.slice(-4)}`);
    const got = await client.webhooks.retrieve(created.id);
    assert.equal((got as unknown as Record<string, unknown>).signing_secret, undefined);
    assert.deepEqual(got.event_types, ['video.completed', 'video.failed']);
    const updated = await client.webhooks.update(created.id, { name: 'renamed' });
    assert.equal(updated.name, 'renamed');
    const page = await client.webhooks.list();
    assert.ok(page.data.some((e) => e.id === created.id));
    const deleted = await client.webhooks.delete(created.id);
    assert.deepEqual(deleted, { id: created.id, object: 'webhook_endpoint.deleted', deleted: true });
    await assert.rejects(client.webhooks.retrieve(created.id), OpenAI.NotFoundError);
  });

  test('refused URLs and bad input are 400s naming the parameter', async () => {
    for (const url of ['http://10.0.0.1/hook', 'http://169.254.169.254/latest/meta-data', 'http://[fd00:ec2::254]/', 'ftp://127.0.0.1/x', 'nonsense']) {
      await assert.rejects(client.webhooks.create({ url, event_types: ['video.completed'], name: 'x' }), (e: InstanceType<typeof OpenAI.BadRequestError>) => {
        assert.ok(e instanceof OpenAI.BadRequestError, url);
        assert.equal(e.param, 'url');
        return true;
      });
    }
    const bad = await api<{ error: { code: string; param: string } }>('POST', '/webhook_endpoints', { url: 'http://127.0.0.1:9/', event_types: ['video.progress'] });
    assert.equal(bad.status, 400);
    await assert.rejects(
      client.videos.create({ prompt: 'x', webhook_url: 'http://192.168.1.1/hook' } as unknown as OpenAI.VideoCreateParams),
      (e: InstanceType<typeof OpenAI.BadRequestError>) => e instanceof OpenAI.BadRequestError && e.param === 'webhook_url',
    );
  });

  test('video events reach the endpoint signed; openai unwrap and standardwebhooks verify; data is the video object', async () => {
    const r = await receiver((_n, res) => res.writeHead(200).end('ok'));
    try {
      const ep = await client.webhooks.create({ url: r.url, event_types: ['video.queued', 'video.started', 'video.completed'] as never, name: 'all' });
      const video = await client.videos.create({ prompt: 'a red ball bounces' });
      const queued = await until(async () => r.got.find((g) => (JSON.parse(g.body) as Ev).data.id === video.id));
      const ev = (await client.webhooks.unwrap(queued.body, queued.headers, ep.signing_secret)) as unknown as Ev;
      new Webhook(ep.signing_secret).verify(queued.body, queued.headers);
      assert.equal(ev.type, 'video.queued');
      assert.equal(ev.object, 'event');
      assert.match(ev.id, /^evt_/);
      assert.equal(ev.data.object, 'video');
      assert.equal(ev.data.status, 'queued');
      // The worker's side, as the contract says: row first, then the event.
      await stack.app.prisma.video.update({ where: { id: video.id }, data: { status: 'in_progress', startedAt: new Date() } });
      await publish(video.id, 'video.in_progress', { worker_id: 'w1' });
      await publish(video.id, 'video.progress', { progress: 10, chunk: 0, chunks_total: 1, step: 1, steps_total: 4, eta: 1 });
      await stack.app.prisma.video.update({ where: { id: video.id }, data: { status: 'completed', progress: 100, completedAt: new Date() } });
      await publish(video.id, 'video.completed', { chunks_total: 1, seconds: 2 });
      await until(async () => r.got.length >= 3);
      // Attempts run concurrently, so events of one video may arrive in any order (as OpenAI's and
      // Standard Webhooks' do); each arrives once here, as every receiver answers 200.
      const events = r.got.map((g) => JSON.parse(g.body) as Ev);
      assert.deepEqual(events.map((e) => e.type).sort(), ['video.completed', 'video.queued', 'video.started']);
      const completed = events.find((e) => e.type === 'video.completed')!;
      assert.equal(completed.data.status, 'completed');
      // The event's video is what a read gives (but for the signed playlist URL's expiry, which may
      // have moved on to the next rounding step between the two).
      const strip = (v: unknown) => {
        const { playlist_url: url, ...rest } = v as Record<string, unknown>;
        return { ...rest, playlist_url: typeof url === 'string' ? url.split('?')[0] : url };
      };
      assert.deepEqual(strip(completed.data), strip(await client.videos.retrieve(video.id)));
      const log = await until(async () => {
        const d = await deliveries(ep.id);
        return d.length === 3 && d.every((x) => x.status === 'succeeded') && d;
      });
      assert.equal(log[0]!.last_status_code, 200);
      assert.equal(log[0]!.last_response_excerpt, 'ok');
      assert.equal(typeof log[0]!.last_latency_ms, 'number');
      await client.webhooks.delete(ep.id);
    } finally {
      await r.close();
    }
  });

  test('video.chunk.ready is opt-in; failed and cancelled are delivered', async () => {
    const r = await receiver((_n, res) => res.writeHead(200).end());
    const plain = await receiver((_n, res) => res.writeHead(200).end());
    try {
      const chunky = await client.webhooks.create({ url: r.url, event_types: ['video.chunk.ready', 'video.failed'] as never, name: 'chunks' });
      const defaults = (await api<{ id: string; event_types: string[] }>('POST', '/webhook_endpoints', { url: plain.url })).body;
      assert.deepEqual(defaults.event_types, ['video.queued', 'video.started', 'video.completed', 'video.failed', 'video.cancelled']);
      const v1 = await client.videos.create({ prompt: 'chunks' });
      await publish(v1.id, 'video.chunk', { index: 0, duration: 1, frames: 8, chunks_total: 2 });
      await stack.app.prisma.video.update({ where: { id: v1.id }, data: { status: 'failed', errorCode: 'internal_error', errorMessage: 'boom' } });
      await publish(v1.id, 'video.failed', { code: 'internal_error', message: 'boom' });
      const v2 = await client.videos.create({ prompt: 'cancel me' });
      assert.equal((await api('POST', `/videos/${v2.id}/cancel`)).status, 200);
      // Deliveries run concurrently: wait for every event each receiver should get, in any order.
      const plainHas = (t: string) => plain.got.some((g) => (JSON.parse(g.body) as Ev).type === t);
      await until(async () => r.got.length >= 2 && plainHas('video.cancelled') && plainHas('video.failed'));
      const chunkyEvents = r.got.map((g) => JSON.parse(g.body) as Ev & { data: { error: { code: string } } });
      assert.deepEqual(chunkyEvents.map((e) => e.type).sort(), ['video.chunk.ready', 'video.failed']);
      const failed = chunkyEvents.find((e) => e.type === 'video.failed')!;
      assert.equal(failed.data.error.code, 'internal_error');
      const plainTypes = plain.got.map((g) => (JSON.parse(g.body) as Ev).type);
      assert.ok(!plainTypes.includes('video.chunk.ready'));
      assert.ok(plainTypes.includes('video.failed'));
      const cancelled = plain.got.map((g) => JSON.parse(g.body) as Ev).find((e) => e.type === 'video.cancelled')!;
      assert.equal(cancelled.data.id, v2.id);
      assert.equal(cancelled.data.status, 'cancelled');
      await client.webhooks.delete(chunky.id);
      await client.webhooks.delete(defaults.id);
    } finally {
      await r.close();
      await plain.close();
    }
  });

  test('per-request webhook_url gets the events signed with the key\'s default secret', async () => {
    const r = await receiver((_n, res) => res.writeHead(204).end());
    try {
      const video = await client.videos.create({ prompt: 'per request', webhook_url: r.url } as unknown as OpenAI.VideoCreateParams);
      const msg = await until(async () => r.got[0]);
      const { body } = await api<{ signing_secret: string }>('GET', '/webhooks/default/secret');
      const ev = (await client.webhooks.unwrap(msg.body, msg.headers, body.signing_secret)) as unknown as Ev;
      assert.equal(ev.type, 'video.queued');
      assert.equal(ev.data.id, video.id);
    } finally {
      await r.close();
    }
  });

  test('a failed attempt survives an API restart; the retry runs in the new process', async () => {
    const r = await receiver((n, res) => (n === 1 ? res.writeHead(500).end('down') : res.writeHead(200).end('back')));
    const ep = await client.webhooks.create({ url: r.url, event_types: ['video.queued'] as never, name: 'restart' });
    const retrySlow = { ...WEBHOOK_ENV, WEBHOOK_RETRY_SCHEDULE_MS: '0,1500' };
    // This stack's app retries after 300 ms; use a second app with a slower schedule for the restart.
    await stack.app.close();
    let app = await buildApp({ config: { ...stack.config, WEBHOOK_RETRY_SCHEDULE_MS: retrySlow.WEBHOOK_RETRY_SCHEDULE_MS.split(',').map(Number) } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const baseURL = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1`;
      const c2 = new OpenAI({ apiKey: secretKey, baseURL, maxRetries: 0 });
      await c2.videos.create({ prompt: 'restart me' });
      const first = await until(async () => {
        const d = await app.prisma.webhookDelivery.findFirst({ where: { endpointId: ep.id } });
        return d && d.attempts === 1 && d;
      });
      assert.equal(first.status, 'pending');
      assert.equal(first.lastStatusCode, 500);
      await app.close();
      app = await buildApp({ config: stack.config });
      const done = await until(async () => {
        const d = await app.prisma.webhookDelivery.findUnique({ where: { id: first.id } });
        return d && d.status !== 'pending' && d;
      });
      assert.equal(done.status, 'succeeded');
      assert.equal(done.attempts, 2);
      assert.equal(done.lastResponseExcerpt, 'back');
      assert.equal(r.got.length, 2);
      assert.equal(r.got[0]!.headers['webhook-id'], r.got[1]!.headers['webhook-id']);
    } finally {
      await app.close();
      await r.close();
      // Give the stack a running app again for the tests after this one.
      replacement = stack.app = await buildApp({ config: stack.config });
      await stack.app.listen({ host: '127.0.0.1', port: Number(new URL(stack.baseURL).port) });
      await client.webhooks.delete(ep.id);
    }
  });

  test('410 disables the endpoint; redelivery resends the same message; rotation signs with both secrets', async () => {
    let mode: 'gone' | 'ok' = 'gone';
    const r = await receiver((_n, res) => (mode === 'gone' ? res.writeHead(410).end('gone') : res.writeHead(200).end()));
    try {
      const ep = await client.webhooks.create({ url: r.url, event_types: ['video.queued'] as never, name: 'gone' });
      await client.videos.create({ prompt: 'gone' });
      const [d] = await until(async () => {
        const x = await deliveries(ep.id);
        return x.length === 1 && x[0]!.status === 'failed' && x;
      });
      assert.equal(d!.attempts, 1);
      assert.equal(d!.last_status_code, 410);
      // The attempt is recorded first, the endpoint disabled right after (a second write).
      const disabled = await until(async () => {
        const ep1 = (await api<{ enabled: boolean; disabled_reason: string | null }>('GET', `/webhook_endpoints/${ep.id}`)).body;
        return !ep1.enabled && ep1;
      });
      assert.match(disabled.disabled_reason ?? '', /410/);

      mode = 'ok';
      await client.webhooks.update(ep.id, {}); // re-enables
      const rotated = await client.webhooks.rotateSecret(ep.id);
      assert.notEqual(rotated.signing_secret, ep.signing_secret);
      const re = await api<Delivery>('POST', `/webhook_endpoints/${ep.id}/deliveries/${d!.id}/redeliver`);
      assert.equal(re.status, 200);
      assert.equal(re.body.message_id, d!.message_id);
      await until(async () => r.got.length === 2);
      const second = r.got[1]!;
      assert.equal(second.headers['webhook-id'], r.got[0]!.headers['webhook-id']);
      assert.equal(second.headers['webhook-signature']!.split(' ').length, 2);
      for (const s of [ep.signing_secret, rotated.signing_secret]) await client.webhooks.unwrap(second.body, second.headers, s);
      const missing = await api<{ error: { code: string } }>('POST', `/webhook_endpoints/${ep.id}/deliveries/whd_${'0'.repeat(32)}/redeliver`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, 'webhook_delivery_not_found');
      await client.webhooks.delete(ep.id);
    } finally {
      await r.close();
    }
  });
});

describe('rate limits and quotas', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ env: { QUEUE_MAX_QUEUED: '5', WEBHOOK_RETRY_JITTER: '0' } });
  });
  after(async () => stack.close());

  test('a burst above the limit from one key gets RateLimitError with headers; another key still succeeds', async () => {
    const a = await stack.client('burst');
    const b = await stack.client('calm');
    await stack.app.prisma.apiKey.update({ where: { id: a.keyId }, data: { rateLimitRpm: 3 } });
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => a.client.videos.list().withResponse()));
    const ok = results.filter((x) => x.status === 'fulfilled');
    const denied = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    assert.equal(ok.length, 3);
    assert.equal(denied.length, 3);
    for (const d of denied) {
      const e = d.reason as InstanceType<typeof OpenAI.RateLimitError>;
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.code, 'rate_limit_exceeded');
      assert.equal(e.headers.get('x-ratelimit-limit-requests'), '3');
      assert.equal(e.headers.get('x-ratelimit-remaining-requests'), '0');
      assert.ok(Number(e.headers.get('retry-after')) >= 1);
    }
    const okHeaders = (ok[0] as PromiseFulfilledResult<{ response: Response }>).value.response.headers;
    assert.equal(okHeaders.get('x-ratelimit-limit-requests'), '3');
    for (let i = 0; i < 5; i++) await b.client.videos.list();
  });

  test('the active-video cap refuses a third video until one finishes', async () => {
    const k = await stack.client('active');
    await stack.app.prisma.apiKey.update({ where: { id: k.keyId }, data: { maxActiveVideos: 2 } });
    const v1 = await k.client.videos.create({ prompt: 'one' });
    await k.client.videos.create({ prompt: 'two' });
    await assert.rejects(k.client.videos.create({ prompt: 'three' }), (e: InstanceType<typeof OpenAI.RateLimitError>) => e instanceof OpenAI.RateLimitError && e.code === 'too_many_active_videos');
    await stack.app.prisma.video.update({ where: { id: v1.id }, data: { status: 'completed', completedAt: new Date() } });
    await publishVideoEvent(stack.redis, stack.app.keyspace, v1.id, 'video.completed', { chunks_total: 1, seconds: 2 });
    await until(async () => (await stack.app.limits.active.count(k.keyId)) === 1);
    const v3 = await k.client.videos.create({ prompt: 'three' });
    assert.equal(v3.status, 'queued');
    // Concurrent creations cannot overshoot: one slot left, five tries.
    const k2 = await stack.client('racing');
    await stack.app.prisma.apiKey.update({ where: { id: k2.keyId }, data: { maxActiveVideos: 1 } });
    const race = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => k2.client.videos.create({ prompt: `race ${i}` })));
    assert.equal(race.filter((x) => x.status === 'fulfilled').length, 1);
  });

  test('the global queue cap answers 503 queue_full', async () => {
    const k = await stack.client('flood');
    await stack.app.prisma.apiKey.update({ where: { id: k.keyId }, data: { maxActiveVideos: 0 } });
    const waiting = await stack.app.generationQueue.getJobCounts('waiting', 'prioritized', 'delayed');
    const queued = (waiting.waiting ?? 0) + (waiting.prioritized ?? 0) + (waiting.delayed ?? 0);
    for (let i = queued; i < 5; i++) await k.client.videos.create({ prompt: `fill ${i}` });
    await assert.rejects(k.client.videos.create({ prompt: 'overflow' }), (e: InstanceType<typeof OpenAI.InternalServerError>) => {
      assert.equal(e.status, 503);
      assert.equal((e.error as { code?: string }).code ?? e.code, 'queue_full');
      return true;
    });
  });
});

describe('fair ordering between keys', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => stack.close());

  test('a key that queues later is interleaved with a key that queued many (queue_position)', async () => {
    const a = await stack.client('heavy');
    const b = await stack.client('light');
    const ids: Array<{ who: string; id: string }> = [];
    for (let i = 0; i < 4; i++) ids.push({ who: `A${i + 1}`, id: (await a.client.videos.create({ prompt: `a ${i}` })).id });
    for (let i = 0; i < 2; i++) ids.push({ who: `B${i + 1}`, id: (await b.client.videos.create({ prompt: `b ${i}` })).id });
    const positions = await Promise.all(
      ids.map(async (x) => ({ who: x.who, pos: ((await (x.who[0] === 'A' ? a : b).client.videos.retrieve(x.id)) as unknown as { queue_position: number }).queue_position })),
    );
    positions.sort((p, q) => p.pos - q.pos);
    assert.deepEqual(positions.map((p) => p.who), ['A1', 'B1', 'A2', 'B2', 'A3', 'A4']);
    assert.deepEqual(positions.map((p) => p.pos), [0, 1, 2, 3, 4, 5]);
  });
});
