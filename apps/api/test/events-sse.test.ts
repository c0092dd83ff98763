import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newVideoId, type VideoEventData, type VideoEventType, type VideoId } from '@rehyat/contracts';
import { publishVideoEvent } from '@rehyat/events';
import { signedPath, signingOptions } from '../src/signed-url.js';
import { openSse } from './sse-client.js';
import { errorOf, startStack, type Stack } from './helpers.js';

let stack: Stack;
let origin: string;
let owner: { keyId: string; secret: string };
let other: { keyId: string; secret: string };

before(async () => {
  stack = await startStack({ env: { SSE_HEARTBEAT_MS: '100' } });
  origin = stack.baseURL.replace(/\/v1$/, '');
  owner = await stack.client('sse-owner');
  other = await stack.client('sse-other');
});
after(async () => {
  await stack.close();
});

/** A video row as the create route would leave it (the worker writes the rest). */
async function insertVideo(status: 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled' = 'queued', ownerId = owner.keyId) {
  const id = newVideoId();
  await stack.app.prisma.video.create({
    data: {
      id,
      ownerId,
      status,
      prompt: 'a red ball bounces',
      model: 'rehyat-test',
      seconds: 4,
      size: '64x64',
      width: 64,
      height: 64,
      seed: 1n,
      steps: 4,
      guidance: 1,
      chunksTotal: 2,
      ...(status === 'failed' ? { errorCode: 'generation_failed', errorMessage: 'NaN in step 3' } : {}),
      ...(status === 'completed' ? { chunksDone: 2, durationSeconds: 4 } : {}),
    },
  });
  return id as VideoId;
}

const publish = <T extends VideoEventType>(id: VideoId, type: T, data: VideoEventData<T>) =>
  publishVideoEvent(stack.redis, stack.app.keyspace, id, type, data);
const progress = (p: number) => ({ progress: p, chunk: 0, chunks_total: 2, step: p, steps_total: 100, eta: 3 });
const eventsUrl = (id: string, query = '') => `${origin}/v1/videos/${id}/events${query}`;
const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

