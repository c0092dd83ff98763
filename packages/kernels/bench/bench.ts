// HybridAttention CUDA vs (a) the same math in standard ONNX ops on the CUDA EP and (b) full
// softmax attention (com.microsoft MultiHeadAttention on the CUDA EP), float16, whole videos of N
// tokens processed chunk by chunk with the recurrent state kept on the GPU.
// usage: node bench.mjs MODELS_DIR [quick]      (models: bench/make-bench-models.py)
// Prints one JSON object per measurement, then a markdown table.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import {
  closeness,
  createSession,
  cudaMemInfo,
  toFloat16Array,
  type DeviceTensor,
  type Feed,
  type HostTensor,
  type Session,
} from '../src/index.js';

const H100_PEAK_F16_TFLOPS = 989; // dense float16 tensor-core peak, H100 SXM
const modelsDir = process.argv[2] ?? '/tmp/rehyat-bench-models';
const quick = process.argv[3] === 'quick';
const only = process.argv[4]; // a geometry name prefix, e.g. 'Wan'
const opOnly = process.argv[5] === 'op-only'; // skip the baselines (a) and (b)

interface Geometry {
  name: string;
  H: number;
  d: number;
  Dp: number;
  P: number; // tokens per latent frame
  Tc: number;
  To: number;
  frames: number[];
}
const geometries: Geometry[] = [
  { name: 'ours (4x32, 64 tok/frame, Tc=2, To=1, D\'=32)', H: 4, d: 32, Dp: 32, P: 64, Tc: 2, To: 1, frames: [64, 584, 2340, 4680] },
  { name: 'Wan2.1-1.3B (12x128, 1560 tok/frame, Tc=3, To=1, D\'=128)', H: 12, d: 128, Dp: 128, P: 1560, Tc: 3, To: 1, frames: [3, 24, 96, 192] },
];
if (quick) for (const g of geometries) g.frames = g.frames.slice(0, 2);
if (only) geometries.splice(0, geometries.length, ...geometries.filter((g) => g.name.startsWith(only)));

let seed = 12345;
/** float16 bits of uniform draws in [lo, hi), written straight into a Uint16Array (no JS arrays: the
 * full-softmax inputs reach 460M elements) */
function h16(dims: number[], lo: number, hi: number): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const table = toFloat16Array(Array.from({ length: 4096 }, (_, i) => lo + ((hi - lo) * (i + 0.5)) / 4096));
  const data = new Uint16Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i] = table[x >>> 20]!;
  }
  seed = x;
  return { type: 'float16', dims, data };
}
const f32zeros = (dims: number[]): HostTensor => ({
  type: 'float32',
  dims,
  data: new Float32Array(dims.reduce((a, b) => a * b, 1)),
});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cudaOptions = { arena_extend_strategy: 'kSameAsRequested' };

function isDevice(f: Feed): f is DeviceTensor {
  return 'location' in f;
}

/** Runs a whole video chunk by chunk; returns seconds and the last chunk's outputs (on device). */
async function video(s: Session, g: Geometry, chunks: number, inputs: Record<string, DeviceTensor>, pipelined = false) {
  let state: Record<string, Feed> = {
    S: f32zeros([1, g.H, g.Dp, g.d]),
    z: f32zeros([1, g.H, g.Dp]),
    k_tail: h16([1, g.H, 0, g.d], 0, 1),
    v_tail: h16([1, g.H, 0, g.d], 0, 1),
    fk_tail: h16([1, g.H, 0, g.Dp], 0, 1),
  };
  const where = { y: 'cuda', S_out: 'cuda', z_out: 'cuda', k_tail_out: 'cuda', v_tail_out: 'cuda', fk_tail_out: 'cuda' } as const;
  let last: Record<string, HostTensor | DeviceTensor> = {};
  const t0 = performance.now();
  for (let c = 0; c < chunks; c++) {
    // pipelined: every run but the last returns once queued (sync: false); the last one's sync waits
    // for the session's stream, i.e. for the whole video
    const out = await s.run({ ...inputs, ...state }, { outputs: where, sync: !pipelined || c + 1 === chunks });
    for (const f of Object.values(state)) if (isDevice(f)) f.dispose();
    if (c + 1 < chunks) (out['y'] as DeviceTensor).dispose();
    state = {
      S: out['S_out']!,
      z: out['z_out']!,
      k_tail: out['k_tail_out']!,
      v_tail: out['v_tail_out']!,
      fk_tail: out['fk_tail_out']!,
    };
    last = out;
  }
  // the clock stops only when every stream of the device is idle: toHost() synchronises the device
  if (pipelined) (last['z_out'] as DeviceTensor).toHost();
  const secs = (performance.now() - t0) / 1000;
  return { secs, last };
}

