import { storageKeys, type VideoId } from '@rehyat/contracts';
import type { Logger } from '../logger.js';
import type { ObjectStore } from './generate.js';

/** When and how the processor writes resume checkpoints (the worker's `CHECKPOINT_*` config). */
export interface CheckpointPolicy {
  /**
   * Cadence: a checkpoint after chunk `i` when `(i + 1) % everyChunks === 0`, after the last chunk
   * of the video (an extension starts from it) and at a SIGTERM stop. 1: after every chunk.
   * @defaultValue `4` (config `CHECKPOINT_EVERY_CHUNKS`)
   */
  everyChunks: number;
  /**
   * Upload in the background while the next chunks compute (at most one upload in flight), instead
   * of making the chunk wait for it.
   * @defaultValue `true` (config `CHECKPOINT_ASYNC`)
   */
  async: boolean;
}

/**
 * Whether chunk `index` of a video of `chunksTotal` chunks gets a checkpoint by cadence. Absolute
 * chunk indexes, so a resumed job writes at the same positions as an uninterrupted one. The last
 * chunk always does: `POST /v1/videos/extensions` continues a completed video from its final
 * checkpoint (without it an extension would start from an earlier one and drop the chunks after it).
 */
export function checkpointDue(index: number, chunksTotal: number, everyChunks: number): boolean {
  return index + 1 >= chunksTotal || (index + 1) % Math.max(1, everyChunks) === 0;
}

/**
 * Writes one video's checkpoints to S3, in order, at most one upload in flight.
 *
 * `write` waits for the previous upload first (back-pressure: a slow store slows generation
 * instead of queueing snapshots in memory) and throws its failure; with `async` it then returns
 * as soon as the new upload has started, else when it is done. A failed background upload is kept
 * and thrown by the next `write`, `throwIfFailed` (the processor calls it after every chunk) or
 * `flush`: the attempt fails exactly as a failed synchronous upload fails it (the storage error
 * itself, classified as transient and retried), never silently. A checkpoint becomes a resume
 * point only once its PUT completed: S3's PUT is atomic (the embedded server's too), so the
 * listing that resume walks never shows one half-written.
 */
export class CheckpointWriter {
  #inFlight: Promise<void> | null = null;
  #failure: { err: unknown } | null = null;
  /** Indexes whose upload completed, in order (for logs and tests). */
  readonly written: number[] = [];

  constructor(
    private readonly storage: Pick<ObjectStore, 'put'>,
    private readonly videoId: VideoId,
    private readonly async: boolean,
    private readonly log: Logger,
  ) {}

  /** Uploads the checkpoint of chunk `index`; `body` must be a snapshot nothing writes into later. */
  async write(index: number, body: Uint8Array): Promise<void> {
    await this.flush();
    const started = Date.now();
    const upload = this.storage.put(storageKeys.checkpoint(this.videoId, index), body, { contentType: 'application/octet-stream' }).then(() => {
      this.written.push(index);
      this.log.debug('checkpoint written', { chunk: index, bytes: body.byteLength, ms: Date.now() - started, background: this.async });
    });
    if (!this.async) return upload;
    this.#inFlight = upload.then(
      () => {
        this.#inFlight = null;
      },
      (err: unknown) => {
        this.#inFlight = null;
        this.#failure ??= { err };
        this.log.warn('background checkpoint upload failed', { chunk: index, err });
      },
    );
  }

  /** Throws the failure of a background upload that already failed; does not wait. */
  throwIfFailed(): void {
    if (this.#failure) {
      const { err } = this.#failure;
      this.#failure = null;
      throw err;
    }
  }

  /** Waits for the upload in flight, then throws if a background upload failed. */
  async flush(): Promise<void> {
    if (this.#inFlight) await this.#inFlight;
    this.throwIfFailed();
  }

  /**
   * Waits for the upload in flight and drops a failure, for paths that already end the attempt
   * (cancel, another error): no upload outlives the job. Returns the dropped failure.
   */
  async settle(): Promise<unknown> {
    if (this.#inFlight) await this.#inFlight;
    const f = this.#failure;
    this.#failure = null;
    return f?.err;
  }
}