async function until(predicate: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('GET /v1/videos/:id/events', () => {
  test('replays every event in order with ids, types and contract JSON, and ends after the terminal one', async () => {
    const id = await insertVideo();
    const ids = [
      await publish(id, 'video.queued', { queue_position: 0 }),
      await publish(id, 'video.in_progress', { worker_id: 'gpu-0' }),
      await publish(id, 'video.progress', progress(25)),
      await publish(id, 'video.chunk', { index: 0, duration: 2, frames: 16, chunks_total: 2 }),
      await publish(id, 'video.progress', progress(75)),
      await publish(id, 'video.completed', { chunks_total: 2, seconds: 4 }),
    ];
    const sse = await openSse(eventsUrl(id), bearer(owner.secret));
    assert.equal(sse.status, 200);
    assert.match(sse.headers.get('content-type') ?? '', /^text\/event-stream/);
    const got = await sse.rest();
    assert.deepEqual(got.map((m) => m.id), ids);
    assert.deepEqual(got.map((m) => m.event), [
      'video.queued',
      'video.in_progress',
      'video.progress',
      'video.chunk',
      'video.progress',
      'video.completed',
    ]);
    const progressEvent = JSON.parse(got[2]!.data);
    assert.equal(progressEvent.type, 'video.progress');
    assert.equal(progressEvent.video_id, id);
    assert.deepEqual(progressEvent.data, progress(25));
  });

  test('tails live events as they are published and closes after the terminal event', async () => {
    const id = await insertVideo();
    await publish(id, 'video.queued', { queue_position: 2 });
    const sse = await openSse(eventsUrl(id), bearer(owner.secret));
    try {
      const first = await sse.nextEvent();
      assert.equal(first?.event, 'video.queued');
      await publish(id, 'video.in_progress', {});
      assert.equal((await sse.nextEvent())?.event, 'video.in_progress');
    } catch (err) {
      sse.close();
      throw err;
    }
    await publish(id, 'video.progress', progress(50));
    await publish(id, 'video.failed', { code: 'generation_failed', message: 'boom' });
    const rest = await sse.rest();
    assert.deepEqual(rest.map((x) => x.event), ['video.progress', 'video.failed']);
  });

  test('resumes after Last-Event-ID (header or ?last_event_id=)', async () => {
    const id = await insertVideo();
    const ids: string[] = [];
    for (let p = 0; p < 5; p++) ids.push(await publish(id, 'video.progress', progress(p * 10)));
    ids.push(await publish(id, 'video.cancelled', {}));
    const viaHeader = await (await openSse(eventsUrl(id), { ...bearer(owner.secret), 'last-event-id': ids[2]! })).rest();
    assert.deepEqual(viaHeader.map((m) => m.id), ids.slice(3));
    const viaQuery = await (await openSse(eventsUrl(id, `?last_event_id=${ids[4]}`), bearer(owner.secret))).rest();
    assert.deepEqual(viaQuery.map((m) => m.id), ids.slice(5));
  });

  test('a client that already has the terminal event gets an empty, closed stream', async () => {
    const id = await insertVideo('cancelled');
    const last = await publish(id, 'video.cancelled', {});
    const sse = await openSse(eventsUrl(id), { ...bearer(owner.secret), 'last-event-id': last });
    assert.equal(sse.status, 200);
    assert.deepEqual(await sse.rest(), []);
  });

  test('a finished video whose stream expired gets its terminal event from the database', async () => {
    const id = await insertVideo('failed');
    const got = await (await openSse(eventsUrl(id), bearer(owner.secret))).rest();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.event, 'video.failed');
    assert.equal(got[0]!.id, null);
    assert.deepEqual(JSON.parse(got[0]!.data).data, { code: 'generation_failed', message: 'NaN in step 3' });
  });

  describe('after an admin retry (a terminal event followed by `video.queued` in the same stream)', () => {
    /** A failed first attempt, then what the admin retry does: row back to queued, stream kept, `video.queued`. */
    async function retriedVideo(): Promise<{ id: VideoId; ids: string[] }> {
      const id = await insertVideo('failed');
      const ids = [
        await publish(id, 'video.queued', { queue_position: 0 }),
        await publish(id, 'video.in_progress', { worker_id: 'gpu-0' }),
        await publish(id, 'video.progress', progress(40)),
        await publish(id, 'video.failed', { code: 'device_error', message: 'CUDA error' }),
      ];
      await stack.app.prisma.video.update({ where: { id }, data: { status: 'queued', errorCode: null, errorMessage: null } });
      await stack.redis.persist(stack.app.keyspace.videoEvents(id));
      ids.push(await publish(id, 'video.queued', { queue_position: null }));
      return { id, ids };
    }
    const TYPES = ['video.queued', 'video.in_progress', 'video.progress', 'video.failed', 'video.queued'];

    test('a new client gets the whole stream, the old failure included, and stays open for the new attempt', async () => {
      const { id, ids } = await retriedVideo();
      const sse = await openSse(eventsUrl(id), bearer(owner.secret));
      try {
        for (const [i, type] of TYPES.entries()) {
          const m = await sse.nextEvent();
          assert.deepEqual([m?.id, m?.event], [ids[i], type]);
        }
        const live = await publish(id, 'video.in_progress', { worker_id: 'gpu-1' });
        assert.deepEqual((await sse.nextEvent())?.id, live, 'still open after the superseded video.failed');
      } catch (err) {
        sse.close();
        throw err;
      }
      await publish(id, 'video.progress', progress(80));
      await publish(id, 'video.completed', { chunks_total: 2, seconds: 4 });
      assert.deepEqual((await sse.rest()).map((m) => m.event), ['video.progress', 'video.completed'], 'the new terminal event ends it');
    });

    test('a client resuming from before the failure, or from it, gets the new attempt', async () => {
      const { id, ids } = await retriedVideo();
      for (const [lastId, expected] of [
        [ids[2]!, ids.slice(3)],
        [ids[3]!, ids.slice(4)],
      ] as const) {
        const sse = await openSse(eventsUrl(id), { ...bearer(owner.secret), 'last-event-id': lastId });
        try {
          for (const want of expected) assert.equal((await sse.nextEvent())?.id, want);
          assert.deepEqual(await sse.next(), { id: null, event: 'comment', data: 'heartbeat' }, 'open, waiting for the new attempt');
        } finally {
          sse.close();
        }
      }
    });

    test('retried and failed again: every event once, the stream ends after the newest failure', async () => {
      const { id, ids } = await retriedVideo();
      ids.push(await publish(id, 'video.failed', { code: 'generation_failed', message: 'again' }));
      await stack.app.prisma.video.update({ where: { id }, data: { status: 'failed', errorCode: 'generation_failed', errorMessage: 'again' } });
      const all = await (await openSse(eventsUrl(id), bearer(owner.secret))).rest();
      assert.deepEqual(all.map((m) => m.id), ids);
      assert.deepEqual(all.map((m) => m.event), [...TYPES, 'video.failed']);
      const fromFirstFailure = await (await openSse(eventsUrl(id), { ...bearer(owner.secret), 'last-event-id': ids[3]! })).rest();
      assert.deepEqual(fromFirstFailure.map((m) => m.id), ids.slice(4));
      assert.deepEqual(await (await openSse(eventsUrl(id), { ...bearer(owner.secret), 'last-event-id': ids.at(-1)! })).rest(), []);
    });

    test('a client connected when the video failed still ends there (the retry comes later)', async () => {
      const id = await insertVideo();
      await publish(id, 'video.queued', { queue_position: 0 });
      const sse = await openSse(eventsUrl(id), bearer(owner.secret));
      assert.equal((await sse.nextEvent())?.event, 'video.queued');
      await publish(id, 'video.failed', { code: 'device_error', message: 'CUDA error' });
      assert.deepEqual((await sse.rest()).map((m) => m.event), ['video.failed']);
    });
  });

  test('sends heartbeat comments while idle', async () => {
    const id = await insertVideo();
    const sse = await openSse(eventsUrl(id), bearer(owner.secret));
    const m = await sse.next();
    assert.deepEqual(m, { id: null, event: 'comment', data: 'heartbeat' });
    sse.close();
  });

  test('a client disconnect frees its stream', async () => {
    const id = await insertVideo();
    const before = await metric('rehyat_api_sse_connections');
    const videosBefore = await metric('rehyat_api_sse_videos');
    const sse = await openSse(eventsUrl(id), bearer(owner.secret));
    await sse.next();
    assert.equal(await metric('rehyat_api_sse_connections'), before + 1);
    sse.close();
    await until(async () => (await metric('rehyat_api_sse_connections')) === before, 'the stream to be freed');
    await until(async () => (await metric('rehyat_api_sse_videos')) === videosBefore, 'the hub to forget the video');
  });

  test('auth: missing key 401, another key\'s video 404, signed URL accepted, bad signature 403', async () => {
    const id = await insertVideo();
    await publish(id, 'video.cancelled', {});
    const noKey = await fetch(eventsUrl(id));
    assert.equal(noKey.status, 401);
    assert.equal((await errorOf(noKey)).code, 'missing_api_key');
    const otherKey = await fetch(eventsUrl(id), { headers: bearer(other.secret) });
    assert.equal(otherKey.status, 404);
    assert.equal((await errorOf(otherKey)).code, 'video_not_found');
    const signed = signedPath(signingOptions(stack.config), `/v1/videos/${id}/events`);
    const viaSig = await (await openSse(`${origin}${signed}`)).rest();
    assert.deepEqual(viaSig.map((m) => m.event), ['video.cancelled']);
    // change the signature's first character to another one (a fixed 'A' left a signature that began with 'A' intact)
    const forged = await fetch(`${origin}${signed.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`)}`);
    assert.equal(forged.status, 403);
    assert.equal((await errorOf(forged)).code, 'invalid_signature');
  });

  test('a malformed Last-Event-ID is 400 naming last_event_id; an unknown video is 404', async () => {
    const id = await insertVideo();
    const bad = await fetch(eventsUrl(id), { headers: { ...bearer(owner.secret), 'last-event-id': 'yesterday' } });
    assert.equal(bad.status, 400);
    const body = await errorOf(bad);
    assert.equal(body.param, 'last_event_id');
    assert.equal(body.type, 'invalid_request_error');
    const missing = await fetch(eventsUrl(newVideoId()), { headers: bearer(owner.secret) });
    assert.equal(missing.status, 404);
  });

  test('many concurrent clients of one video each get the whole stream', async () => {
    const id = await insertVideo();
    await publish(id, 'video.queued', { queue_position: 0 });
    const clients = await Promise.all(Array.from({ length: 20 }, () => openSse(eventsUrl(id), bearer(owner.secret))));
    await Promise.all(clients.map((c) => c.nextEvent()));
    for (let p = 1; p <= 3; p++) await publish(id, 'video.progress', progress(p));
    await publish(id, 'video.completed', { chunks_total: 2, seconds: 4 });
    const all = await Promise.all(clients.map((c) => c.rest()));
    for (const got of all) assert.deepEqual(got.map((m) => m.event), ['video.progress', 'video.progress', 'video.progress', 'video.completed']);
  });
});
