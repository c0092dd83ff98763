import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { Keyspace, newVideoId, parseVideoEvent, type VideoEventType } from '@rehyat/contracts';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import {
  InvalidStreamEntryError,
  appendVideoEvent,
  VideoEventHub,
  clearCancelRequest,
  compareStreamIds,
  getCancelRequest,
  isCancelRequested,
  isStreamId,
  normalizeStreamId,
  onCancelRequested,
  parseStoredEvent,
  publishVideoEvent,
  readVideoEvents,
  requestCancel,
  type StoredVideoEvent,
} from '../src/index.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyspace = new Keyspace({ prefix: `test-events-${randomBytes(4).toString('hex')}` });
let redis: Redis;

before(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
});

after(async () => {
  await deleteRedisPrefix(redis, keyspace.prefix);
  await redis.quit();
});

const progress = (n: number) => ({ progress: n, chunk: 0, chunks_total: 4, step: n, steps_total: 100, eta: null });

function waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (predicate()) resolve();
      else if (Date.now() - start > timeoutMs) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe('parseStoredEvent', () => {
  test("decodes as the contract's parseVideoEvent does, valid or not", () => {
    assert.equal(parseStoredEvent, parseVideoEvent, 'the contract function itself, not a copy');
    const id = newVideoId();
    const good = [
      { type: 'video.queued', video_id: id, created_at: '2026-01-01T00:00:00.000Z', data: { queue_position: 3 } },
      { type: 'video.cancelled', video_id: id, created_at: '2026-01-01T00:00:00.000Z', data: {} },
    ];
    for (const e of good) assert.deepEqual(parseStoredEvent(JSON.stringify(e)), parseVideoEvent(JSON.stringify(e)));
    const bad = ['{', JSON.stringify({ ...good[0], type: 'video.nope' }), JSON.stringify({ ...good[0], data: { queue_position: -1 } }), JSON.stringify({ ...good[1], data: { x: 1 } })];
    for (const json of bad) {
      let want = '';
      try {
        parseVideoEvent(json);
      } catch (err) {
        want = (err as Error).name;
      }
      assert.throws(() => parseStoredEvent(json), (err: Error) => err.name === want && want !== '');
    }
  });
});

describe('stream ids', () => {
  test('validate, normalise and order', () => {
    assert.ok(isStreamId('1700000000000-3'));
    assert.ok(isStreamId('5'));
    assert.ok(!isStreamId('abc'));
    assert.ok(!isStreamId('1-2-3'));
    assert.equal(normalizeStreamId('5'), '5-0');
    assert.throws(() => normalizeStreamId('x'), RangeError);
    assert.ok(compareStreamIds('1-2', '1-10') < 0);
    assert.ok(compareStreamIds('2-0', '1-99') > 0);
    assert.equal(compareStreamIds('3-1', '3-1'), 0);
  });
});

