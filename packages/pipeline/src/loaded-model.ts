import { readFile } from 'node:fs/promises';
import { planChunks } from '@rehyat/contracts';
import { openSession, type BackendOptions, type ModelSession } from './backend.js';
import type { GeneratorInfo } from './generator.js';
import { readLayout, IO, type ModelLayout } from './layout.js';
import { loadManifest, ModelUnavailableError, type LoadedManifest } from './manifest.js';
import { f32, type HostTensor } from './tensor.js';
import { Tokenizer } from './tokenizer.js';

/** Manifest `files` keys the pipeline reads. */
export const FILE_KEYS = {
  vocab: 'vocab',
  textEncoder: 'text_encoder',
  vaeDecoder: 'vae_decoder',
  ditStep: 'dit_step',
  ditStepCustom: 'dit_step_custom',
  teacher: 'teacher_dit',
} as const;

export interface LoadModelOptions extends BackendOptions {
  /** Verify file hashes at load. @defaultValue true */
  verify?: boolean;
  /** Open the teacher graph too. @defaultValue false */
  teacher?: boolean;
  /** Open the student graphs. @defaultValue true */
  student?: boolean;
  /**
   * Wraps every session as it is opened (`graph`: its manifest `files` key, e.g. `dit_step`):
   * accounting, profiling, fault injection in tests. @defaultValue none
   */
  instrument?: (graph: string, session: ModelSession) => ModelSession;
}

/**
 * One model version, opened: manifest, layout, tokenizer and the ONNX sessions. Shared by the
 * student and the teacher generator of that version.
 */
export class LoadedModel {
  private constructor(
    readonly files: LoadedManifest,
    readonly layout: ModelLayout,
    readonly tokenizer: Tokenizer,
    readonly textEncoder: ModelSession,
    readonly vaeDecoder: ModelSession,
    readonly ditStep: ModelSession | null,
    readonly teacher: ModelSession | null,
    readonly options: LoadModelOptions,
  ) {}

  static async load(dir: string, opts: LoadModelOptions = {}): Promise<LoadedModel> {
    const files = await loadManifest(dir, { verify: opts.verify ?? true });
    const layout = readLayout(files.manifest);
    let vocab: unknown;
    try {
      vocab = JSON.parse(await readFile(files.path(FILE_KEYS.vocab), 'utf8'));
    } catch (err) {
      if (err instanceof ModelUnavailableError) throw err;
      throw new ModelUnavailableError(`model ${files.manifest.version}: vocab cannot be read: ${(err as Error).message}`);
    }
    const tokenizer = Tokenizer.fromJson(vocab);
    const backend = opts.backend ?? 'ort';
    // Text encoder and VAE decoder are standard-op graphs: onnxruntime-node runs them on both backends.
    const std = { ...opts, backend: 'ort' as const };
    const opened: ModelSession[] = [];
    const open = async (key: string, o: BackendOptions) => {
      const raw = await openSession(files.path(key), o);
      let s = raw;
      try {
        if (opts.instrument) s = opts.instrument(key, raw);
      } catch (err) {
        await raw.release().catch(() => undefined);
        throw err;
      }
      opened.push(s);
      return s;
    };
    try {
      const textEncoder = await open(FILE_KEYS.textEncoder, std);
      const vaeDecoder = await open(FILE_KEYS.vaeDecoder, std);
      const ditStep = opts.student === false ? null : await open(backend === 'kernels' ? FILE_KEYS.ditStepCustom : FILE_KEYS.ditStep, opts);
      const teacher = opts.teacher ? await open(FILE_KEYS.teacher, std) : null;
      return new LoadedModel(files, layout, tokenizer, textEncoder, vaeDecoder, ditStep, teacher, opts);
    } catch (err) {
      // A graph that cannot open (e.g. the kernels addon missing) must not strand the ones before it.
      for (const s of opened) await s.release().catch(() => undefined);
      throw err;
    }
  }

  get version(): string {
    return this.files.manifest.version;
  }

  /** Geometry shared by both generators of this version. */
  info(resumable: boolean): GeneratorInfo {
    const v = this.files.manifest.video;
    return {
      width: v.width,
      height: v.height,
      fps: v.fps,
      resumable,
      plan: (seconds) => planChunks(this.files.manifest, seconds),
      chunkFrames: (i) => (i === 0 ? v.first_chunk_frames : v.chunk_frames),
    };
  }

  /** Text context `[b, L, D]` for `[prompt]` or, with guidance, `[prompt, ""]`. */
  async encodeText(prompt: string, withUncond: boolean): Promise<HostTensor> {
    const texts = withUncond ? [prompt, ''] : [prompt];
    const ids = this.tokenizer.batch(texts);
    const out = await this.textEncoder.run({ [IO.textEncoder.ids]: { type: 'int64', dims: [texts.length, this.tokenizer.maxLen], data: ids } });
    const ctx = out[IO.textEncoder.context] ?? Object.values(out)[0];
    if (!ctx || 'location' in ctx) throw new ModelUnavailableError('text encoder returned no context');
    return ctx;
  }

  /** Zero decoder cache for batch 1. */
  emptyDecoderCache(): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const c of this.layout.vae_decoder.caches) out[c.name] = f32(c.shape);
    return out;
  }

  /** Releases every session (each one even if another fails; the first error is rethrown). */
  async close(): Promise<void> {
    const results = await Promise.allSettled(
      [this.textEncoder, this.vaeDecoder, this.ditStep, this.teacher].map(async (s) => {
        await s?.release();
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
