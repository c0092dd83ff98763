import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { GENERATION_QUEUE, JOBS, Keyspace, newVideoId, parseVideoEvent, type GenerateJobPayload, type VideoEvent, type VideoId } from '@rehyat/contracts';
import { createPrismaClient, type PrismaClient } from '@rehyat/db';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import { createTestDatabase, type TestDatabase } from '@rehyat/db/testing';
import { EMBEDDED_S3_CREDENTIALS, ObjectStorage, startEmbeddedS3, type EmbeddedS3 } from '@rehyat/storage';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { GeneratorProvider, ObjectStore } from '../../src/processors/generate.js';
import { PrismaVideoRepository } from '../../src/prisma-video-repository.js';
import { startWorker, type RunningWorker } from '../../src/worker.js';
import { VIDEO } from './scripted-generator.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';

/** Deletes every key under `prefix:` (a test's or bench's own keyspace); re-exported for the benches. */
export { deleteRedisPrefix };

/**
 * Real Postgres (fresh database), Redis (unique prefix), S3 (embedded s3rver on a free port) and a
 * BullMQ queue, for the worker's tests.
 */
export interface Harness {
  config: Config;
  env: Record<string, string>;
  db: TestDatabase;
  prisma: PrismaClient;
  s3: EmbeddedS3;
  /** Stops the embedded S3 server (S3 unreachable: connection refused). */
  stopS3(): Promise<void>;
  /** Starts it again on the same port and directory (the objects written before are still there). */
  restartS3(): Promise<void>;
  storage: ObjectStorage;
  redis: Redis;
  keyspace: Keyspace;
  queue: Queue;
  ownerId: string;
  /**
   * Starts an in-process worker. `opts.config` overrides parsed config values (e.g. the checkpoint
   * cadence); `opts.storage` replaces the harness's S3 client (e.g. one that reaches S3 through a
   * fault-injecting proxy).
   */
  start(generators: GeneratorProvider, onDeviceFatal?: (err: unknown) => void, opts?: { config?: Partial<Config>; storage?: ObjectStore }): Promise<RunningWorker>;
  /** Inserts a queued video row and enqueues its job; returns the payload. */
  submit(over?: Partial<GenerateJobPayload>, jobOpts?: { attempts?: number; backoff?: { type: 'fixed' | 'exponential'; delay: number } }): Promise<GenerateJobPayload>;
  events(id: VideoId): Promise<(VideoEvent & { id: string })[]>;
  waitFor(id: VideoId, pred: (events: VideoEvent[]) => boolean, timeoutMs?: number): Promise<VideoEvent[]>;
  /**
   * The video's job once BullMQ has finished it (state `completed` or `failed`). The terminal
   * event is published by the processor before it returns or throws, so a job read right after
   * `waitFor(id, terminal)` may still be active, its attempt not yet counted.
   */
  settled(id: VideoId, timeoutMs?: number): Promise<Job>;
  /**
   * Kills every in-process worker started so far (for `afterEach`): a test that fails midway must
   * not leave a worker that takes the next test's job.
   */
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'rehyat-worker-test-'));
  const bucket = 'rehyat-test';
  let s3 = await startEmbeddedS3({ port: 0, directory: dir, buckets: [bucket] });
  const prefix = `wtest-${randomBytes(6).toString('hex')}`;
  const fullEnv: Record<string, string> = {
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_PREFIX: prefix,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    CANCEL_POLL_MS: '100',
    HEARTBEAT_INTERVAL_MS: '200',
    // The production default: with a 2 s lock, a loaded machine that delayed the lock renewal
    // (every lock/2) past the lock let BullMQ take a running job back and run it twice. Tests that
    // rely on stalled-job recovery (a killed worker) pass a shorter lock themselves.
    LOCK_DURATION_MS: '30000',
    STALLED_INTERVAL_MS: '1000',
    ...env,
  };
  const config = loadConfig(fullEnv);
  const prisma = createPrismaClient({ databaseUrl: db.url });
  const storage = new ObjectStorage({
    endpoint: s3.endpoint,
    bucket,
    accessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    secretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
  });
  const redis = new Redis(REDIS_URL);
  const keyspace = new Keyspace({ prefix });
  const queueConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(GENERATION_QUEUE, { connection: queueConnection, prefix });
  const ownerId = 'key_test';
  await prisma.apiKey.create({ data: { id: ownerId, name: 'test', prefix: 'sk-test', hash: randomBytes(32).toString('hex') } });
  const workers: RunningWorker[] = [];

  const h: Harness = {
    config,
    env: fullEnv,
    db,
    prisma,
    get s3() {
      return s3;
    },
    async stopS3() {
      await s3.close();
    },
    async restartS3() {
      await s3.close();
      s3 = await startEmbeddedS3({ port: s3.port, directory: dir, buckets: [bucket] });
    },
    storage,
    redis,
    keyspace,
    queue,
    ownerId,
    async start(generators, onDeviceFatal, opts = {}) {
      const w = await startWorker({
        config: { ...config, ...opts.config },
        repo: new PrismaVideoRepository(prisma),
        storage: opts.storage ?? storage,
        generators,
        log: createLogger(config.LOG_LEVEL),
        ...(onDeviceFatal ? { onDeviceFatal } : {}),
      });
      workers.push(w);
      return w;
    },
    async submit(over = {}, jobOpts = {}) {
      const payload: GenerateJobPayload = {
        v: 1,
        video_id: newVideoId(),
        model: 'scripted',
        prompt: 'a red square moves right',
        seconds: 2.5,
        width: VIDEO.width,
        height: VIDEO.height,
        seed: 11,
        steps: 3,
        guidance: 4,
        owner_id: ownerId,
        created_at: new Date().toISOString(),
        ...over,
      };
      await prisma.video.create({
        data: {
          id: payload.video_id,
          ownerId,
          prompt: payload.prompt,
          model: payload.model,
          seconds: payload.seconds,
          size: `${payload.width}x${payload.height}`,
          width: payload.width,
          height: payload.height,
          seed: BigInt(payload.seed),
          steps: payload.steps,
          guidance: payload.guidance,
          chunksTotal: 1,
          ...(payload.source ? { sourceVideoId: payload.source.video_id, sourceKind: payload.source.kind } : {}),
        },
      });
      await queue.add(JOBS.generate.name, payload, {
        jobId: payload.video_id,
        attempts: jobOpts.attempts ?? JOBS.generate.attempts,
        backoff: jobOpts.backoff ?? { type: 'fixed', delay: 100 },
      });
      return payload;
    },
    async events(id) {
      const entries = await redis.xrange(keyspace.videoEvents(id), '-', '+');
      return entries.map(([eid, fields]) => ({ id: eid, ...parseVideoEvent(fields[1]!) }));
    },
    async waitFor(id, pred, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const ev = await h.events(id);
        if (pred(ev)) return ev;
        if (Date.now() > until) throw new Error(`timed out waiting on ${id}; events: ${ev.map((e) => e.type).join(',')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async settled(id, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const job = await queue.getJob(id);
        const state = job ? await job.getState() : 'missing';
        if (job && (state === 'completed' || state === 'failed')) return job;
        if (Date.now() > until) throw new Error(`timed out waiting for ${id}'s job to finish; it is ${state}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stopWorkers() {
      for (const w of workers.splice(0)) await w.kill().catch(() => undefined);
    },
    async close() {
      for (const w of workers) await w.kill().catch(() => undefined);
      await queue.close();
      queueConnection.disconnect();
      await deleteRedisPrefix(redis, prefix);
      redis.disconnect();
      await prisma.$disconnect();
      storage.client.destroy();
      await s3.close();
      await rm(dir, { recursive: true, force: true });
      await db.drop();
    },
  };
  return h;
}

export const terminal = (events: VideoEvent[]) => events.some((e) => e.type === 'video.completed' || e.type === 'video.failed' || e.type === 'video.cancelled');
