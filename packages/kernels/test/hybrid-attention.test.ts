// The CPU op (and, with REHYAT_TEST_CUDA=1, the CUDA op) against the independent naive form.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { closeness, createSession, type Session } from '../src/index.js';
import { model } from './support/models.js';
import { naiveHybrid, type Sequence } from './support/naive.js';
import { Rng } from './support/random.js';
import { quantize, runRecurrent, type Dtype } from './support/recurrent.js';

const providers: ('cpu' | 'cuda')[] = process.env['REHYAT_TEST_CUDA'] === '1' ? ['cpu', 'cuda'] : ['cpu'];

interface Case {
  name: string;
  B: number;
  H: number;
  d: number;
  Dp: number;
  chunks: number[];
  tail: 0 | 5 | 8 | 20 | 64;
}

const cases: Case[] = [
  { name: 'one chunk, Nt=0, d=32, Dp=24', B: 1, H: 1, d: 32, Dp: 24, chunks: [37], tail: 8 },
  { name: 'B*H=6, odd chunks, d=64, Dp=48', B: 2, H: 3, d: 64, Dp: 48, chunks: [20, 33, 17, 29], tail: 8 },
  { name: 'd=128, Dp=96, tail 20', B: 1, H: 2, d: 128, Dp: 96, chunks: [40, 41, 39], tail: 20 },
  { name: 'To=0 (no overlap)', B: 1, H: 2, d: 32, Dp: 40, chunks: [16, 16, 16], tail: 0 },
  { name: 'tail longer than chunks', B: 1, H: 1, d: 64, Dp: 64, chunks: [10, 20, 50, 7], tail: 64 },
  { name: 'single-token chunks, tail 5', B: 1, H: 2, d: 32, Dp: 16, chunks: [1, 1, 3, 1, 9, 2], tail: 5 },
  { name: 'Dp > d, 130-token chunks', B: 1, H: 1, d: 32, Dp: 80, chunks: [130, 130], tail: 20 },
  { name: 'd=128, Dp=128, several key tiles', B: 1, H: 2, d: 128, Dp: 128, chunks: [150, 150, 150], tail: 64 },
];

function sequence(rng: Rng, BH: number, N: number, d: number, Dp: number): Sequence {
  return {
    BH,
    N,
    d,
    Dp,
    q: rng.normals(BH * N * d),
    k: rng.normals(BH * N * d),
    v: rng.normals(BH * N * d),
    fq: rng.positives(BH * N * Dp, 0.02, 0.3),
    fk: rng.positives(BH * N * Dp, 0.02, 0.3),
  };
}

const sessions = new Map<string, Session>();
async function session(file: string, provider: 'cpu' | 'cuda'): Promise<Session> {
  const key = `${file}:${provider}`;
  let s = sessions.get(key);
  if (!s) {
    s = await createSession(model(file), { provider, intraOpThreads: 2 });
    sessions.set(key, s);
  }
  return s;
}
after(() => {
  for (const s of sessions.values()) s.release();
});

function expectClose(what: string, actual: Float64Array, expected: Float64Array, tol: number): void {
  const c = closeness(actual, expected, tol);
  assert.ok(c.ok, `${what}: maxAbs ${c.maxAbs.toExponential(2)} relRms ${c.relRms.toExponential(2)} (tol ${tol})`);
}

for (const provider of providers)
  for (const dtype of ['float32', 'float16'] as Dtype[])
    describe(`HybridAttention ${provider} ${dtype} vs the naive form`, () => {
      const tol = dtype === 'float32' ? 1e-5 : 2e-3;
      for (const c of cases)
        it(c.name, async () => {
          const N = c.chunks.reduce((a, b) => a + b, 0);
          const rng = new Rng(1234 + c.d * 7 + c.Dp + N);
          const seq = quantize(sequence(rng, c.B * c.H, N, c.d, c.Dp), dtype);
          const want = naiveHybrid(seq, c.chunks, c.tail, 1 / Math.sqrt(c.d));
          const s = await session(`ha_${dtype === 'float32' ? 'f32' : 'f16'}_t${c.tail}.onnx`, provider);
          const got = await runRecurrent(s, seq, {
            B: c.B,
            H: c.H,
            chunks: c.chunks,
            dtype,
            stateOnDevice: provider === 'cuda',
          });
          expectClose('y', got.y, want.y, tol);
          // S and z are float32 sums of the (rounded) inputs: float32 accuracy in both dtypes
          expectClose('S', got.S, want.S, 1e-5);
          expectClose('z', got.z, want.z, 1e-5);
        });
    });

for (const provider of providers)
  describe(`HybridAttention ${provider} attributes`, () => {
    it('scale attribute overrides 1/sqrt(d)', async () => {
      const rng = new Rng(99);
      const seq = quantize(sequence(rng, 2, 30, 32, 16), 'float32');
      const want = naiveHybrid(seq, [12, 18], 8, 0.2);
      const got = await runRecurrent(await session('ha_f32_t8_s02.onnx', provider), seq, {
        B: 1,
        H: 2,
        chunks: [12, 18],
        dtype: 'float32',
      });
      expectClose('y', got.y, want.y, 1e-5);
    });
  });
