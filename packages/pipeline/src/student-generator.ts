import { toHost, type Feed } from './backend.js';
import { CheckpointFormatError, decodeCheckpoint, encodeCheckpoint, type NamedTensor } from './checkpoint.js';
import { decoderOutputToRgb } from './frames.js';
import {
  throwIfAborted,
  type GenerateOptions,
  type GeneratedChunk,
  type GenerationRequest,
  type Generator,
  type GeneratorInfo,
} from './generator.js';
import { emptyStateDims, IO, stateOut } from './layout.js';
import type { LoadedModel } from './loaded-model.js';
import { NoiseRng, type RngState } from './rng.js';
import { eulerStep, guide, sigmaSchedule, usesGuidance } from './sampler.js';
import { concat0, f32, type HostTensor } from './tensor.js';

/** The model produced something that cannot be a video (NaN/Inf, wrong shape). */
export class GenerationError extends Error {
  override name = 'GenerationError';
}

/** What a student checkpoint's metadata holds besides the tensors. */
interface StudentCheckpointMeta {
  kind: 'rehyat-student';
  model_version: string;
  /** Index of the chunk just finished. */
  chunk: number;
  chunks_total: number;
  /** Pixel frames produced up to and including `chunk`. */
  frames_done: number;
  prompt: string;
  seed: number;
  steps: number;
  guidance: number;
  shift: number;
  rng: RngState;
  /** Names of the decoder cache tensors (stored as `cache/<name>`). */
  cache: string[];
}

type StateSet = Record<string, Feed>;

/**
 * The ReHyAt student, chunk-major: for chunk t, every denoising step k runs `dit_step` with state
 * set k (the conditional and unconditional branches batched, each with its own rows of the
 * state), then the chunk is decoded through the VAE decoder with its carried cache and yielded.
 * Memory: K state sets and one decoder cache, whatever the video length.
 *
 * Noise: one `NoiseRng(seed)` stream; chunk t's initial latent `[1, C, Tc, h, w]` is the next
 * `C*Tc*h*w` normals (row-major). Every chunk offers a checkpoint (serialized on demand) holding
 * all K state sets, the decoder cache, the RNG state and the position, so a resumed run yields
 * exactly the same chunks.
 */
export class StudentGenerator implements Generator {
  readonly info: GeneratorInfo;
  constructor(readonly model: LoadedModel) {
    if (!model.ditStep) throw new Error('StudentGenerator needs a model loaded with its dit_step graph');
    this.info = model.info(true);
  }

