import type { FailureCode, VideoStatus } from '@rehyat/contracts';

/** The video row fields the worker reads. */
export interface VideoRecord {
  id: string;
  status: VideoStatus;
  chunksTotal: number;
  chunksDone: number;
  /** 0..100 */
  progress: number;
  cancelRequestedAt: Date | null;
}

/** One shipped chunk, as recorded in the `chunks` table. */
export interface ChunkRecord {
  index: number;
  storageKey: string;
  frames: number;
  durationSeconds: number;
  bytes: number;
}

/**
 * What the worker writes to Postgres. Every method is idempotent for a retried or resumed job
 * (chunk rows are upserted by (video, index); usage is added, never overwritten).
 */
export interface VideoRepository {
  find(id: string): Promise<VideoRecord | null>;
  /** status `in_progress`, worker id, plan; `startedAt` only if not set yet. */
  markInProgress(id: string, opts: { workerId: string; chunksTotal: number; framesTotal: number }): Promise<void>;
  /** Upserts the chunk row and sets `chunksDone` and `progress`. */
  recordChunk(id: string, chunk: ChunkRecord, opts: { chunksDone: number; progress: number }): Promise<void>;
  /** Raises `progress` of a video in progress (never lowers it). */
  setProgress(id: string, progress: number): Promise<void>;
  /** Adds compute time (usage) to the video. */
  addGpuMs(id: string, ms: number): Promise<void>;
  complete(id: string, opts: { durationSeconds: number; framesTotal: number }): Promise<void>;
  /** status `failed` with the error; also the latest attempt's error (`lastError*`). */
  fail(id: string, code: FailureCode, message: string): Promise<void>;
  /**
   * The error of a failed attempt that will be retried: `lastError*` only; the status stays (the
   * video is not failed while attempts are left).
   */
  recordAttemptError(id: string, code: FailureCode, message: string): Promise<void>;
  cancel(id: string): Promise<void>;
}
