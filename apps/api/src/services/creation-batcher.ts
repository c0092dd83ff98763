import { Job, type Queue } from 'bullmq';
import { JOBS, generationJobId, type GenerateJobPayload, type Keyspace, type VideoId } from '@rehyat/contracts';
import { insertVideos, type NewVideoRow, type PgPool } from '@rehyat/db';
import { appendVideoEvent, type EventTransaction } from '@rehyat/events';
import type { FairAssignment } from '@rehyat/ratelimit';
import { ApiError } from '../errors.js';

/** One new video on its way into Postgres and the queue. */
export interface NewVideo {
  row: NewVideoRow;
  payload: GenerateJobPayload;
  /** The caller inserted the row already (with its idempotency record): only queue it. */
  inserted: boolean;
}

export interface CreationBatcherOptions {
  pool: PgPool;
  queue: Queue;
  keyspace: Keyspace;
  /**
   * Fair BullMQ priorities and queue positions of a batch's jobs, in order (`FairPriority.assignMany`).
   * Absent: FIFO, no priority; positions from the wait list's length.
   */
  assignPriorities?: (ownerIds: string[]) => Promise<FairAssignment[]>;
  /** Deletes rows (and their idempotency records) whose job could not be queued. */
  removeRows: (videoIds: string[]) => Promise<void>;
  /**
   * Most videos in one batch.
   * @defaultValue 256
   */
  maxBatch?: number;
  /**
   * Batches in flight at once (one fills while another is written).
   * @defaultValue 2
   */
  maxInFlight?: number;
  /** Called once per batch with its size (metrics). */
  onBatch?: (size: number) => void;
}

interface Pending {
  video: NewVideo;
  resolve: (r: { position: number }) => void;
  reject: (err: unknown) => void;
}

export const DATABASE_FAILED_MESSAGE = 'The database could not store the video; it was not created. Try again.';
export const QUEUE_FAILED_MESSAGE = 'The job queue is unavailable; the video was not created. Try again.';

/**
 * Group commit for video creation. Every creation request hands its row and job payload to
 * `submit`; the creations that arrive while the previous batch is being written (or in the same
 * event-loop turn) go out together:
 *
 * 1. Postgres: one prepared multi-row INSERT of the batch's rows (`insertVideos`, all or none),
 *    and, at the same time, Redis: one script call for the batch's fair priorities and queue
 *    positions (`assignPriorities`) or one LLEN.
 * 2. Redis: one MULTI with, per video, its `video.queued` event (stream + feed) and its BullMQ
 *    job (`Job#addJob` on the transaction: the exact script `queue.add` runs).
 *
 * Batches overlap (`maxInFlight`), but take turns in Redis: a batch places and queues its jobs
 * only after the previous batch's MULTI has run, so positions count every job queued before.
 * So a batch of n creations costs 3 round trips instead of about 6n. Outcomes are per request
 * and nothing is half-made: if the INSERT fails, every request of the batch whose row it carried
 * fails with 503 `service_unavailable` and nothing is queued for them; if a video's event or job
 * cannot be queued, its row is deleted again and its request fails with 503. A fair priority
 * handed out for a row that then failed is simply skipped (that key's next job is one slot later).
 */
export class CreationBatcher {
  readonly #opts: CreationBatcherOptions;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  #pending: Pending[] = [];
  /** The Redis part of the latest batch (batches take turns there, in order). */
  #redisTurn: Promise<void> = Promise.resolve();
  #inFlight = 0;
  #scheduled = false;
  #idle: Array<() => void> = [];

  constructor(opts: CreationBatcherOptions) {
    this.#opts = opts;
    this.#maxBatch = opts.maxBatch ?? 256;
    this.#maxInFlight = opts.maxInFlight ?? 2;
  }

