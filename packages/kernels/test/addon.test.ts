// The addon: sessions with the custom op, JS errors for bad input (never crashes), and one
// ONNX Runtime shared with onnxruntime-node in the same process.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import * as ort from 'onnxruntime-node';

import {
  createSession,
  KernelsError,
  missingCudaEpFiles,
  runtimeInfo,
  type HostTensor,
} from '../src/index.js';
import { model } from './support/models.js';
import { tensor } from './support/recurrent.js';

function feeds(B: number, H: number, Nc: number, d: number, Dp: number, Nt: number) {
  const n = (k: number) => Array.from({ length: k }, (_, i) => Math.sin(i) * 0.5);
  const p = (k: number) => Array.from({ length: k }, (_, i) => 0.1 + 0.05 * Math.cos(i));
  return {
    q: tensor('float32', [B, H, Nc, d], n(B * H * Nc * d)),
    k: tensor('float32', [B, H, Nc, d], n(B * H * Nc * d)),
    v: tensor('float32', [B, H, Nc, d], n(B * H * Nc * d)),
    fq: tensor('float32', [B, H, Nc, Dp], p(B * H * Nc * Dp)),
    fk: tensor('float32', [B, H, Nc, Dp], p(B * H * Nc * Dp)),
    S: tensor('float32', [B, H, Dp, d], new Array(B * H * Dp * d).fill(0)),
    z: tensor('float32', [B, H, Dp], new Array(B * H * Dp).fill(0)),
    k_tail: tensor('float32', [B, H, Nt, d], n(B * H * Nt * d)),
    v_tail: tensor('float32', [B, H, Nt, d], n(B * H * Nt * d)),
    fk_tail: tensor('float32', [B, H, Nt, Dp], p(B * H * Nt * Dp)),
  } satisfies Record<string, HostTensor>;
}

