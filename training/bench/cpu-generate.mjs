// Reference chunk-major generation with the exported standard-op graphs on onnxruntime-node (CPU),
// timed. It is also a compact executable description of how to drive the release:
//   node training/bench/cpu-generate.mjs models/rehyat-5 "a red circle bounces on a blue background" 4
// prints JSON: time to first chunk, total, frames, per-call timings, mean pixel value.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import os from 'node:os';

const require = createRequire(join(process.cwd(), 'package.json'));
const ort = require('onnxruntime-node');
const [dir = 'models/rehyat-5', prompt = 'a red circle bounces on a blue background', secondsArg = '4'] = process.argv.slice(2);
const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const vocab = JSON.parse(readFileSync(join(dir, m.tokenizer.file), 'utf8'));
const opts = { executionProviders: ['cpu'], intraOpNumThreads: os.availableParallelism() };
const load = (k) => ort.InferenceSession.create(join(dir, m.files[k].path), opts);
const t0 = performance.now();
const [textS, stepS, vaeS] = await Promise.all([load('text_encoder'), load('dit_step'), load('vae_decoder')]);
const tLoad = performance.now() - t0;

function tokenize(text) {
  const stoi = new Map(vocab.vocab.map((w, i) => [w, i]));
  const ids = [vocab.bos_id, ...(text.toLowerCase().match(/[a-z]+/g) ?? []).map((w) => stoi.get(w) ?? vocab.unk_id)];
  const out = ids.slice(0, vocab.max_len);
  while (out.length < vocab.max_len) out.push(vocab.pad_id);
  return out;
}
let seed = 12345;
function randn() { // deterministic normal (LCG + Box-Muller); the pipeline defines its own RNG
  seed = (seed * 1103515245 + 12345) % 2147483648; const u = (seed + 1) / 2147483649;
  seed = (seed * 1103515245 + 12345) % 2147483648; const v = (seed + 1) / 2147483649;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
const { steps, shift, guidance } = m.sampler;
const ts = Array.from({ length: steps + 1 }, (_, i) => { const u = 1 - i / steps; return (shift * u) / (1 + (shift - 1) * u); });
const st = m.student;
const L = st.layers, H = st.heads, d = st.head_dim, Dp = st.feature_dim;
const C = m.latent.channels, h = m.latent.height, w = m.latent.width, Tc = st.tc_latent_frames;
const chunks = Math.max(1, Math.ceil((Number(secondsArg) * m.video.fps) / m.video.chunk_frames));

const ids = [...tokenize(prompt), ...tokenize('')];
const tText = performance.now();
const { context } = await textS.run({ ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [2, vocab.max_len]) });
const textMs = performance.now() - tText;
const zeros = (dims) => new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
const B = 2; // [cond; uncond]
const states = Array.from({ length: steps }, () => ({ S: zeros([L, B, H, Dp, d]), z: zeros([L, B, H, Dp]),
  k_tail: zeros([L, B, H, 0, d]), v_tail: zeros([L, B, H, 0, d]), fk_tail: zeros([L, B, H, 0, Dp]) }));
let caches = m.vae_decoder.caches.map((c) => zeros(c.shape));
const n = C * Tc * h * w;
let firstChunkMs = 0, stepMs = 0, decMs = 0, frames = 0, sum = 0;
const tGen = performance.now();
for (let ci = 0; ci < chunks; ci++) {
  const x = Float32Array.from({ length: n }, randn);
  for (let i = 0; i < steps; i++) {
    const xin = new Float32Array(2 * n); xin.set(x); xin.set(x, n);
    const s = states[i];
    const t1 = performance.now();
    const out = await stepS.run({ x: new ort.Tensor('float32', xin, [B, C, Tc, h, w]), t: new ort.Tensor('float32', Float32Array.from([ts[i], ts[i]]), [B]),
      context, frame_offset: new ort.Tensor('int64', BigInt64Array.from([BigInt(ci * Tc)]), [1]), ...s });
    stepMs += performance.now() - t1;
    states[i] = { S: out.S_out, z: out.z_out, k_tail: out.k_tail_out, v_tail: out.v_tail_out, fk_tail: out.fk_tail_out };
    const v = out.velocity.data; const dt = ts[i + 1] - ts[i];
    for (let j = 0; j < n; j++) x[j] += dt * (v[n + j] + guidance * (v[j] - v[n + j]));
  }
  const t2 = performance.now();
  const feeds = { latent: new ort.Tensor('float32', x, [1, C, Tc, h, w]) };
  caches.forEach((c, i) => { feeds[`cache_${i}`] = c; });
  const dec = await vaeS.run(feeds);
  decMs += performance.now() - t2;
  caches = caches.map((_, i) => dec[`cache_${i}_out`]);
  frames += dec.frames.dims[1];
  for (const v of dec.frames.data) sum += v;
  if (ci === 0) firstChunkMs = performance.now() - tGen;
}
const totalMs = performance.now() - tGen;
console.log(JSON.stringify({ machine: `${os.cpus()[0].model} x${os.availableParallelism()}`, ort: '1.29.0 (onnxruntime-node, CPU EP)',
  prompt, chunks, frames, seconds: frames / m.video.fps, steps, guidance,
  load_ms: Math.round(tLoad), text_ms: Math.round(textMs), first_chunk_ms: Math.round(firstChunkMs), total_ms: Math.round(totalMs),
  dit_step_ms_per_call: +(stepMs / (chunks * steps)).toFixed(1), vae_ms_per_chunk: +(decMs / chunks).toFixed(1),
  frames_per_second: +(frames / (totalMs / 1000)).toFixed(2), mean_pixel: +(sum / (frames * m.video.width * m.video.height * 3)).toFixed(4) }));
