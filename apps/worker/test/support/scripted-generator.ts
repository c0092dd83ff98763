/**
 * A test double of the pipeline's `Generator` for the worker's tests: deterministic frames (a
 * square whose position and colour depend on the seed, prompt and frame index), a few "denoising
 * steps" per chunk with a small delay, checkpoints that carry the position, and the AbortSignal
 * honoured between steps exactly as the real pipeline does. The real model is exercised by the
 * pipeline's and the end-to-end tests; this double keeps the worker's tests about the worker.
 */
import { planChunks } from '@rehyat/contracts';
import {
  decodeCheckpoint,
  encodeCheckpoint,
  throwIfAborted,
  type GenerateOptions,
  type GeneratedChunk,
  type GenerationRequest,
  type Generator,
} from '@rehyat/pipeline';

export const VIDEO = { width: 64, height: 48, fps: 8, first_chunk_frames: 5, chunk_frames: 8 };

export class ScriptedGenerator implements Generator {
  readonly info = {
    width: VIDEO.width,
    height: VIDEO.height,
    fps: VIDEO.fps,
    resumable: true,
    plan: (seconds: number) => planChunks({ video: VIDEO }, seconds),
    chunkFrames: (i: number) => (i === 0 ? VIDEO.first_chunk_frames : VIDEO.chunk_frames),
  };
  /** Chunks produced by this instance (to check resumes skip shipped chunks). */
  produced: number[] = [];
  constructor(readonly stepDelayMs = 15) {}

  async *generate(req: GenerationRequest, opts: GenerateOptions = {}): AsyncGenerator<GeneratedChunk> {
    const steps = req.steps ?? 3;
    let first = 0;
    let total = this.info.plan(req.seconds).chunks;
    let salt = req.prompt.length;
    if (opts.resumeFrom) {
      const meta = decodeCheckpoint(opts.resumeFrom).meta as { chunk: number; total: number; salt: number };
      first = meta.chunk + 1;
      if (opts.resumeMode === 'extend') {
        total = first + Math.max(1, Math.ceil((req.seconds * VIDEO.fps) / VIDEO.chunk_frames));
        salt = meta.salt + req.prompt.length;
      } else {
        total = meta.total;
        salt = meta.salt;
      }
    }
    for (let c = first; c < total; c++) {
      for (let s = 1; s <= steps; s++) {
        throwIfAborted(opts.signal);
        await new Promise((r) => setTimeout(r, this.stepDelayMs));
        opts.onStep?.({ chunk: c, chunksTotal: total, step: s, stepsTotal: steps });
      }
      throwIfAborted(opts.signal);
      const startFrame = c === 0 ? 0 : VIDEO.first_chunk_frames + (c - 1) * VIDEO.chunk_frames;
      const count = this.info.chunkFrames(c);
      this.produced.push(c);
      yield {
        index: c,
        chunksTotal: total,
        startFrame,
        frames: render(req.seed + salt, startFrame, count),
        checkpoint: () => encodeCheckpoint({ chunk: c, total, salt }, new Map()),
      };
    }
  }
  async close(): Promise<void> {}
}

function render(seed: number, start: number, count: number) {
  const { width: W, height: H } = VIDEO;
  const data = new Uint8Array(count * W * H * 3);
  for (let f = 0; f < count; f++) {
    const t = start + f;
    const cx = (seed * 7 + t * 3) % W;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const o = ((f * H + y) * W + x) * 3;
        const sq = Math.abs(x - cx) < 6 && Math.abs(y - 24) < 6;
        data[o] = sq ? 240 : 20;
        data[o + 1] = sq ? (seed * 13) & 255 : 40;
        data[o + 2] = sq ? 30 : 160;
      }
  }
  return { width: W, height: H, count, data };
}
