import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { GENERATION_QUEUE, JOBS, Keyspace } from '@rehyat/contracts';
import { CancelAnnouncements } from './cancel-watch.js';
import type { Config } from './config.js';
import { WorkerActivity, readDeviceInfo, startHeartbeat } from './heartbeat.js';
import type { Logger } from './logger.js';
import { createGenerateProcessor, type GeneratorProvider, type ObjectStore } from './processors/generate.js';
import type { VideoRepository } from './video-repository.js';

export interface StartWorkerOptions {
  config: Pick<
    Config,
    | 'WORKER_ID'
    | 'WORKER_CONCURRENCY'
    | 'REDIS_URL'
    | 'REDIS_PREFIX'
    | 'DEVICE'
    | 'DEVICE_ID'
    | 'FFMPEG_BIN'
    | 'X264_CRF'
    | 'X264_PRESET'
    | 'CANCEL_POLL_MS'
    | 'HEARTBEAT_INTERVAL_MS'
    | 'LOCK_DURATION_MS'
    | 'STALLED_INTERVAL_MS'
    | 'CHECKPOINT_EVERY_CHUNKS'
    | 'CHECKPOINT_ASYNC'
  >;
  repo: VideoRepository;
  storage: ObjectStore;
  generators: GeneratorProvider;
  log: Logger;
  /** Called once a device-fatal failure was recorded; `main` exits non-zero from it. */
  onDeviceFatal?: (err: unknown) => void;
}

export interface RunningWorker {
  worker: Worker;
  /**
   * Graceful stop (SIGTERM): no new jobs; a running job finishes its current chunk, writes its
   * checkpoint (whatever the cadence) and goes back to the queue once it is in S3; then every
   * connection closes.
   */
  shutdown(): Promise<void>;
  /** Immediate stop without releasing jobs (their locks expire: stalled-job recovery). */
  kill(): Promise<void>;
}

/** Connects to Redis, starts the heartbeat, the cancel listener and the BullMQ worker. */
export async function startWorker(opts: StartWorkerOptions): Promise<RunningWorker> {
  const { config: c, log } = opts;
  const keyspace = new Keyspace({ prefix: c.REDIS_PREFIX });
  const redisOpts = { maxRetriesPerRequest: null, lazyConnect: false } as const;
  const redis = new Redis(c.REDIS_URL, redisOpts);
  const subscriber = new Redis(c.REDIS_URL, redisOpts);
  const bullConnection = new Redis(c.REDIS_URL, redisOpts);
  const activity = new WorkerActivity();
  const shutdownState = { requested: false };

  const stopHeartbeat = await startHeartbeat({
    redis,
    keyspace,
    workerId: c.WORKER_ID,
    intervalMs: c.HEARTBEAT_INTERVAL_MS,
    activity,
    deviceInfo: () => readDeviceInfo(c.DEVICE, c.DEVICE_ID),
    log,
  });
  const announcements = await CancelAnnouncements.start(subscriber, keyspace);

  const processor = createGenerateProcessor({
    repo: opts.repo,
    storage: opts.storage,
    redis,
    keyspace,
    generators: opts.generators,
    log,
    workerId: c.WORKER_ID,
    activity,
    shutdown: shutdownState,
    announcements,
    media: { ffmpegBin: c.FFMPEG_BIN, crf: c.X264_CRF, preset: c.X264_PRESET },
    cancelPollMs: c.CANCEL_POLL_MS,
    checkpoints: { everyChunks: c.CHECKPOINT_EVERY_CHUNKS, async: c.CHECKPOINT_ASYNC },
    onDeviceFatal: (err) => opts.onDeviceFatal?.(err),
  });

  const worker = new Worker(
    GENERATION_QUEUE,
    async (job, token) => {
      if (job.name !== JOBS.generate.name) throw new Error(`unknown job name ${job.name}`);
      return processor(job, token);
    },
    {
      connection: bullConnection,
      prefix: keyspace.prefix,
      concurrency: c.WORKER_CONCURRENCY,
      lockDuration: c.LOCK_DURATION_MS,
      stalledInterval: c.STALLED_INTERVAL_MS,
      maxStalledCount: 3,
      autorun: true,
    },
  );
  worker.on('error', (err) => log.error('worker error', { err }));
  worker.on('failed', (job, err) => log.warn('job attempt failed', { jobId: job?.id, err: err.message }));
  await worker.waitUntilReady();
  log.info('worker ready', { workerId: c.WORKER_ID, queue: GENERATION_QUEUE, prefix: keyspace.prefix, concurrency: c.WORKER_CONCURRENCY });

  const closeConnections = async () => {
    await announcements.stop().catch(() => undefined);
    await stopHeartbeat();
    redis.disconnect();
    subscriber.disconnect();
    bullConnection.disconnect();
  };
  return {
    worker,
    async shutdown() {
      shutdownState.requested = true;
      await worker.close();
      await closeConnections();
    },
    async kill() {
      await worker.close(true);
      await closeConnections();
    },
  };
}
