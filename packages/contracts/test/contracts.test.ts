import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import {
  EVENT_DATA,
  GenerateJobPayload,
  HEARTBEAT_TTL_S,
  Keyspace,
  WORKER_REGISTRY_PRUNE_AFTER_S,
  newVideoId,
  parseVideoEvent,
  VideoEventType,
  storageKeys,
  isVideoId,
  CONTRACT_VERSION,
} from '../src/index.js';

test('video ids are video_ plus 32 hex and unique', () => {
  const a = newVideoId();
  assert.ok(isVideoId(a));
  assert.notEqual(a, newVideoId());
  assert.ok(!isVideoId('video_XYZ'));
});

test('storage keys are deterministic and zero-padded', () => {
  const id = 'video_0123456789abcdef0123456789abcdef';
  assert.equal(storageKeys.segment(id, 7), `videos/${id}/segments/00007.m4s`);
  assert.equal(storageKeys.checkpoint(id, 12), `videos/${id}/checkpoints/00012.bin`);
  assert.throws(() => storageKeys.segment(id, -1), RangeError);
});

test('keyspace honours the prefix', () => {
  const ks = new Keyspace({ prefix: 't1' });
  const id = newVideoId();
  assert.equal(ks.videoEvents(id), `t1:video:${id}:events`);
  assert.equal(new Keyspace().cancelChannel(), 'rehyat:cancel');
});

test('the worker registry is one key beside the heartbeat hashes, outside their pattern', () => {
  const ks = new Keyspace({ prefix: 't1' });
  assert.equal(ks.workers(), 't1:workers');
  assert.equal(ks.workerHeartbeat('gpu-0'), 't1:worker:gpu-0');
  const pattern = new RegExp(`^${ks.workerHeartbeatPattern().replace('*', '.*')}$`);
  assert.ok(pattern.test(ks.workerHeartbeat('gpu-0')));
  assert.ok(!pattern.test(ks.workers()), 'a SCAN for heartbeat hashes does not meet the registry');
  assert.ok(WORKER_REGISTRY_PRUNE_AFTER_S >= 5 * HEARTBEAT_TTL_S, 'generous: a late beat or a skewed clock never drops a live worker');
});

test('job payload accepts the contract and rejects unknown versions', () => {
  const ok = {
    v: CONTRACT_VERSION,
    video_id: newVideoId(),
    model: 'rehyat-1',
    prompt: 'a red circle bounces',
    seconds: 4,
    width: 128,
    height: 128,
    seed: 42,
    steps: 8,
    guidance: 3,
    owner_id: 'key_1',
    created_at: new Date().toISOString(),
  };
  assert.deepEqual(GenerateJobPayload.parse(ok), ok);
  assert.throws(() => GenerateJobPayload.parse({ ...ok, v: 99 }));
  assert.throws(() => GenerateJobPayload.parse({ ...ok, seed: -1 }));
});

test('events parse per type and reject off-contract data', () => {
  const id = newVideoId();
  const ev = parseVideoEvent(
    JSON.stringify({
      type: 'video.progress',
      video_id: id,
      created_at: new Date().toISOString(),
      data: { progress: 50, chunk: 1, chunks_total: 2, step: 3, steps_total: 8, eta: null },
    }),
  );
  assert.equal(ev.type, 'video.progress');
  assert.throws(() =>
    parseVideoEvent(JSON.stringify({ type: 'video.chunk', video_id: id, created_at: 'x', data: { index: -1 } })),
  );
  assert.throws(() => parseVideoEvent(JSON.stringify({ type: 'video.exploded', video_id: id, created_at: 'x', data: {} })));
});

/** parseVideoEvent as it was before its envelope schema was built once: a new zod object per call. */
function parsePerCall(json: string): unknown {
  const raw: unknown = JSON.parse(json);
  const head = z
    .object({ type: VideoEventType, video_id: z.string(), created_at: z.string(), data: z.unknown() })
    .parse(raw);
  return { ...head, data: EVENT_DATA[head.type].parse(head.data) };
}

/** The outcome of a parse, comparable with deepEqual: the value, or the error's name and zod issues. */
function outcome(parse: (json: string) => unknown, json: string): unknown {
  try {
    return { ok: parse(json) };
  } catch (err) {
    const e = err as Error & { issues?: unknown };
    return { error: e.name, issues: e.issues ?? e.message };
  }
}

test('parseVideoEvent gives what a per-call schema gave, for every event type, valid or not', () => {
  const video_id = newVideoId();
  const created_at = '2026-01-01T00:00:00.000Z';
  const valid: Record<VideoEventType, object> = {
    'video.queued': { queue_position: 3 },
    'video.in_progress': { worker_id: 'gpu-0' },
    'video.progress': { progress: 12.5, chunk: 0, chunks_total: 4, step: 25, steps_total: 50, eta: 31 },
    'video.chunk': { index: 1, duration: 0.5, frames: 12, chunks_total: 4 },
    'video.completed': { chunks_total: 4, seconds: 2 },
    'video.failed': { code: 'device_error', message: 'CUDA error' },
    'video.cancelled': {},
  };
  const invalid: Record<VideoEventType, object> = {
    'video.queued': { queue_position: -1 },
    'video.in_progress': { worker_id: 7 },
    'video.progress': { progress: 101, chunk: 0, chunks_total: 4, step: 1, steps_total: 50, eta: null },
    'video.chunk': { index: 1, duration: 0, frames: 12, chunks_total: 4 },
    'video.completed': { chunks_total: 4 },
    'video.failed': { code: 'no_such_code', message: 'x' },
    'video.cancelled': { extra: true },
  };
  assert.deepEqual(Object.keys(valid).sort(), [...VideoEventType.options].sort(), 'a sample of every type');
  const cases: string[] = [];
  for (const type of VideoEventType.options) {
    cases.push(
      JSON.stringify({ type, video_id, created_at, data: valid[type] }),
      JSON.stringify({ type, video_id, created_at, data: valid[type], extra: 'dropped' }),
      JSON.stringify({ type, video_id, created_at, data: invalid[type] }),
      JSON.stringify({ type, video_id, created_at }),
      JSON.stringify({ type, video_id: 1, created_at, data: valid[type] }),
    );
  }
  cases.push('{', '[]', 'null', JSON.stringify({ type: 'video.exploded', video_id, created_at, data: {} }));

  let valids = 0;
  for (const json of cases) {
    const want = outcome(parsePerCall, json);
    assert.deepEqual(outcome(parseVideoEvent, json), want, json);
    assert.deepEqual(outcome(parseVideoEvent, json), want, `${json} (a second parse)`);
    if ('ok' in (want as object)) valids++;
  }
  assert.equal(valids, 2 * VideoEventType.options.length);
  const json = cases[0]!;
  assert.notEqual(parseVideoEvent(json), parseVideoEvent(json), 'a new object per call');
});
