/**
 * The pipeline's face to the outside: a `Generator` turns a request into an async stream of
 * decoded chunks. The worker (apps/worker) and the CLI depend on this interface only.
 */

/** What to generate. */
export interface GenerationRequest {
  prompt: string;
  /** Seconds to generate (rounded up to whole chunks, see `planChunks`). */
  seconds: number;
  /** 0..2^32-1; the same seed and settings give the same video on one backend. */
  seed: number;
  /** Denoising steps per chunk. @defaultValue the manifest's `sampler.steps` */
  steps?: number;
  /** Classifier-free guidance scale (1 = no guidance, one branch). @defaultValue manifest */
  guidance?: number;
  /** Flow-matching time shift. @defaultValue manifest */
  shift?: number;
}

/** Packed RGB24 frames: `count * height * width * 3` bytes (frame, row, column, channel). */
export interface RgbFrames {
  width: number;
  height: number;
  count: number;
  data: Uint8Array;
}

export interface GeneratedChunk {
  /** 0-based chunk index in the video. */
  index: number;
  chunksTotal: number;
  /** Index of the chunk's first frame in the video. */
  startFrame: number;
  frames: RgbFrames;
  /**
   * Serializes everything needed to continue after this chunk (recurrent state sets, sampler
   * position, decoder cache, RNG) into a new buffer: a snapshot, copied off the device and out of
   * every buffer the generator reuses, so it stays valid (and can be uploaded in the background)
   * while the next chunks compute. Resuming from it yields exactly the chunks an uninterrupted run
   * yields next. Lazy, so a caller that keeps only some checkpoints pays only for those; it must
   * be called before the next chunk is requested (it throws afterwards: the state has moved on).
   * Absent for generators that cannot resume (the teacher).
   */
  checkpoint?: () => Uint8Array;
}

/** Reported after every denoising step. */
export interface StepProgress {
  chunk: number;
  chunksTotal: number;
  /** 1-based step just finished within the chunk. */
  step: number;
  stepsTotal: number;
}

export interface GenerateOptions {
  /** Checked between denoising steps; an aborted signal rejects with its reason. */
  signal?: AbortSignal;
  onStep?: (p: StepProgress) => void;
  /** Continue from a checkpoint written after a chunk (resume or extend). */
  resumeFrom?: Uint8Array;
  /**
   * With `resumeFrom`: how to continue. `resume` (default) continues the same request (same
   * prompt, same plan); `extend` continues the video with this request's prompt and `seconds`
   * of new frames, numbering chunks after the checkpoint's.
   */
  resumeMode?: 'resume' | 'extend';
}

/** Geometry of what a generator produces. */
export interface GeneratorInfo {
  width: number;
  height: number;
  fps: number;
  /** Chunks, frames and real seconds a request of `seconds` produces. */
  plan(seconds: number): { chunks: number; frames: number; seconds: number };
  /** Frames decoded from chunk `index` (the first chunk of a causal VAE has fewer). */
  chunkFrames(index: number): number;
  /** Whether chunks carry checkpoints (student: yes; teacher: no). */
  resumable: boolean;
}

export interface Generator {
  readonly info: GeneratorInfo;
  generate(req: GenerationRequest, opts?: GenerateOptions): AsyncGenerator<GeneratedChunk, void, undefined>;
  /** Releases sessions and buffers. */
  close(): Promise<void>;
}

/** The abort reason a cancelled generation rejects with, unless the signal carries its own. */
export class GenerationAbortedError extends Error {
  override name = 'GenerationAbortedError';
}

/** Throws the signal's reason (or a {@link GenerationAbortedError}) when it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw signal.reason instanceof Error ? signal.reason : new GenerationAbortedError(String(signal.reason ?? 'aborted'));
  }
}
