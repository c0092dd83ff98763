import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CheckpointFormatError,
  ModelUnavailableError,
  NoiseRng,
  decodeCheckpoint,
  encodeCheckpoint,
  guide,
  loadManifest,
  sigmaSchedule,
  type NamedTensor,
} from '../src/index.js';

describe('NoiseRng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    assert.deepEqual(new NoiseRng(42).normals(8), new NoiseRng(42).normals(8));
    assert.notDeepEqual(new NoiseRng(42).normals(8), new NoiseRng(43).normals(8));
  });
  it('resumes from a serialized state mid-pair', () => {
    const a = new NoiseRng(7);
    a.normals(3); // leaves a spare Box-Muller value pending
    const state = JSON.parse(JSON.stringify(a.state()));
    const b = NoiseRng.fromState(state);
    assert.deepEqual(a.normals(101), b.normals(101));
  });
  it('gives standard normal samples', () => {
    const x = new NoiseRng(1).normals(200_000);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const varc = x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length;
    assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(varc - 1) < 0.02, `variance ${varc}`);
  });
  it('matches the documented xoshiro128** reference output', () => {
    // splitmix32(0) words, then xoshiro128**: first outputs pinned so a refactor cannot drift.
    const r = new NoiseRng(0);
    const first = [r.nextUint32(), r.nextUint32(), r.nextUint32()];
    assert.deepEqual(first, PINNED_SEED0);
  });
  it('rejects seeds outside 0..2^32-1', () => {
    assert.throws(() => new NoiseRng(-1), RangeError);
    assert.throws(() => new NoiseRng(2 ** 32), RangeError);
  });
});

describe('checkpoint container', () => {
  it('round-trips metadata and tensors of every dtype', () => {
    const t = new Map<string, NamedTensor>([
      ['s', { dtype: 'float32', dims: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6.5]) }],
      ['h', { dtype: 'float16', dims: [3], data: Uint16Array.from([1, 2, 3]) }],
      ['i', { dtype: 'int64', dims: [1], data: BigInt64Array.from([-5n]) }],
      ['e', { dtype: 'float32', dims: [2, 0, 4], data: new Float32Array(0) }],
      ['b', { dtype: 'uint8', dims: [5], data: Uint8Array.from([9, 8, 7, 6, 5]) }],
    ]);
    const buf = encodeCheckpoint({ chunk: 3, rng: { s: [1, 2, 3, 4], spare: null } }, t);
    // decode from an unaligned copy
    const shifted = new Uint8Array(buf.length + 1);
    shifted.set(buf, 1);
    const back = decodeCheckpoint(shifted.subarray(1));
    // and from a Node Buffer living inside a larger pooled ArrayBuffer (what S3 reads return)
    const pooled = Buffer.concat([Buffer.alloc(13), Buffer.from(buf)]).subarray(13);
    const fromPool = decodeCheckpoint(pooled);
    assert.deepEqual(Array.from(fromPool.tensors.get('s')!.data as Float32Array), [1, 2, 3, 4, 5, 6.5]);
    assert.deepEqual(back.meta, { chunk: 3, rng: { s: [1, 2, 3, 4], spare: null } });
    for (const [k, v] of t) {
      assert.deepEqual(back.tensors.get(k)!.dims, v.dims);
      assert.deepEqual(Array.from(back.tensors.get(k)!.data as ArrayLike<number | bigint>), Array.from(v.data as ArrayLike<number | bigint>));
    }
  });
  it('rejects other bytes clearly', () => {
    assert.throws(() => decodeCheckpoint(new Uint8Array(20)), CheckpointFormatError);
    assert.throws(() => decodeCheckpoint(new Uint8Array(3)), CheckpointFormatError);
  });
});

describe('sampler', () => {
  it('sigma grid runs 1 -> 0, shift pushes it up', () => {
    const a = sigmaSchedule(4, 1);
    assert.deepEqual(Array.from(a), [1, 0.75, 0.5, 0.25, 0]);
    const b = sigmaSchedule(4, 3);
    assert.equal(b[0], 1);
    assert.equal(b[4], 0);
    for (let i = 1; i < 4; i++) assert.ok(b[i]! > a[i]!);
  });
  it('guidance combines the batch halves', () => {
    const v = guide(Float32Array.from([2, 4, 1, 1]), 2, 3);
    assert.deepEqual(Array.from(v), [4, 10]);
    assert.throws(() => guide(new Float32Array(3), 2, 1), RangeError);
  });
});

describe('manifest loading', () => {
  async function fixture(): Promise<{ dir: string; body: Buffer }> {
    const dir = await mkdtemp(join(tmpdir(), 'rehyat-manifest-'));
    const body = Buffer.from('not really onnx, but hashed');
    await writeFile(join(dir, 'dit_step.onnx'), body);
    const manifest = {
      format: 1,
      version: 'test-1',
      models: { student: 'rehyat-test' },
      video: { width: 32, height: 32, fps: 8, first_chunk_frames: 1, chunk_frames: 4 },
      limits: { sizes: ['32x32'], min_seconds: 1, max_seconds: 4, max_prompt_chars: 100, max_steps: 10 },
      sampler: { steps: 4, shift: 3, guidance: 4 },
      files: { dit_step: { path: 'dit_step.onnx', sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length } },
    };
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    return { dir, body };
  }
  it('loads and verifies', async () => {
    const { dir } = await fixture();
    const m = await loadManifest(dir);
    assert.equal(m.manifest.version, 'test-1');
    assert.equal(m.path('dit_step'), join(dir, 'dit_step.onnx'));
    await rm(dir, { recursive: true });
  });
  it('a missing or altered file is model_unavailable, naming the file', async () => {
    const { dir } = await fixture();
    await writeFile(join(dir, 'dit_step.onnx'), 'not really onnx, but HASHED');
    await assert.rejects(loadManifest(dir), (e: Error) => e instanceof ModelUnavailableError && /dit_step\.onnx fails its sha256/.test(e.message));
    await rm(join(dir, 'dit_step.onnx'));
    await assert.rejects(loadManifest(dir), (e: Error) => e instanceof ModelUnavailableError && /dit_step\.onnx .* is missing/.test(e.message));
    await assert.rejects(loadManifest(join(dir, 'nope')), ModelUnavailableError);
    await rm(dir, { recursive: true });
  });
});

// Computed by an independent Python implementation of splitmix32 + xoshiro128**.
const PINNED_SEED0 = [1789933344, 44971166, 2521387044];
