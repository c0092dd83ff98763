import { Redis } from 'ioredis';
import { checkDatabase } from '@rehyat/db';
import { ObjectStorage, type ObjectStorageOptions } from '@rehyat/storage';
import { hostPort, type Config } from './config.js';
import { describeFailure, type DependencyCheck } from './plugins/health.js';

async function pingRedis(url: string, timeoutMs: number): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } finally {
    redis.disconnect();
  }
}

/**
 * Checks Postgres, Redis and S3 with short-lived connections of its own, before the app is
 * built, so the server can refuse to start with `<name> (<host:port>) is down: <cause>` instead
 * of failing somewhere inside a plugin.
 */
export async function preflight(config: Config, storage: ObjectStorageOptions): Promise<DependencyCheck[]> {
  const timeoutMs = config.DEPENDENCY_TIMEOUT_MS;
  const run = async (name: DependencyCheck['name'], target: string, fn: () => Promise<unknown>): Promise<DependencyCheck> => {
    try {
      await fn();
      return { name, ok: true, target, error: null };
    } catch (err) {
      return { name, ok: false, target, error: describeFailure(err) };
    }
  };
  const s3 = new ObjectStorage({ ...storage, maxAttempts: 1, requestTimeoutMs: timeoutMs });
  try {
    return await Promise.all([
      run('database', hostPort(config.DATABASE_URL, 5432), () => checkDatabase(config.DATABASE_URL, { timeoutMs })),
      run('redis', hostPort(config.REDIS_URL, 6379), () => pingRedis(config.REDIS_URL, timeoutMs)),
      run('storage', `${s3.endpoint} bucket ${s3.bucket}`, () => s3.ensureBucket()),
    ]);
  } finally {
    s3.close();
  }
}
