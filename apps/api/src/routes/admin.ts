import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { HEARTBEAT_TTL_S } from '@rehyat/contracts';
import { withDeadline, readWorkers, type AdminQueues, type AdminVideoService } from '../admin/index.js';
import { errorResponses } from '../errors.js';
import {
  AdminQueue,
  AdminQueueList,
  AdminVideo,
  AdminVideoIdParams,
  AdminVideoList,
  AdminVideosQuery,
  AdminWorkerList,
  QueueNameParams,
} from '../schemas/admin.js';

export interface AdminRoutesOptions {
  queues: AdminQueues;
  videos: AdminVideoService;
  /** Longest wait for Redis before a route answers 503 (`DEPENDENCY_TIMEOUT_MS`). */
  redisTimeoutMs: number;
}

const security = [{ bearerAuth: [] }];
const tags = ['admin'];
/** Every admin route: 401 without a valid key, 403 `permission_denied` for a key without the admin role. */
const adminErrors = (...statuses: number[]) => errorResponses(403, 429, ...statuses);

/**
 * The admin API under `/v1/admin` (admin API keys only; the dashboard at `/admin` reads it):
 * queue counts, pause and resume, live workers from their heartbeats, every owner's videos, and
 * the retry of a failed video. Keys are checked before the request is validated, so a user key
 * learns nothing about these routes but 403.
 */
export async function adminRoutes(app: FastifyInstance, opts: AdminRoutesOptions): Promise<void> {
  const { queues, videos, redisTimeoutMs } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();
  app.addHook('onRequest', app.authenticate);
  app.addHook('onRequest', app.requireAdmin);
  const redis = <T>(work: Promise<T>) => withDeadline(work, redisTimeoutMs, 'Redis');

  r.get(
    '/v1/admin/queues',
    {
      schema: {
        tags,
        summary: 'Queue counts',
        description: 'Jobs per state and the paused flag of every BullMQ queue of the deployment (generation, webhook delivery).',
        security,
        response: { 200: AdminQueueList, ...adminErrors(503) },
      },
    },
    async () => ({ object: 'list' as const, data: await redis(queues.list()) }),
  );

  r.post(
    '/v1/admin/queues/:name/pause',
    {
      schema: {
        tags,
        summary: 'Pause a queue',
        description: 'Workers of every process stop taking new jobs of the queue; jobs already running finish. Creation still queues jobs. Idempotent.',
        security,
        params: QueueNameParams,
        response: { 200: AdminQueue, ...adminErrors(503) },
      },
    },
    async (request) => {
      const queue = await redis(queues.pause(request.params.name));
      request.log.warn({ queue: queue.name, keyId: request.principal.keyId }, 'queue paused by an admin');
      return queue;
    },
  );

  r.post(
    '/v1/admin/queues/:name/resume',
    {
      schema: {
        tags,
        summary: 'Resume a queue',
        description: 'Workers take jobs of the queue again. Idempotent.',
        security,
        params: QueueNameParams,
        response: { 200: AdminQueue, ...adminErrors(503) },
      },
    },
    async (request) => {
      const queue = await redis(queues.resume(request.params.name));
      request.log.warn({ queue: queue.name, keyId: request.principal.keyId }, 'queue resumed by an admin');
      return queue;
    },
  );

  r.get(
    '/v1/admin/workers',
    {
      schema: {
        tags,
        summary: 'Live workers',
        description:
          'Workers with a heartbeat in Redis (they expire `stale_after_s` after the last beat), with the video each is generating. ' +
          'A heartbeat older than `stale_after_s` is flagged `stale`.',
        security,
        response: { 200: AdminWorkerList, ...adminErrors(503) },
      },
    },
    async (request) => {
      const data = await redis(
        readWorkers({
          redis: app.redis,
          keyspace: app.keyspace,
          prisma: app.prisma,
          onInvalid: (key, reason) => request.log.warn({ key, reason }, 'unreadable worker heartbeat'),
        }),
      );
      return { object: 'list' as const, data, stale_after_s: HEARTBEAT_TTL_S };
    },
  );

  r.get(
    '/v1/admin/videos',
    {
      schema: {
        tags,
        summary: 'Videos of every API key',
        description: 'Newest first. Cursor pagination: pass the previous page\'s `last_id` as `after`.',
        security,
        querystring: AdminVideosQuery,
        response: { 200: AdminVideoList, ...adminErrors() },
      },
    },
    async (request) => {
      const { data, has_more } = await videos.list(request.query);
      return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more };
    },
  );

  r.post(
    '/v1/admin/jobs/:videoId/retry',
    {
      schema: {
        tags,
        summary: 'Retry a failed video',
        description:
          'Puts the failed video\'s generation job (the one the API queued at creation, kept 7 days after it failed) back in the queue ' +
          'with its attempts reset; the video is `queued` again (`error` cleared, `last_error` kept) and `video.queued` is published. ' +
          '409 `video_not_retryable` when the video is not failed, its owner asked to cancel it, or its job is gone.',
        security,
        params: AdminVideoIdParams,
        response: { 200: AdminVideo, ...adminErrors(404, 409, 503) },
      },
    },
    async (request) => {
      const video = await videos.retry(request.params.videoId);
      request.log.warn({ videoId: video.id, keyId: request.principal.keyId }, 'failed video retried by an admin');
      return video;
    },
  );
}
