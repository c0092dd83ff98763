import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { runAttempt, type AttemptContext, type AttemptOutcome } from './attempt.js';
import type { DeliveryStore } from './delivery-store.js';
import type { RetryPolicy } from './retry-schedule.js';
import type { SsrfGuard } from './ssrf-guard.js';

/** The BullMQ queue of delivery attempts (its own queue, apart from generation jobs). */
export const WEBHOOK_QUEUE = 'webhook-delivery';

/** Payload of one attempt job: the record is the truth, the job only says "try this now". */
export interface AttemptJobData {
  deliveryId: string;
  /** 1-based attempt number this job makes. */
  attempt: number;
}

/** Deterministic job id: adding the same attempt twice while it is queued is a no-op. */
export function attemptJobId(deliveryId: string, attempt: number): string {
  return `${deliveryId}-a${attempt}`;
}

export interface QueueConnectionOptions {
  /** Redis URL, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /**
   * BullMQ key prefix (the deployment's keyspace prefix).
   * @defaultValue `rehyat`
   */
  prefix?: string;
  /**
   * Connection and queue errors (Redis down: the connections retry by themselves). Without it
   * they are ignored here and surface as failed calls.
   */
  onError?: (err: Error) => void;
}

const JOB_OPTS = {
  // Retries of the job itself cover infrastructure errors (store unreachable); the delivery's
  // own retries are new jobs on the webhook schedule.
  attempts: 5,
  backoff: { type: 'exponential' as const, delay: 1_000 },
  // Removed when done so that the reconciler can re-add the same id if ever needed.
  removeOnComplete: true,
  removeOnFail: true,
};

/** Producer side: what the API calls after writing a delivery record. */
export class WebhookDeliveryQueue {
  readonly queue: Queue<AttemptJobData>;
  private readonly connection: Redis;

  constructor(opts: QueueConnectionOptions) {
    const onError = opts.onError ?? (() => undefined);
    this.connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    this.connection.on('error', onError);
    this.queue = new Queue<AttemptJobData>(WEBHOOK_QUEUE, { connection: this.connection, prefix: opts.prefix ?? 'rehyat', skipWaitingForReady: true });
    this.queue.on('error', onError);
  }

  /** Schedules one attempt. Write the delivery record first: the reconciler recovers a lost add. */
  async schedule(deliveryId: string, attempt: number, delayMs = 0): Promise<void> {
    await this.queue.add('attempt', { deliveryId, attempt }, { ...JOB_OPTS, jobId: attemptJobId(deliveryId, attempt), delay: Math.max(0, delayMs) });
  }

  async close(): Promise<void> {
    await this.queue.close();
    this.connection.disconnect();
  }
}

export interface DeliveryWorkerOptions extends QueueConnectionOptions {
  store: DeliveryStore;
  guard: SsrfGuard;
  retry?: RetryPolicy;
  /** @defaultValue 10_000 */
  timeoutMs?: number;
  /**
   * Attempts in flight at once in this process.
   * @defaultValue 16
   */
  concurrency?: number;
  /**
   * How often the reconciler looks for pending deliveries whose attempt job is missing (a crash
   * between writing the record and adding the job), in milliseconds; 0 disables it.
   * @defaultValue 30_000
   */
  reconcileIntervalMs?: number;
  /**
   * A pending delivery counts as orphaned only once it is this late, in milliseconds.
   * @defaultValue 60_000
   */
  reconcileGraceMs?: number;
  /**
   * How long an attempt's lock lasts without renewal; a job whose process died is taken over by
   * another worker once its lock expired (BullMQ's stalled-job check), in milliseconds.
   * @defaultValue max(30_000, 3 * timeoutMs)
   */
  lockDurationMs?: number;
  /**
   * How often this worker looks for stalled jobs, in milliseconds.
   * @defaultValue 30_000
   */
  stalledIntervalMs?: number;
  /** Called after every attempt job (for logs and metrics). */
  onOutcome?: (data: AttemptJobData, outcome: AttemptOutcome) => void;
}

/**
 * Consumer side: a BullMQ worker that makes attempts and schedules the next one, plus the
 * reconciler that re-adds jobs for pending deliveries that have none. Safe to run in several
 * processes at once.
 */
export class WebhookDeliveryWorker {
  readonly worker: Worker<AttemptJobData>;
  readonly producer: WebhookDeliveryQueue;
  private readonly connection: Redis;
  private readonly ctx: AttemptContext;
  private reconcileTimer: NodeJS.Timeout | null = null;
  private readonly opts: DeliveryWorkerOptions;

  constructor(opts: DeliveryWorkerOptions) {
    this.opts = opts;
    this.ctx = { store: opts.store, guard: opts.guard, retry: opts.retry, timeoutMs: opts.timeoutMs };
    this.producer = new WebhookDeliveryQueue(opts);
    this.connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    this.connection.on('error', (e) => opts.onError?.(e));
    this.worker = new Worker<AttemptJobData>(WEBHOOK_QUEUE, (job) => this.process(job), {
      connection: this.connection,
      prefix: opts.prefix ?? 'rehyat',
      concurrency: opts.concurrency ?? 16,
      // An attempt takes at most the HTTP timeout plus store writes.
      lockDuration: opts.lockDurationMs ?? Math.max(30_000, (opts.timeoutMs ?? 10_000) * 3),
      stalledInterval: opts.stalledIntervalMs ?? 30_000,
      // A job stalls when its process dies mid-attempt: take it over every time (the record
      // check makes a repeated attempt safe), never fail it for stalling.
      maxStalledCount: 1_000,
    });
    this.worker.on('error', (e) => opts.onError?.(e));
    this.worker.on('failed', (_job, e) => opts.onError?.(e));
    const every = opts.reconcileIntervalMs ?? 30_000;
    if (every > 0) {
      this.reconcileTimer = setInterval(() => {
        this.reconcile().catch((e: Error) => opts.onError?.(e));
      }, every);
      this.reconcileTimer.unref();
    }
  }

  private async process(job: Job<AttemptJobData>): Promise<AttemptOutcome> {
    const { deliveryId, attempt } = job.data;
    const outcome = await runAttempt(this.ctx, deliveryId, attempt);
    if (outcome.kind === 'recorded' && outcome.next) {
      await this.producer.schedule(deliveryId, outcome.next.attempt, outcome.next.delayMs);
    }
    this.opts.onOutcome?.(job.data, outcome);
    return outcome;
  }

  /**
   * Re-adds the attempt job of every pending delivery that is overdue by more than the grace
   * period. Adding an id that is still queued is a no-op, and a job for an attempt already made
   * is skipped by the record check, so this is safe to run at any time. Returns how many it added.
   */
  async reconcile(now: Date = new Date()): Promise<number> {
    const grace = this.opts.reconcileGraceMs ?? 60_000;
    const due = await this.opts.store.listDue(new Date(now.getTime() - grace), 500);
    for (const d of due) await this.producer.schedule(d.id, d.attempts + 1, 0);
    return due.length;
  }

  async close(): Promise<void> {
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    await this.worker.close();
    await this.producer.close();
    this.connection.disconnect();
  }
}