describe('publishVideoEvent / readVideoEvents', () => {
  test('events come back in order with monotonic ids; after= resumes', async () => {
    const id = newVideoId();
    const ids = [
      await publishVideoEvent(redis, keyspace, id, 'video.queued', { queue_position: 0 }),
      await publishVideoEvent(redis, keyspace, id, 'video.in_progress', {}),
      await publishVideoEvent(redis, keyspace, id, 'video.progress', progress(10)),
    ];
    for (let i = 1; i < ids.length; i++) assert.ok(compareStreamIds(ids[i - 1]!, ids[i]!) < 0);
    const all = await readVideoEvents(redis, keyspace, id);
    assert.deepEqual(all.map((e) => e.event.type), ['video.queued', 'video.in_progress', 'video.progress']);
    assert.deepEqual(all.map((e) => e.id), ids);
    assert.equal(all[0]!.event.video_id, id);
    assert.deepEqual(all[2]!.event.data, progress(10));
    const rest = await readVideoEvents(redis, keyspace, id, { after: ids[0] });
    assert.deepEqual(rest.map((e) => e.id), ids.slice(1));
    assert.deepEqual(await readVideoEvents(redis, keyspace, id, { after: ids[2] }), []);
  });

  test('off-contract data is rejected and nothing is written', async () => {
    const id = newVideoId();
    await assert.rejects(
      publishVideoEvent(redis, keyspace, id, 'video.progress', { progress: 101 } as never),
      (err: Error) => err.name === 'ZodError',
    );
    await assert.rejects(publishVideoEvent(redis, keyspace, id, 'video.cancelled', { extra: 1 } as never));
    assert.equal(await redis.exists(keyspace.videoEvents(id)), 0);
  });

  test('appendVideoEvent queues events on the caller\'s MULTI, between its other commands', async () => {
    const a = newVideoId();
    const b = newVideoId();
    const other = `${keyspace.prefix}:other`;
    const tx = redis.multi().set(other, '1');
    assert.equal(appendVideoEvent(tx, keyspace, a, 'video.queued', { queue_position: 0 }), 2);
    assert.equal(appendVideoEvent(tx, keyspace, b, 'video.cancelled', {}), 3);
    assert.throws(() => appendVideoEvent(tx, keyspace, b, 'video.progress', { progress: 101 } as never), (err: Error) => err.name === 'ZodError');
    const results = (await tx.exec())!;
    assert.equal(results.length, 6);
    for (const [err] of results) assert.equal(err, null);
    const [ea] = await readVideoEvents(redis, keyspace, a);
    assert.equal(ea!.id, results[1]![1]);
    assert.deepEqual(ea!.event.data, { queue_position: 0 });
    assert.ok((await redis.ttl(keyspace.videoEvents(b))) > 0);
    assert.equal((await readVideoEvents(redis, keyspace, b)).length, 1);
  });

  test('a terminal event sets the stream TTL; others do not', async () => {
    for (const type of ['video.completed', 'video.failed', 'video.cancelled'] as const) {
      const id = newVideoId();
      await publishVideoEvent(redis, keyspace, id, 'video.in_progress', {});
      assert.equal(await redis.ttl(keyspace.videoEvents(id)), -1);
      const data = {
        'video.completed': { chunks_total: 2, seconds: 4 },
        'video.failed': { code: 'internal_error', message: 'boom' },
        'video.cancelled': {},
      }[type];
      await publishVideoEvent(redis, keyspace, id, type as VideoEventType, data as never, { ttlAfterTerminalS: 120 });
      const ttl = await redis.ttl(keyspace.videoEvents(id));
      assert.ok(ttl > 0 && ttl <= 120, `${type}: ttl ${ttl}`);
    }
  });

  test('the stream is capped near maxLen', async () => {
    const id = newVideoId();
    for (let i = 0; i < 300; i++) await publishVideoEvent(redis, keyspace, id, 'video.progress', progress(i % 100), { maxLen: 50 });
    const len = await redis.xlen(keyspace.videoEvents(id));
    assert.ok(len >= 50 && len < 300, `length ${len}`);
  });

  test('a blocking read waits for the next event', async () => {
    const id = newVideoId();
    const first = await publishVideoEvent(redis, keyspace, id, 'video.queued', { queue_position: 3 });
    const reader = redis.duplicate();
    try {
      const pending = readVideoEvents(reader, keyspace, id, { after: first, blockMs: 10_000 });
      setTimeout(() => void publishVideoEvent(redis, keyspace, id, 'video.in_progress', { worker_id: 'w1' }), 50);
      const got = await pending;
      assert.equal(got.length, 1);
      assert.equal(got[0]!.event.type, 'video.in_progress');
    } finally {
      reader.disconnect();
    }
  });

  test('off-contract entries throw by default and are skipped with onInvalid', async () => {
    const id = newVideoId();
    await redis.xadd(keyspace.videoEvents(id), '*', 'payload', '{"type":"video.bogus"}');
    await publishVideoEvent(redis, keyspace, id, 'video.queued', { queue_position: null });
    await assert.rejects(readVideoEvents(redis, keyspace, id), InvalidStreamEntryError);
    const invalid: InvalidStreamEntryError[] = [];
    const got = await readVideoEvents(redis, keyspace, id, { onInvalid: (e) => invalid.push(e) });
    assert.equal(got.length, 1);
    assert.equal(invalid.length, 1);
  });

  test('a malformed after id is a RangeError', async () => {
    await assert.rejects(readVideoEvents(redis, keyspace, newVideoId(), { after: 'nope' }), RangeError);
  });
});

describe('cancel signal', () => {
  test('requestCancel sets the key and announces the id', async () => {
    const id = newVideoId();
    const subscriber = redis.duplicate();
    const heard: string[] = [];
    const stop = await onCancelRequested(subscriber, keyspace, (v) => heard.push(v));
    try {
      assert.equal(await isCancelRequested(redis, keyspace, id), false);
      const receivers = await requestCancel(redis, keyspace, id, { reason: 'user' });
      assert.equal(receivers, 1);
      assert.equal(await isCancelRequested(redis, keyspace, id), true);
      assert.equal(await getCancelRequest(redis, keyspace, id), 'user');
      assert.ok((await redis.ttl(keyspace.videoCancel(id))) > 0);
      await waitFor(() => heard.length === 1, 'the cancel announcement');
      assert.deepEqual(heard, [id]);
      await clearCancelRequest(redis, keyspace, id);
      assert.equal(await isCancelRequested(redis, keyspace, id), false);
    } finally {
      await stop();
      subscriber.disconnect();
    }
  });
});