function hybridFlops(g: Geometry, chunks: number): number {
  const Nc = g.Tc * g.P, tail = g.To * g.P;
  let f = 0;
  let Nt = 0;
  for (let c = 0; c < chunks; c++) {
    const Nw = Nt + Nc, Tn = Math.min(tail, Nw), leave = Nw - Tn;
    f += g.H * (4 * Nc * Nw * g.d + 2 * Nc * g.Dp * g.d + 2 * leave * g.Dp * g.d);
    Nt = Tn;
  }
  return f;
}

interface Row {
  geometry: string;
  N: number;
  method: string;
  ms?: number;
  tflops?: number;
  peakPct?: number;
  memMiB?: number;
  error?: string;
}
const rows: Row[] = [];
function record(r: Row) {
  rows.push(r);
  console.log(JSON.stringify(r));
}

async function measure(
  method: string,
  g: Geometry,
  N: number,
  flops: number,
  reps: number,
  body: () => Promise<{ time: () => Promise<number>; release: () => void }>,
) {
  const before = cudaMemInfo(0).free;
  try {
    const b = await body();
    await b.time(); // warm-up (kernels, cuBLAS handles, arena growth)
    const times: number[] = [];
    for (let i = 0; i < reps; i++) times.push(await b.time());
    const used = before - cudaMemInfo(0).free;
    b.release();
    const secs = median(times);
    record({
      geometry: g.name,
      N,
      method,
      ms: +(secs * 1000).toFixed(2),
      tflops: +(flops / secs / 1e12).toFixed(1),
      peakPct: +((100 * flops) / secs / 1e12 / H100_PEAK_F16_TFLOPS).toFixed(1),
      memMiB: Math.round(used / 2 ** 20),
    });
  } catch (e) {
    record({ geometry: g.name, N, method, error: (e as Error).message.split('\n')[0]!.slice(0, 160) });
  }
}

async function recurrentBody(
  file: string,
  g: Geometry,
  chunks: number,
  customOps: boolean,
  pipelined = false,
) {
  const s = await createSession(join(modelsDir, file), { provider: 'cuda', customOps, cudaOptions });
  const inputs = chunkInputs(s, g);
  return {
    time: async () => {
      const r = await video(s, g, chunks, inputs, pipelined);
      for (const t of Object.values(r.last)) if (isDevice(t)) t.dispose();
      return r.secs;
    },
    release: () => {
      for (const t of Object.values(inputs)) t.dispose();
      s.release();
    },
  };
}

async function agreement(g: Geometry) {
  // the fused op against the standard-op graph: 3 chunks, the last chunk's y and S
  const chunks = 3;
  const out: Record<string, Record<string, HostTensor>> = {};
  for (const [k, file, custom] of [['op', `ha_f16_t${g.To * g.P}.onnx`, true], ['std', `std_f16_t${g.To * g.P}_d${g.d}.onnx`, false]] as const) {
    seed = 777;
    const s = await createSession(join(modelsDir, file), { provider: 'cuda', customOps: custom, cudaOptions });
    const inputs = chunkInputs(s, g);
    const r = await video(s, g, chunks, inputs);
    out[k] = {
      y: (r.last['y'] as DeviceTensor).toHost(),
      S: (r.last['S_out'] as DeviceTensor).toHost(),
    };
    s.release();
  }
  for (const n of ['y', 'S']) {
    const c = closeness(hostValues(out['op']![n]!), hostValues(out['std']![n]!), 1e-2);
    console.log(JSON.stringify({ geometry: g.name, check: `op vs standard ops, ${n}`, ...c }));
  }
}
/** one chunk's q, k, v, fq, fk on the session's device (the same draws for every chunk of a video) */
function chunkInputs(s: Session, g: Geometry): Record<string, DeviceTensor> {
  const Nc = g.Tc * g.P;
  return {
    q: s.toDevice(h16([1, g.H, Nc, g.d], -1, 1)),
    k: s.toDevice(h16([1, g.H, Nc, g.d], -1, 1)),
    v: s.toDevice(h16([1, g.H, Nc, g.d], -1, 1)),
    fq: s.toDevice(h16([1, g.H, Nc, g.Dp], 0.01, 0.1)),
    fk: s.toDevice(h16([1, g.H, Nc, g.Dp], 0.01, 0.1)),
  };
}
const hostValues = (t: HostTensor) =>
  t.type === 'float16' ? Array.from(t.data as Uint16Array, (b) => halfToFloat(b)) : Array.from(t.data as Float32Array);
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}

