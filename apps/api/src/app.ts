import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import multipart from '@fastify/multipart';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { GENERATION_QUEUE } from '@rehyat/contracts';
import { publishVideoEvent } from '@rehyat/events';
import { EMBEDDED_S3_CREDENTIALS, type ObjectStorageOptions } from '@rehyat/storage';
import { WEBHOOK_QUEUE } from '@rehyat/webhooks';
import type { Config } from './config.js';
import type { ModelRegistry } from './model-registry.js';
import { AdminQueues, AdminVideoService } from './admin/index.js';
import { authPlugin } from './plugins/auth.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { webhooksPlugin } from './plugins/webhooks.js';
import { webhookEndpointRoutes } from './routes/webhook-endpoints.js';
import { WebhookEndpointService } from './webhooks/endpoint-service.js';
import { configPlugin } from './plugins/config.js';
import { errorsPlugin } from './plugins/errors.js';
import { healthPlugin } from './plugins/health.js';
import { metricsPlugin } from './plugins/metrics.js';
import { modelsPlugin } from './plugins/models.js';
import { openapiPlugin } from './plugins/openapi.js';
import { prismaPlugin } from './plugins/prisma.js';
import { queuePlugin } from './plugins/queue.js';
import { redisPlugin } from './plugins/redis.js';
import { storagePlugin } from './plugins/storage.js';
import { adminRoutes } from './routes/admin.js';
import { adminDashboardRoutes } from './routes/admin-dashboard.js';
import { eventRoutes } from './routes/events.js';
import { playlistRoutes } from './routes/playlist.js';
import { videoRoutes } from './routes/videos.js';
import { VideoService } from './services/video-service.js';
import { playbackUrls, signingOptions } from './signed-url.js';

export const API_VERSION = '0.1.0';

/** S3 client options from the config (the embedded server's credentials when none are set). */
export function storageOptions(config: Config): ObjectStorageOptions {
  return {
    ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
    bucket: config.S3_BUCKET,
    region: config.S3_REGION,
    accessKeyId: config.S3_ACCESS_KEY_ID ?? EMBEDDED_S3_CREDENTIALS.accessKeyId,
    secretAccessKey: config.S3_SECRET_ACCESS_KEY ?? EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    maxAttempts: 2,
    requestTimeoutMs: 30_000,
  };
}

export interface BuildAppOptions {
  config: Config;
  /** Fastify logger option. @defaultValue `{ level: config.LOG_LEVEL }` */
  logger?: FastifyServerOptions['logger'];
  /** Use these models instead of reading `config.MODELS_DIR`. */
  models?: ModelRegistry;
}

/**
 * Builds the API without listening: plugins in dependency order, then the routes. `server.ts`
 * listens; tests call `listen({ port: 0 })` or `inject`. `close()` frees every connection.
 */
export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  const app = Fastify({
    logger: opts.logger ?? { level: config.LOG_LEVEL },
    bodyLimit: config.MAX_BODY_BYTES,
    trustProxy: true,
    // Videos ids and cursors are case-sensitive; keep routing strict.
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Bodies are JSON or multipart/form-data only; anything else is 415, not a string to validate.
  app.removeContentTypeParser('text/plain');

  await app.register(configPlugin, { config });
  await app.register(errorsPlugin);
  await app.register(metricsPlugin);
  await app.register(openapiPlugin, { docs: config.DOCS_ENABLED, version: API_VERSION });
  await app.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fileSize: config.MAX_BODY_BYTES, fieldSize: config.MAX_BODY_BYTES, fields: 50, files: 4, parts: 60 },
  });
  await app.register(prismaPlugin, { databaseUrl: config.DATABASE_URL });
  await app.register(redisPlugin, { url: config.REDIS_URL, connectTimeoutMs: config.DEPENDENCY_TIMEOUT_MS });
  await app.register(storagePlugin, storageOptions(config));
  await app.register(queuePlugin);
  await app.register(modelsPlugin, { registry: opts.models });
  await app.register(authPlugin);
  await app.register(rateLimitPlugin);
  await app.register(webhooksPlugin);
  await app.register(healthPlugin);

  const service = new VideoService({
    prisma: app.prisma,
    pg: app.pg,
    queue: app.generationQueue,
    redis: app.redis,
    keyspace: app.keyspace,
    storage: app.storage,
    events: { publish: (id, type, data) => publishVideoEvent(app.redis, app.keyspace, id, type, data) },
    models: app.models,
    urls: playbackUrls(config),
    retentionS: config.VIDEO_RETENTION_S,
    idempotencyTtlS: config.IDEMPOTENCY_TTL_S,
    ...(app.limits.fair ? { assignPriorities: (ownerIds: string[]) => app.limits.fair!.assignMany(ownerIds) } : {}),
    onCreationBatch: (size) => app.metrics.creationBatchSize.observe(size),
  });
  // onClose hooks run in reverse order: this one before Redis and Postgres are closed.
  app.addHook('onClose', async () => {
    await service.close();
  });
  await app.register(videoRoutes, { service });
  await app.register(webhookEndpointRoutes, {
    service: new WebhookEndpointService({ prisma: app.prisma, queue: app.webhooks.queue, checkUrl: app.webhooks.checkUrl }),
  });
  await app.register(eventRoutes, { signing: signingOptions(config), heartbeatMs: config.SSE_HEARTBEAT_MS });
  await app.register(playlistRoutes, { signing: signingOptions(config) });
  await app.register(adminRoutes, {
    queues: new AdminQueues({ [GENERATION_QUEUE]: app.generationQueue, [WEBHOOK_QUEUE]: app.webhooks.queue.queue }),
    videos: new AdminVideoService({
      prisma: app.prisma,
      redis: app.redis,
      keyspace: app.keyspace,
      queue: app.generationQueue,
      active: app.limits.active,
      redisTimeoutMs: config.DEPENDENCY_TIMEOUT_MS,
    }),
    redisTimeoutMs: config.DEPENDENCY_TIMEOUT_MS,
  });
  await app.register(adminDashboardRoutes);
  return app;
}