describe('addon', () => {
  it('runs a model with the custom op and returns every output with its shape', async () => {
    const s = await createSession(model('ha_f32_t8.onnx'));
    assert.deepEqual(s.inputNames, ['q', 'k', 'v', 'fq', 'fk', 'S', 'z', 'k_tail', 'v_tail', 'fk_tail']);
    const out = await s.run(feeds(1, 2, 11, 32, 16, 3));
    const y = out['y'] as HostTensor;
    assert.deepEqual(y.dims, [1, 2, 11, 32]);
    assert.equal(y.type, 'float32');
    assert.deepEqual((out['k_tail_out'] as HostTensor).dims, [1, 2, 8, 32]);
    assert.deepEqual((out['S_out'] as HostTensor).dims, [1, 2, 16, 32]);
    assert.ok(Array.from(y.data as Float32Array).every(Number.isFinite));
    s.release();
  });

  it('turns bad shapes and dtypes into JS errors', async () => {
    const s = await createSession(model('ha_f32_t8.onnx'));
    const good = feeds(1, 2, 5, 32, 16, 2);
    // wrong rank of a kernel input: the op's validation, an ORT error
    await assert.rejects(s.run({ ...good, q: tensor('float32', [2, 5, 32], new Array(320).fill(0)) }), (e: Error & { code?: string }) => {
      assert.match(e.message, /HybridAttention|q/);
      assert.match(String(e.code), /^ORT_/);
      return true;
    });
    // k disagreeing with q
    await assert.rejects(s.run({ ...good, k: tensor('float32', [1, 2, 6, 32], new Array(384).fill(0)) }), /input 'k' has shape/);
    // S with the wrong feature dim
    await assert.rejects(s.run({ ...good, S: tensor('float32', [1, 2, 15, 32], new Array(960).fill(0)) }), /input 'S'/);
    // float16 fed to a float32 model: ORT's type check
    await assert.rejects(s.run({ ...good, q: tensor('float16', [1, 2, 5, 32], new Array(320).fill(0)) }), /type|float16/i);
    // data length disagreeing with dims: the addon's check, before any native work
    await assert.rejects(s.run({ ...good, q: { type: 'float32', dims: [1, 2, 5, 32], data: new Float32Array(3) } }), (e: Error & { code?: string }) => e.code === 'REHYAT_BAD_INPUT');
    await assert.rejects(s.run({ ...good, q: { type: 'float32', dims: [1, 2, 5, 32], data: new Uint16Array(320) } as unknown as HostTensor }), /Float32Array/);
    await assert.rejects(s.run({ ...good, q: { type: 'complex', dims: [1], data: new Float32Array(1) } as unknown as HostTensor }), /unsupported element type/);
    await assert.rejects(s.run({ ...good, q: { type: 'float32', dims: [-1], data: new Float32Array(1) } }), /non-negative/);
    const { fk_tail: _missing, ...partial } = good;
    await assert.rejects(s.run(partial as unknown as typeof good), /input 'fk_tail' is missing/);
    await assert.rejects(s.run({ ...good, nope: good.q }), /not an input/);
    await assert.rejects(s.run(good, { outputs: { y: 'cuda' } }), /session runs on cpu/);
    await assert.rejects(s.run(good, { outputs: { y: 'gpu' as 'cuda' } }), /'cpu' or 'cuda'/);
    await assert.rejects(s.run(good, { sync: false }), /sync:false needs a cuda session/);
    await assert.rejects(s.run(good, { sync: 'no' as unknown as boolean }), /'sync' must be a boolean/);
    // the session still works after all that
    const out = await s.run(good);
    assert.deepEqual((out['y'] as HostTensor).dims, [1, 2, 5, 32]);
    s.release();
    await assert.rejects(s.run(good), /released/);
  });

  it('rejects bad session options and missing models', async () => {
    await assert.rejects(createSession(model('ha_f32_t8.onnx'), { provider: 'tpu' as 'cpu' }), KernelsError);
    await assert.rejects(createSession('/nonexistent/model.onnx'), (e: Error & { code?: string }) => /^ORT_/.test(String(e.code)));
    await assert.rejects(createSession(model('ha_f32_t8.onnx'), { intraOpThreads: -1 }), /intraOpThreads/);
    // without the custom ops the node is unknown to ONNX Runtime
    await assert.rejects(createSession(model('ha_f32_t8.onnx'), { customOps: false }), /HybridAttention|ai\.rehyat/);
  });

  it('names the missing files when CUDA is asked without the CUDA execution provider', async (t) => {
    const missing = missingCudaEpFiles();
    if (missing.length === 0) return t.skip('the CUDA execution provider is installed here');
    await assert.rejects(createSession(model('ha_f32_t8.onnx'), { provider: 'cuda' }), (e: KernelsError) => {
      assert.equal(e.code, 'REHYAT_CUDA_EP_MISSING');
      assert.ok(e.message.includes('libonnxruntime_providers_cuda.so'), e.message);
      assert.ok(e.message.includes('gpu:install'));
      return true;
    });
  });

  it('shares one ONNX Runtime and one OrtEnv with onnxruntime-node; sessions run side by side', async () => {
    const ortSession = await ort.InferenceSession.create(model('add_f32.onnx'));
    const a = await createSession(model('ha_f32_t8.onnx'), { intraOpThreads: 1 });
    const b = await createSession(model('ha_f32_t5.onnx'), { intraOpThreads: 1 });
    const info = runtimeInfo();
    assert.equal(info.ortVersion, '1.29.0');
    assert.equal(info.envShared, true, 'CreateEnv must return the process-wide OrtEnv');
    const [ra, rb, rc] = await Promise.all([
      a.run(feeds(1, 1, 9, 32, 8, 0)),
      b.run(feeds(2, 1, 4, 64, 8, 1)),
      ortSession.run({
        A: new ort.Tensor('float32', Float32Array.from([1, 2, 3]), [3]),
        B: new ort.Tensor('float32', Float32Array.from([10, 20, 30]), [3]),
      }),
    ]);
    assert.deepEqual((ra['k_tail_out'] as HostTensor).dims, [1, 1, 8, 32]);
    assert.deepEqual((rb['k_tail_out'] as HostTensor).dims, [2, 1, 5, 64]);
    assert.deepEqual(Array.from(rc['Y']!.data as Float32Array), [11, 22, 33]);
    // exactly one libonnxruntime.so.1 mapped into the process
    const maps = readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .map((l) => l.split(/\s+/)[5] ?? '')
      .filter((p) => p.includes('libonnxruntime.so'));
    assert.equal(new Set(maps).size, 1, `libonnxruntime mapped from ${[...new Set(maps)].join(', ')}`);
    a.release();
    b.release();
    await ortSession.release();
  });
});
