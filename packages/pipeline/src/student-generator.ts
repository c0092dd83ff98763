import { disposeFeeds, toHost, type Feed } from './backend.js';
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
    // Everything the generator owns between steps: K state sets and the decoder cache. On
    // kernels+CUDA the states are device tensors; they are freed in the `finally` below on every
    // way out (done, return() from the caller, an error in a step, an abort).
    let states: StateSet[] = Array.from({ length: steps }, () => emptyStates(m, bb));
    let cache: Record<string, Feed> = m.emptyDecoderCache();
    try {
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
          // The outputs are ours from here: the new states replace set k (the run consumed the old
          // ones) before anything can throw, and every other output is freed once read.
          const old = states[k]!;
          states[k] = takeOutputs(out, IO.ditStep.state);
          let v: HostTensor;
          try {
            v = readAndFree(out, IO.ditStep.state, IO.ditStep.v);
          } finally {
            freeReplaced(old, states[k]!);
          }
          eulerStep(x, guide(v.data as Float32Array, latentLen, guidance), sigmas[k + 1]! - sigmas[k]!);
          opts.onStep?.({ chunk: c, chunksTotal, step: k + 1, stepsTotal: steps });
        }
        assertFinite(x, c);
        const dec = await m.vaeDecoder.run({ [IO.vae.z]: f32(latentDims, x), ...cache });
        const cacheNames = L.vae_decoder.caches.map((d) => d.name);
        const oldCache = cache;
        cache = takeOutputs(dec, cacheNames);
        let decoded: HostTensor;
        try {
          decoded = readAndFree(dec, cacheNames, IO.vae.frames);
        } finally {
          freeReplaced(oldCache, cache);
        }
        const frames = decoderOutputToRgb(decoded);
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
          cache: cacheNames,
        };
        // Serialized only when asked for, and only while the generator is paused at this chunk:
        // the next chunk (or the end of the generator) replaces and on the device frees the state
        // sets and the cache.
        let current = true;
        const checkpoint = () => {
          if (!current) throw new Error(`the checkpoint of chunk ${c} was asked for after the generator moved on (to the next chunk, or ended)`);
          return writeCheckpoint(meta, states, cache);
        };
        try {
          yield { index: c, chunksTotal, startFrame, frames, checkpoint };
        } finally {
          // Also when the caller return()s here: the state is about to be freed.
          current = false;
        }
      }
    } finally {
      releaseAll(states, cache);
    }
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

/**
 * The outputs `<name>_out` of a run, as the next set of `names` (the caller stores it before
 * anything else can throw). A missing one frees every output and throws.
 */
function takeOutputs(out: Record<string, Feed>, names: readonly string[]): StateSet {
  const next: StateSet = {};
  for (const name of names) {
    const t = out[stateOut(name)];
    if (!t) {
      disposeFeeds(Object.values(out));
      throw new GenerationError(`the graph returned no ${stateOut(name)}`);
    }
    next[name] = t;
  }
  return next;
}

/** Frees the device tensors of a set the run consumed (none of which is part of its successor). */
function freeReplaced(old: StateSet, next: StateSet): void {
  const kept = new Set(Object.values(next));
  disposeFeeds(Object.values(old).filter((t) => !kept.has(t)));
}

/** Copies output `name` to the host and frees every output except the adopted `<kept>_out` ones. */
function readAndFree(out: Record<string, Feed>, kept: readonly string[], name: string): HostTensor {
  const keep = new Set(kept.map(stateOut));
  try {
    const t = out[name];
    if (!t) throw new GenerationError(`the graph returned no ${name}`);
    return toHost(t);
  } finally {
    disposeFeeds(Object.entries(out).filter(([n]) => !keep.has(n)).map(([, t]) => t));
  }
}

function releaseAll(states: StateSet[], cache: Record<string, Feed>): void {
  disposeFeeds([...states.flatMap((s) => Object.values(s)), ...Object.values(cache)]);
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
