import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import { createTestDatabase } from '@rehyat/db/testing';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from '@rehyat/storage';
import { buildApp } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import type { ErrorBody } from '../src/errors.js';
import { ApiKeyService } from '../src/services/api-key-service.js';

export const FIXTURE_MODELS_DIR = fileURLToPath(new URL('./fixtures/models/', import.meta.url));
export const REDIS_URL = 'redis://127.0.0.1:6379';

/** A port nothing listens on (bound, then released). */
/** The OpenAI-shaped `error` of a fetch response whose body is an {@link ErrorBody}. */
export async function errorOf(res: Response): Promise<ErrorBody['error']> {
  return ((await res.json()) as ErrorBody).error;
}

export async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface Stack {
  config: Config;
  app: FastifyInstance;
  baseURL: string;
  /** A plain Redis connection for assertions, under the test's prefix. */
  redis: Redis;
  s3: EmbeddedS3;
  keys: ApiKeyService;
  /** Creates an API key and an `openai` client using it (no retries). */
  client(name?: string): Promise<{ client: OpenAI; keyId: string; secret: string }>;
  close(): Promise<void>;
}

export interface StackOptions {
  /** Config variables to override (e.g. a closed port for REDIS_URL). */
  env?: Record<string, string>;
}

/**
 * Real Postgres (a fresh database), real Redis (a unique prefix) and a real S3 server (embedded
 * s3rver on a free port, a temporary folder), and the app listening on a free port.
 */
export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'rehyat-api-test-'));
  const bucket = 'rehyat-test';
  const s3 = await startEmbeddedS3({ port: 0, directory: dir, buckets: [bucket] });
  const prefix = `apitest-${randomBytes(6).toString('hex')}`;
  const config = loadConfig({
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_PREFIX: prefix,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: bucket,
    S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
    S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    MODELS_DIR: FIXTURE_MODELS_DIR,
    LOG_LEVEL: 'silent',
    DEPENDENCY_TIMEOUT_MS: '1500',
    // Limits are tested on their own (ratelimit tests); here they would only get in the way.
    RATE_LIMIT_RPM: '0',
    MAX_ACTIVE_VIDEOS: '0',
    ...opts.env,
  });
  const app = await buildApp({ config });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const baseURL = `http://127.0.0.1:${port}/v1`;
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  await redis.connect();
  const keys = new ApiKeyService(app.prisma, { announceChange: app.apiKeys.announceChange });
  return {
    config,
    app,
    baseURL,
    redis,
    s3,
    keys,
    async client(name = 'test') {
      const key = await keys.create({ name });
      return { client: new OpenAI({ apiKey: key.secret, baseURL, maxRetries: 0 }), keyId: key.id, secret: key.secret };
    },
    async close() {
      await app.close();
      await deleteRedisPrefix(redis, prefix);
      redis.disconnect();
      await s3.close();
      await rm(dir, { recursive: true, force: true });
      await db.drop();
    },
  };
}
