import { disposeFeeds, toHost, type Feed } from './backend.js';
import { decoderOutputToRgb } from './frames.js';
import { throwIfAborted, type GenerateOptions, type GeneratedChunk, type GenerationRequest, type Generator, type GeneratorInfo } from './generator.js';
import { IO, stateOut } from './layout.js';
import type { LoadedModel } from './loaded-model.js';
import { NoiseRng } from './rng.js';
import { eulerStep, guide, sigmaSchedule, usesGuidance } from './sampler.js';
import { GenerationError } from './student-generator.js';
import { concat0, f32 } from './tensor.js';

/**
 * The full-softmax teacher: the whole latent video at once, step-major (every step runs over all
 * T latent frames), then decoded chunk by chunk. Same noise as the student for the same seed (chunk
 * t's noise is the t-th block of the RNG stream, placed at its frames), so the two can be compared.
 * Memory grows with video length (quadratically in attention); it cannot resume or extend.
 */
export class TeacherGenerator implements Generator {
  readonly info: GeneratorInfo;
  constructor(readonly model: LoadedModel) {
    if (!model.teacher) throw new Error('TeacherGenerator needs a model loaded with its teacher graph');
    this.info = model.info(false);
  }

  async *generate(req: GenerationRequest, opts: GenerateOptions = {}): AsyncGenerator<GeneratedChunk, void, undefined> {
    if (opts.resumeFrom) throw new GenerationError('the teacher cannot resume or extend a video');
    const m = this.model;
    const L = { ...m.layout.latent, tc: m.layout.student.tc_latent_frames };
    const s = m.files.manifest.sampler;
    const steps = req.steps ?? s.steps;
    const guidance = req.guidance ?? s.guidance;
    const shift = req.shift ?? s.shift;
    const maxS = m.files.manifest.limits.teacher_max_seconds;
    if (maxS !== undefined && req.seconds > maxS) throw new GenerationError(`the teacher generates at most ${maxS} s in one piece`);
    const cfg = usesGuidance(guidance);
    const bb = cfg ? 2 : 1;
    const chunks = this.info.plan(req.seconds).chunks;
    const T = chunks * L.tc;
    const hw = L.height * L.width;
    const dims = [1, L.channels, T, L.height, L.width];
    const n = L.channels * T * hw;

    // Chunk t's noise [C, Tc, h, w] is drawn exactly as the student draws it, then placed at its frames.
    const rng = new NoiseRng(req.seed);
    const x = new Float32Array(n);
    for (let c = 0; c < chunks; c++) {
      const block = rng.normals(L.channels * L.tc * hw);
      for (let ch = 0; ch < L.channels; ch++)
        x.set(block.subarray(ch * L.tc * hw, (ch + 1) * L.tc * hw), (ch * T + c * L.tc) * hw);
    }
    const context = await m.encodeText(req.prompt, cfg);
    const sigmas = sigmaSchedule(steps, shift);
    for (let k = 0; k < steps; k++) {
      throwIfAborted(opts.signal);
      const xt = f32(dims, x);
      const out = await m.teacher!.run({
        [IO.teacher.x]: cfg ? concat0(xt, xt) : xt,
        [IO.teacher.t]: f32([bb], new Float32Array(bb).fill(sigmas[k]!)),
        [IO.teacher.context]: context,
      });
      let v;
      try {
        v = toHost(out[IO.teacher.v]!);
      } finally {
        disposeFeeds(Object.values(out));
      }
      eulerStep(x, guide(v.data as Float32Array, n, guidance), sigmas[k + 1]! - sigmas[k]!);
      // The teacher has no chunks while denoising: report steps against chunk 0 of 1 pass.
      opts.onStep?.({ chunk: 0, chunksTotal: chunks, step: k + 1, stepsTotal: steps });
    }
    for (let i = 0; i < n; i++) if (!Number.isFinite(x[i]!)) throw new GenerationError('the teacher produced a non-finite latent');

    // The decoder cache is host memory on every backend today; freed on every way out all the same.
    let cache: Record<string, Feed> = m.emptyDecoderCache();
    try {
      let startFrame = 0;
      for (let c = 0; c < chunks; c++) {
        throwIfAborted(opts.signal);
        const z = new Float32Array(L.channels * L.tc * hw);
        for (let ch = 0; ch < L.channels; ch++) z.set(x.subarray((ch * T + c * L.tc) * hw, (ch * T + (c + 1) * L.tc) * hw), ch * L.tc * hw);
        const dec = await m.vaeDecoder.run({ [IO.vae.z]: f32([1, L.channels, L.tc, L.height, L.width], z), ...cache });
        const next: Record<string, Feed> = {};
        for (const d of m.layout.vae_decoder.caches) next[d.name] = dec[stateOut(d.name)]!;
        const kept = new Set(Object.values(next));
        const old = cache;
        cache = next;
        let decoded;
        try {
          decoded = toHost(dec[IO.vae.frames]!);
        } finally {
          disposeFeeds([...Object.values(old), ...Object.values(dec)].filter((t) => !kept.has(t)));
        }
        const frames = decoderOutputToRgb(decoded);
        yield { index: c, chunksTotal: chunks, startFrame, frames };
        startFrame += frames.count;
      }
    } finally {
      disposeFeeds(Object.values(cache));
    }
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}