/** pipelined runs (one stream per session, the addon's default) must give exactly what waiting for
 * every run gives: the whole largest video, last y and S */
async function pipelineCheck(g: Geometry, chunks: number) {
  const res: Record<string, { y: HostTensor; S: HostTensor }> = {};
  for (const pipelined of [false, true]) {
    seed = 999;
    const s = await createSession(join(modelsDir, `ha_f16_t${g.To * g.P}.onnx`), { provider: 'cuda', cudaOptions });
    const inputs = chunkInputs(s, g);
    const r = await video(s, g, chunks, inputs, pipelined);
    res[pipelined ? 'pipelined' : 'sync'] = {
      y: (r.last['y'] as DeviceTensor).toHost(),
      S: (r.last['S_out'] as DeviceTensor).toHost(),
    };
    for (const t of [...Object.values(r.last), ...Object.values(inputs)]) if (isDevice(t)) t.dispose();
    s.release();
  }
  for (const n of ['y', 'S'] as const) {
    const c = closeness(hostValues(res['pipelined']![n]), hostValues(res['sync']![n]), 1e-6);
    console.log(JSON.stringify({ geometry: g.name, check: `pipelined vs sync, ${chunks} chunks, ${n}`, ...c }));
  }
}

// keep one CUDA session alive so that the CUDA context is outside every memory delta
const keep = await createSession(join(modelsDir, `ha_f16_t64.onnx`), { provider: 'cuda', cudaOptions });
for (const g of geometries) {
  if (!opOnly) await agreement(g);
  await pipelineCheck(g, g.frames[g.frames.length - 1]! / g.Tc);
  for (const F of g.frames) {
    const N = F * g.P;
    const chunks = F / g.Tc;
    const hf = hybridFlops(g, chunks);
    await measure('HybridAttention (CUDA op)', g, N, hf, 3, () => recurrentBody(`ha_f16_t${g.To * g.P}.onnx`, g, chunks, true));
    await measure('HybridAttention (CUDA op), pipelined runs', g, N, hf, 3, () =>
      recurrentBody(`ha_f16_t${g.To * g.P}.onnx`, g, chunks, true, true),
    );
    if (opOnly) continue;
    await measure('same math, standard ONNX ops (CUDA EP)', g, N, hf, 3, () =>
      recurrentBody(`std_f16_t${g.To * g.P}_d${g.d}.onnx`, g, chunks, false),
    );
    const ff = 4 * N * N * g.d * g.H;
    await measure('full softmax, ORT MultiHeadAttention (CUDA EP)', g, N, ff, N > 100_000 ? 1 : 3, async () => {
      const s = await createSession(join(modelsDir, `mha_f16_h${g.H}_d${g.d}.onnx`), { provider: 'cuda', customOps: false, cudaOptions });
      const x = s.toDevice(h16([1, N, g.H * g.d], -1, 1));
      return {
        time: async () => {
          const t0 = performance.now();
          const out = await s.run({ query: x, key: x, value: x }, { outputs: { out: 'cuda' } });
          const secs = (performance.now() - t0) / 1000;
          (out['out'] as DeviceTensor).dispose();
          return secs;
        },
        release: () => {
          x.dispose();
          s.release();
        },
      };
    });
  }
}
keep.release();

console.log('\n| geometry | N tokens | method | time ms | TFLOP/s | % of H100 fp16 peak | GPU mem MiB |');
console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: |');
for (const r of rows)
  console.log(
    `| ${r.geometry} | ${r.N} | ${r.method} | ${r.error ? `failed: ${r.error}` : r.ms} | ${r.tflops ?? ''} | ${r.peakPct ?? ''} | ${r.memMiB ?? ''} |`,
  );