describe('VideoEventHub', () => {
  let hub: VideoEventHub;
  const errors: Error[] = [];
  before(async () => {
    hub = new VideoEventHub({ redis, keyspace, blockMs: 30_000, onError: (e) => errors.push(e) });
    await hub.start();
  });
  after(async () => {
    await hub.close();
  });

  test('replays then tails; a new subscription interrupts the long block', async () => {
    const id = newVideoId();
    await publishVideoEvent(redis, keyspace, id, 'video.queued', { queue_position: 0 });
    const got: StoredVideoEvent[] = [];
    const sub = hub.subscribe(id, { onEvent: (e) => got.push(e) });
    await waitFor(() => got.length === 1, 'the replayed event');
    await publishVideoEvent(redis, keyspace, id, 'video.in_progress', {});
    await publishVideoEvent(redis, keyspace, id, 'video.completed', { chunks_total: 1, seconds: 2 });
    await waitFor(() => got.length === 3, 'the live events');
    assert.deepEqual(got.map((e) => e.event.type), ['video.queued', 'video.in_progress', 'video.completed']);
    sub.close();
    assert.deepEqual(hub.stats(), { videos: 0, subscribers: 0 });
  });

  test('subscribers of one video at different positions each get every event once, in order', async () => {
    const id = newVideoId();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await publishVideoEvent(redis, keyspace, id, 'video.progress', progress(i)));
    const a: string[] = [];
    const subA = hub.subscribe(id, { after: ids[3], onEvent: (e) => a.push(e.id) });
    await publishVideoEvent(redis, keyspace, id, 'video.progress', progress(50)).then((x) => ids.push(x));
    await waitFor(() => a.length === 2, 'subscriber A live');
    // B starts behind the group (catch-up read), C from the start, D ahead of the group.
    const b: string[] = [];
    const c: string[] = [];
    const subB = hub.subscribe(id, { after: ids[1], onEvent: (e) => b.push(e.id) });
    const subC = hub.subscribe(id, { onEvent: (e) => c.push(e.id) });
    for (let i = 0; i < 10; i++) ids.push(await publishVideoEvent(redis, keyspace, id, 'video.progress', progress(60 + i)));
    await waitFor(() => a.length === 12 && b.length === 14 && c.length === 16, 'all subscribers');
    assert.deepEqual(a, ids.slice(4));
    assert.deepEqual(b, ids.slice(2));
    assert.deepEqual(c, ids);
    subA.close();
    subB.close();
    subC.close();
  });

  test('many videos share the one blocking connection', async () => {
    const videos = Array.from({ length: 50 }, () => newVideoId());
    const counts = new Map<string, number>();
    const subs = videos.map((v) => hub.subscribe(v, { onEvent: () => counts.set(v, (counts.get(v) ?? 0) + 1) }));
    assert.equal(hub.stats().videos, 50);
    for (const v of videos) await publishVideoEvent(redis, keyspace, v, 'video.queued', { queue_position: 1 });
    for (const v of videos) await publishVideoEvent(redis, keyspace, v, 'video.in_progress', {});
    await waitFor(() => videos.every((v) => counts.get(v) === 2), 'events of all videos');
    for (const s of subs) s.close();
    assert.equal(hub.stats().subscribers, 0);
  });

  test('a closed subscription gets nothing more; off-contract entries are reported and skipped', async () => {
    const id = newVideoId();
    const got: string[] = [];
    const sub = hub.subscribe(id, { onEvent: (e) => got.push(e.event.type) });
    const other: string[] = [];
    const keep = hub.subscribe(id, { onEvent: (e) => other.push(e.event.type) });
    await redis.xadd(keyspace.videoEvents(id), '*', 'payload', 'not json');
    await publishVideoEvent(redis, keyspace, id, 'video.queued', { queue_position: 0 });
    await waitFor(() => got.length === 1 && other.length === 1, 'first event');
    assert.ok(errors.some((e) => e instanceof InvalidStreamEntryError));
    sub.close();
    await publishVideoEvent(redis, keyspace, id, 'video.cancelled', {});
    await waitFor(() => other.length === 2, 'second event');
    assert.deepEqual(got, ['video.queued']);
    keep.close();
  });
});
