// REHYAT_TEST_CUDA=1 only: a long run of chunks with S, z and the tails kept on the GPU
// (DeviceTensors fed back as inputs, no host copies) against the CPU op over the same chunks.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { closeness, createSession } from '../src/index.js';
import { model } from './support/models.js';
import { Rng } from './support/random.js';
import { quantize, runRecurrent, tensor, type Dtype } from './support/recurrent.js';

const enabled = process.env['REHYAT_TEST_CUDA'] === '1';

describe('CUDA long run, state on the GPU', { skip: !enabled && 'REHYAT_TEST_CUDA=1 not set' }, () => {
  for (const dtype of ['float16', 'float32'] as Dtype[])
    it(`${dtype}: 48 chunks of 200 tokens, H=4, d=64, Dp=96, tail 64`, async () => {
      const B = 1, H = 4, d = 64, Dp = 96, chunks = new Array(48).fill(200) as number[];
      const N = chunks.reduce((a, b) => a + b, 0);
      const rng = new Rng(4242);
      const BH = B * H;
      const seq = quantize(
        {
          BH, N, d, Dp,
          q: rng.normals(BH * N * d), k: rng.normals(BH * N * d), v: rng.normals(BH * N * d),
          fq: rng.positives(BH * N * Dp, 0.01, 0.2), fk: rng.positives(BH * N * Dp, 0.01, 0.2),
        },
        dtype,
      );
      const file = `ha_${dtype === 'float32' ? 'f32' : 'f16'}_t64.onnx`;
      const cpu = await createSession(model(file), { provider: 'cpu' });
      const gpu = await createSession(model(file), { provider: 'cuda' });
      const want = await runRecurrent(cpu, seq, { B, H, chunks, dtype });
      const got = await runRecurrent(gpu, seq, { B, H, chunks, dtype, stateOnDevice: true });
      const tol = dtype === 'float32' ? 1e-5 : 2e-3;
      for (const [name, a, e, t] of [['y', got.y, want.y, tol], ['S', got.S, want.S, 1e-5], ['z', got.z, want.z, 1e-5]] as const) {
        const c = closeness(a, e, t);
        assert.ok(c.ok, `${name}: maxAbs ${c.maxAbs.toExponential(2)} relRms ${c.relRms.toExponential(2)}`);
      }
      cpu.release();
      gpu.release();
    });

  it('float16, pipelined runs (sync: false): 48 chunks queued without waiting equal the CPU op', async () => {
    const B = 1, H = 4, d = 64, Dp = 96, chunks = Array.from({ length: 48 }, (_, i) => 150 + (i % 5) * 37);
    const N = chunks.reduce((a, b) => a + b, 0);
    const rng = new Rng(777);
    const BH = B * H;
    const seq = quantize(
      {
        BH, N, d, Dp,
        q: rng.normals(BH * N * d), k: rng.normals(BH * N * d), v: rng.normals(BH * N * d),
        fq: rng.positives(BH * N * Dp, 0.01, 0.2), fk: rng.positives(BH * N * Dp, 0.01, 0.2),
      },
      'float16',
    );
    const cpu = await createSession(model('ha_f16_t64.onnx'), { provider: 'cpu' });
    const gpu = await createSession(model('ha_f16_t64.onnx'), { provider: 'cuda' });
    const want = await runRecurrent(cpu, seq, { B, H, chunks, dtype: 'float16' });
    const got = await runRecurrent(gpu, seq, { B, H, chunks, dtype: 'float16', pipelined: true });
    for (const [name, a, e, t] of [['y', got.y, want.y, 2e-3], ['S', got.S, want.S, 1e-5], ['z', got.z, want.z, 1e-5]] as const) {
      const c = closeness(a, e, t);
      assert.ok(c.ok, `${name}: maxAbs ${c.maxAbs.toExponential(2)} relRms ${c.relRms.toExponential(2)}`);
    }
    // ORT's own default (a stream per run from a pool) would race: pipelined runs are refused there
    const pooled = await createSession(model('ha_f16_t64.onnx'), { provider: 'cuda', cudaOptions: { use_ep_level_unified_stream: '0' } });
    const feeds = {
      q: tensor('float16', [1, 1, 1, 64], new Array(64).fill(0)), k: tensor('float16', [1, 1, 1, 64], new Array(64).fill(0)), v: tensor('float16', [1, 1, 1, 64], new Array(64).fill(0)),
      fq: tensor('float16', [1, 1, 1, 96], new Array(96).fill(0.1)), fk: tensor('float16', [1, 1, 1, 96], new Array(96).fill(0.1)),
      S: tensor('float32', [1, 1, 96, 64], new Array(96 * 64).fill(0)), z: tensor('float32', [1, 1, 96], new Array(96).fill(0)),
      k_tail: tensor('float16', [1, 1, 0, 64], []), v_tail: tensor('float16', [1, 1, 0, 64], []), fk_tail: tensor('float16', [1, 1, 0, 96], []),
    };
    const all = { y: 'cuda', S_out: 'cuda', z_out: 'cuda', k_tail_out: 'cuda', v_tail_out: 'cuda', fk_tail_out: 'cuda' } as const;
    await assert.rejects(pooled.run(feeds, { outputs: all, sync: false }), /one stream/);
    await assert.rejects(gpu.run(feeds, { outputs: { ...all, y: 'cpu' }, sync: false }), /every output on 'cuda'/);
    pooled.release();
    cpu.release();
    gpu.release();
  });
});
