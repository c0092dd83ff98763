/**
 * The worker process: `node dist/main.js` (or `npm run dev -w @rehyat/worker`). One process per
 * GPU; configuration from the environment (see config.ts and the README).
 */
import { createPrismaClient } from '@rehyat/db';
import { ModelRegistry } from '@rehyat/pipeline';
import { ObjectStorage } from '@rehyat/storage';
import { ConfigError, loadConfig } from './config.js';
import { armExitWatchdog } from './exit-watchdog.js';
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
  let exitCode = 0;
  const worker = await startWorker({
    config,
    repo: new PrismaVideoRepository(prisma),
    storage,
    generators: registry,
    log,
    onDeviceFatal: (err) => {
      log.error('device-fatal error: exiting so the supervisor restarts the process', { err });
      // A broken device can hang whatever touches it next (releasing its sessions, even the
      // driver's teardown at exit): a short bound of its own instead of SHUTDOWN_TIMEOUT_MS, and a
      // watchdog thread for a main thread stuck in native code, where no timer of ours fires.
      armExitWatchdog(2 * config!.DEVICE_FATAL_EXIT_TIMEOUT_MS);
      stop(1, config!.DEVICE_FATAL_EXIT_TIMEOUT_MS, 'device-fatal exit');
    },
  });

  /**
   * Stops the worker (release the job, close sessions and connections), then exits with the
   * largest code asked for; exits anyway once `timeoutMs` has passed. A later call (device fault
   * during a SIGTERM stop) raises the code and adds its own, possibly shorter, bound.
   */
  function stop(code: number, timeoutMs: number, what: string): void {
    exitCode = Math.max(exitCode, code);
    process.exitCode = exitCode;
    const timer = setTimeout(() => {
      log.error(`${what} timed out; exiting`, { timeoutMs, code: exitCode || 1 });
      process.exit(exitCode || 1);
    }, timeoutMs);
    timer.unref();
    if (stopping) return;
    stopping = true;
    void (async () => {
      try {
        await worker.shutdown();
        await registry.close();
        await prisma.$disconnect();
      } catch (err) {
        log.error('stopping failed', { err });
      } finally {
        log.info('worker stopped', { code: exitCode });
        process.exit(exitCode);
      }
    })();
  }
  process.on('SIGTERM', () => {
    log.info('SIGTERM: finishing the current chunk, then releasing the job');
    stop(0, config!.SHUTDOWN_TIMEOUT_MS, 'shutdown');
  });
  process.on('SIGINT', () => stop(0, config!.SHUTDOWN_TIMEOUT_MS, 'shutdown'));
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