  async *generate(req: GenerationRequest, opts: GenerateOptions = {}): AsyncGenerator<GeneratedChunk, void, undefined> {
    const m = this.model;
    const sampler = m.files.manifest.sampler;
    const L = m.layout;
    const steps = req.steps ?? sampler.steps;
    const guidance = req.guidance ?? sampler.guidance;
    const shift = req.shift ?? sampler.shift;
    const cfg = usesGuidance(guidance);
    const bb = cfg ? 2 : 1;
    const tc = L.student.tc_latent_frames;
    const latentLen = L.latent.channels * tc * L.latent.height * L.latent.width;
    const latentDims = [1, L.latent.channels, tc, L.latent.height, L.latent.width];

    let first = 0;
    let chunksTotal = this.info.plan(req.seconds).chunks;
    let framesDone = 0;
    let rng = new NoiseRng(req.seed);
    let states: StateSet[] = Array.from({ length: steps }, () => emptyStates(m, bb));
    let cache: Record<string, Feed> = m.emptyDecoderCache();

    if (opts.resumeFrom) {
      const ck = readCheckpoint(opts.resumeFrom, m.version);
      const meta = ck.meta;
      if (meta.steps !== steps || meta.guidance !== guidance || meta.shift !== shift) {
        throw new CheckpointFormatError(
          `checkpoint was made with steps=${meta.steps} guidance=${meta.guidance} shift=${meta.shift}; this request has steps=${steps} guidance=${guidance} shift=${shift}`,
        );
      }
      first = meta.chunk + 1;
      framesDone = meta.frames_done;
      rng = NoiseRng.fromState(meta.rng);
      states = ck.states;
      cache = ck.cache;
      if (opts.resumeMode === 'extend') {
        const per = this.info.chunkFrames(first);
        chunksTotal = first + Math.max(1, Math.ceil((req.seconds * this.info.fps) / per));
      } else {
        if (meta.prompt !== req.prompt || meta.seed !== req.seed) throw new CheckpointFormatError('checkpoint belongs to another request (prompt or seed differ)');
        chunksTotal = meta.chunks_total;
      }
    }

    const context = await m.encodeText(req.prompt, cfg);
    const sigmas = sigmaSchedule(steps, shift);
    const ditStep = m.ditStep!;

    for (let c = first; c < chunksTotal; c++) {
      const x = rng.normals(latentLen);
      const frameOffset = BigInt(c * tc);
      for (let k = 0; k < steps; k++) {
        throwIfAborted(opts.signal);
        const xt = f32(latentDims, x);
        const feeds: Record<string, Feed> = {
          [IO.ditStep.x]: cfg ? concat0(xt, xt) : xt,
          [IO.ditStep.t]: f32([bb], new Float32Array(bb).fill(sigmas[k]!)),
          [IO.ditStep.context]: context,
          [IO.ditStep.frameOffset]: { type: 'int64', dims: [1], data: BigInt64Array.of(frameOffset) },
          ...states[k],
        };
        const out = await ditStep.run(feeds, IO.ditStep.state.map(stateOut));
        const v = toHost(out[IO.ditStep.v]!);
        const next: StateSet = {};
        for (const name of IO.ditStep.state) next[name] = out[stateOut(name)]!;
        disposeAll(states[k]!);
        states[k] = next;
        eulerStep(x, guide(v.data as Float32Array, latentLen, guidance), sigmas[k + 1]! - sigmas[k]!);
        opts.onStep?.({ chunk: c, chunksTotal, step: k + 1, stepsTotal: steps });
      }
      assertFinite(x, c);
      const dec = await m.vaeDecoder.run({ [IO.vae.z]: f32(latentDims, x), ...cache });
      const nextCache: Record<string, Feed> = {};
      for (const cdef of L.vae_decoder.caches) nextCache[cdef.name] = dec[stateOut(cdef.name)]!;
      cache = nextCache;
      const frames = decoderOutputToRgb(toHost(dec[IO.vae.frames]!));
      const startFrame = framesDone;
      framesDone += frames.count;
      const meta: StudentCheckpointMeta = {
        kind: 'rehyat-student',
        model_version: m.version,
        chunk: c,
        chunks_total: chunksTotal,
        frames_done: framesDone,
        prompt: req.prompt,
        seed: req.seed,
        steps,
        guidance,
        shift,
        rng: rng.state(),
        cache: L.vae_decoder.caches.map((d) => d.name),
      };
      // Serialized only when asked for, and only while the generator is paused at this chunk:
      // the next chunk replaces (and on the device disposes) the state sets and the cache.
      let current = true;
      const checkpoint = () => {
        if (!current) throw new Error(`the checkpoint of chunk ${c} was asked for after the generator moved on to the next chunk`);
        return writeCheckpoint(meta, states, cache);
      };
      yield { index: c, chunksTotal, startFrame, frames, checkpoint };
      current = false;
    }
    for (const s of states) disposeAll(s);
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}

function emptyStates(m: LoadedModel, b: number): StateSet {
  const dims = emptyStateDims(m.layout, b);
  const out: StateSet = {};
  for (const name of IO.ditStep.state) out[name] = f32(dims[name]);
  return out;
}

function disposeAll(s: StateSet): void {
  for (const t of Object.values(s)) if ('location' in t) t.dispose();
}

function assertFinite(x: Float32Array, chunk: number): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]!)) throw new GenerationError(`the model produced a non-finite latent in chunk ${chunk} (element ${i})`);
  }
}

function writeCheckpoint(meta: StudentCheckpointMeta, states: StateSet[], cache: Record<string, Feed>): Uint8Array {
  const tensors = new Map<string, NamedTensor>();
  const put = (name: string, f: Feed) => {
    const h = toHost(f);
    tensors.set(name, { dtype: h.type as NamedTensor['dtype'], dims: [...h.dims], data: h.data });
  };
  states.forEach((s, k) => {
    for (const [name, t] of Object.entries(s)) put(`state/${k}/${name}`, t);
  });
  for (const [name, t] of Object.entries(cache)) put(`cache/${name}`, t);
  return encodeCheckpoint(meta, tensors);
}

function readCheckpoint(buf: Uint8Array, version: string): { meta: StudentCheckpointMeta; states: StateSet[]; cache: Record<string, HostTensor> } {
  const { meta: raw, tensors } = decodeCheckpoint(buf);
  const meta = raw as StudentCheckpointMeta;
  if (meta?.kind !== 'rehyat-student') throw new CheckpointFormatError('not a student checkpoint');
  if (meta.model_version !== version) throw new CheckpointFormatError(`checkpoint is from model ${meta.model_version}, this is ${version}`);
  const states: StateSet[] = Array.from({ length: meta.steps }, () => ({}));
  const cache: Record<string, HostTensor> = {};
  for (const [name, t] of tensors) {
    const host: HostTensor = { type: t.dtype, dims: t.dims, data: t.data };
    const m = /^state\/(\d+)\/(.+)$/.exec(name);
    if (m) states[Number(m[1])]![m[2]!] = host;
    else if (name.startsWith('cache/')) cache[name.slice(6)] = host;
  }
  for (const [k, s] of states.entries()) {
    for (const n of IO.ditStep.state) if (!s[n]) throw new CheckpointFormatError(`checkpoint lacks state ${n} of step ${k}`);
  }
  for (const n of meta.cache) if (!cache[n]) throw new CheckpointFormatError(`checkpoint lacks decoder cache ${n}`);
  return { meta, states, cache };
}
