/**
 * The worker process: `node dist/main.js` (or `npm run dev -w @rehyat/worker`). One process per
 * GPU; configuration from the environment (see config.ts and the README).
 */
import { createPrismaClient } from '@rehyat/db';
import { ModelRegistry } from '@rehyat/pipeline';
import { ObjectStorage } from '@rehyat/storage';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { PrismaVideoRepository } from './prisma-video-repository.js';
import { startWorker } from './worker.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.LOG_LEVEL, { workerId: config.WORKER_ID });
  const prisma = createPrismaClient({ databaseUrl: config.DATABASE_URL });
  const storage = new ObjectStorage({
    ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
    bucket: config.S3_BUCKET,
    region: config.S3_REGION,
    accessKeyId: config.S3_ACCESS_KEY_ID ?? '',
    secretAccessKey: config.S3_SECRET_ACCESS_KEY ?? '',
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
  });
  const registry = new ModelRegistry({
    modelsDir: config.MODELS_DIR,
    backend: config.PIPELINE_BACKEND,
    device: config.DEVICE,
    deviceId: config.DEVICE_ID,
    intraOpThreads: config.INTRA_OP_THREADS,
    verify: config.VERIFY_MODEL_FILES,
  });
  const names = await registry.names();
  if (names.length === 0) log.warn('no model manifest found', { modelsDir: config.MODELS_DIR });
  else log.info('models installed', { models: names });

  let stopping = false;
  const worker = await startWorker({
    config,
    repo: new PrismaVideoRepository(prisma),
    storage,
    generators: registry,
    log,
    onDeviceFatal: (err) => {
      log.error('device-fatal error: exiting so the supervisor restarts the process', { err });
      void stop(1);
    },
  });

  async function stop(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => {
      log.error('shutdown timed out; exiting');
      process.exit(code || 1);
    }, config!.SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    try {
      await worker.shutdown();
      await registry.close();
      await prisma.$disconnect();
    } finally {
      log.info('worker stopped', { code });
      process.exit(code);
    }
  }
  process.on('SIGTERM', () => {
    log.info('SIGTERM: finishing the current chunk, then releasing the job');
    void stop(0);
  });
  process.on('SIGINT', () => void stop(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