  /** Stores and queues one video; resolves with its queue position once both are done. */
  submit(video: NewVideo): Promise<{ position: number }> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ video, resolve, reject });
      this.#kick();
    });
  }

  /** Resolves once every submitted video has been settled. */
  async drain(): Promise<void> {
    if (this.#pending.length === 0 && this.#inFlight === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #kick(): void {
    if (this.#scheduled || this.#inFlight >= this.#maxInFlight || this.#pending.length === 0) return;
    this.#scheduled = true;
    // After the I/O callbacks of this turn: every request parsed in it joins the batch.
    setImmediate(() => {
      this.#scheduled = false;
      while (this.#inFlight < this.#maxInFlight && this.#pending.length > 0) {
        const batch = this.#pending.splice(0, this.#maxBatch);
        this.#inFlight++;
        this.#opts.onBatch?.(batch.length);
        this.#flush(batch)
          .catch((err: unknown) => {
            for (const p of batch) p.reject(err);
          })
          .finally(() => {
            this.#inFlight--;
            this.#kick();
            if (this.#pending.length === 0 && this.#inFlight === 0) for (const done of this.#idle.splice(0)) done();
          });
      }
    });
  }

  /**
   * One batch: its INSERT starts at once (it may overlap the previous batch's Redis work); its
   * Redis part waits for the previous batch's to finish, so that its positions count the
   * previous batch's jobs (added by then) and priorities are handed out in batch order.
   */
  async #flush(batch: Pending[]): Promise<void> {
    const fresh = batch.filter((p) => !p.video.inserted);
    const inserting = insertVideos(this.#opts.pool, fresh.map((p) => p.video.row)).then(
      () => ({ status: 'fulfilled' as const }),
      (reason: unknown) => ({ status: 'rejected' as const, reason }),
    );
    const turn = this.#redisTurn.then(() => this.#queueBatch(batch, fresh, inserting));
    this.#redisTurn = turn.catch(() => undefined);
    await turn;
  }

  async #queueBatch(
    batch: Pending[],
    fresh: Pending[],
    inserting: Promise<{ status: 'fulfilled' } | { status: 'rejected'; reason: unknown }>,
  ): Promise<void> {
    const { queue, keyspace } = this.#opts;
    const [placed, inserted] = await Promise.all([
      this.#place(batch).then(
        (value) => ({ status: 'fulfilled' as const, value }),
        (reason: unknown) => ({ status: 'rejected' as const, reason }),
      ),
      inserting,
    ]);

    let live = batch;
    let assignments = placed.status === 'fulfilled' ? placed.value : [];
    if (inserted.status === 'rejected') {
      for (const p of fresh) p.reject(new ApiError('service_unavailable', DATABASE_FAILED_MESSAGE, { cause: inserted.reason }));
      live = batch.filter((p) => p.video.inserted);
      // Positions counted the failed rows that would have run earlier: take them out again.
      if (placed.status === 'fulfilled') {
        assignments = [];
        batch.forEach((p, i) => {
          if (!p.video.inserted) return;
          const a = placed.value[i]!;
          let skipped = 0;
          for (let j = 0; j < i; j++) if (!batch[j]!.video.inserted && placed.value[j]!.priority <= a.priority) skipped++;
          assignments.push({ priority: a.priority, position: a.position - skipped });
        });
      }
    }
    if (live.length === 0) return;
    if (placed.status === 'rejected') {
      await this.#fail(live, placed.reason);
      return;
    }

    const client = await queue.getBackend().client;
    const tx = client.multi();
    const spans: Array<{ p: Pending; k: number; first: number; count: number }> = [];
    const unqueued: Array<{ p: Pending; err: unknown }> = [];
    let at = 0;
    live.forEach((p, k) => {
      const { priority, position } = assignments[k]!;
      const id = p.video.row.id as VideoId;
      try {
        const job = JOBS.generate;
        const opts = {
          ...(priority > 0 ? { priority } : {}),
          jobId: generationJobId(id),
          attempts: job.attempts,
          backoff: job.backoff,
          removeOnComplete: { age: 24 * 3600, count: 10_000 },
          removeOnFail: { age: 7 * 24 * 3600 },
        };
        // Both checked before anything is queued: a throw leaves the MULTI without this video.
        const bullJob = new Job(queue, job.name, p.video.payload, opts, opts.jobId);
        const events = appendVideoEvent(tx as unknown as EventTransaction, keyspace, id, 'video.queued', { queue_position: position });
        bullJob.addJob(tx).catch(() => undefined); // the reply is read from exec() below
        spans.push({ p, k, first: at, count: events + 1 });
        at += events + 1;
      } catch (err) {
        unqueued.push({ p, err });
      }
    });
    if (unqueued.length) await this.#fail(unqueued.map((u) => u.p), unqueued[0]!.err);
    if (spans.length === 0) return;

    let results: Array<[Error | null, unknown]> | null;
    try {
      results = (await tx.exec()) as Array<[Error | null, unknown]> | null;
    } catch (err) {
      await this.#fail(spans.map((s) => s.p), err);
      return;
    }
    if (!results) {
      await this.#fail(spans.map((s) => s.p), new Error('MULTI aborted'));
      return;
    }
    const failed: Array<{ p: Pending; err: unknown; jobAdded: boolean }> = [];
    for (const s of spans) {
      const replies = results.slice(s.first, s.first + s.count);
      const addReply = replies.at(-1);
      const jobAdded = addReply !== undefined && addReply[0] === null && !(typeof addReply[1] === 'number' && addReply[1] < 0);
      const err = replies.find(([e]) => e !== null)?.[0] ?? (jobAdded ? null : new Error(`BullMQ add answered ${String(addReply?.[1])}`));
      if (err) failed.push({ p: s.p, err, jobAdded });
      else s.p.resolve({ position: assignments[s.k]!.position });
    }
    if (failed.length) {
      // A job without its event (or the other way round) is not a created video: take it back.
      await Promise.all(
        failed.filter((f) => f.jobAdded).map((f) => queue.remove(generationJobId(f.p.video.row.id as VideoId)).catch(() => undefined)),
      );
      await this.#fail(failed.map((f) => f.p), failed[0]!.err);
    }
  }

  /** Priorities (0: none) and queue positions of the batch's jobs, in batch order. */
  async #place(batch: Pending[]): Promise<FairAssignment[]> {
    if (this.#opts.assignPriorities) return this.#opts.assignPriorities(batch.map((p) => p.video.row.ownerId));
    const client = await this.#opts.queue.getBackend().client;
    const waiting = Number(await client.llen(this.#opts.queue.keys.wait!));
    return batch.map((_, i) => ({ priority: 0, position: waiting + i }));
  }

  /** The queue step failed for `items`: delete their rows, answer 503. */
  async #fail(items: Pending[], cause: unknown): Promise<void> {
    await this.#opts.removeRows(items.map((p) => p.video.row.id)).catch(() => undefined);
    for (const p of items) p.reject(new ApiError('service_unavailable', QUEUE_FAILED_MESSAGE, { cause }));
  }
}
