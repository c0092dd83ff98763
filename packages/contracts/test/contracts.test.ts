import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  GenerateJobPayload,
  Keyspace,
  newVideoId,
  parseVideoEvent,
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
