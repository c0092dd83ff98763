import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { GENERATION_QUEUE } from '@rehyat/contracts';
import { ActiveVideoLimiter, checkQueueAdmission, FairPriority, rateLimitHeaders, RequestRateLimiter } from '@rehyat/ratelimit';
import { ApiError } from '../errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    limits: {
      rpm: RequestRateLimiter;
      active: ActiveVideoLimiter;
      /** Priorities of generation jobs for fair ordering between keys; null when `FAIR_QUEUE` is off. */
      fair: FairPriority | null;
    };
  }
}

/** Routes that create a video (and so a generation job). */
const CREATION_ROUTES = new Set(['POST /v1/videos', 'POST /v1/videos/:id/remix', 'POST /v1/videos/extensions']);
/** A reservation older than this belongs to a request that died: `prune` drops it. */
const RESERVATION_TTL_MS = 5 * 60_000;

const RESERVATION = Symbol('activeReservation');
const CREATED = Symbol('createdVideoId');
type Tagged = FastifyRequest & { [RESERVATION]?: string; [CREATED]?: string };

/**
 * `rate-limit`: for every authenticated request, the key's requests per minute (GCRA in Redis,
 * `x-ratelimit-*` headers on every response, 429 `rate_limit_exceeded` with `Retry-After`);
 * for video creation also the global queue cap (503 `queue_full`) and the key's cap on active
 * videos (429 `too_many_active_videos`). Limits: the key's own (`rate_limit_rpm`,
 * `max_active_videos`), else the config defaults; 0 means unlimited.
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance) => {
    const config = app.config;
    const rpm = new RequestRateLimiter({ redis: app.redis, prefix: app.keyspace.prefix });
    const active = new ActiveVideoLimiter({ redis: app.redis, prefix: app.keyspace.prefix });
    const fair = config.FAIR_QUEUE ? new FairPriority({ redis: app.redis, prefix: app.keyspace.prefix, queueName: GENERATION_QUEUE }) : null;
    app.decorate('limits', { rpm, active, fair });

    // The key's own limits come with its principal (the auth cache; a change is announced to every
    // instance at once), else the config defaults.
    const limitsOf = (p: FastifyRequest['principal']): { rpm: number; maxActive: number } => ({
      rpm: p.rateLimitRpm ?? config.RATE_LIMIT_RPM,
      maxActive: p.maxActiveVideos ?? config.MAX_ACTIVE_VIDEOS,
    });

    const isStillActive = async (ids: string[]): Promise<boolean[]> => {
      const videoIds = ids.filter((id) => id.startsWith('video_'));
      const rows = videoIds.length
        ? await app.prisma.video.findMany({ where: { id: { in: videoIds }, status: { in: ['queued', 'in_progress'] } }, select: { id: true } })
        : [];
      const live = new Set(rows.map((r) => r.id));
      return ids.map((id) => {
        if (id.startsWith('req:')) return Date.now() - Number(id.split(':')[1]) < RESERVATION_TTL_MS;
        return live.has(id);
      });
    };

    app.addHook('preValidation', async (request: FastifyRequest, reply: FastifyReply) => {
      if (!request.principal) return;
      try {
        await enforce(request, reply);
      } catch (err) {
        if (err instanceof ApiError) throw err;
        // Fail open: limits are protection, not correctness; the routes report a dead Redis themselves.
        request.log.warn({ err }, 'rate limits not checked: Redis or Postgres unavailable');
      }
    });

    const enforce = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const principal = request.principal;
      const limits = limitsOf(principal);
      if (limits.rpm > 0) {
        const d = await rpm.hit(principal.keyId, limits.rpm);
        reply.headers(rateLimitHeaders(d));
        if (!d.allowed) {
          throw new ApiError(
            'rate_limit_exceeded',
            `Rate limit reached: ${limits.rpm} requests per minute for this API key. Retry in ${Math.ceil(d.retryAfterMs / 1000)} s.`,
          );
        }
      }
      if (!CREATION_ROUTES.has(`${request.method} ${request.routeOptions.url}`)) return;
      if (config.QUEUE_MAX_QUEUED > 0) {
        const adm = await checkQueueAdmission(app.generationQueue, config.QUEUE_MAX_QUEUED);
        if (!adm.allowed) {
          reply.header('retry-after', '30');
          throw new ApiError('queue_full', `The generation queue is full (${adm.queued} jobs waiting); try again later.`);
        }
      }
      if (limits.maxActive > 0) {
        const reservation = `req:${Date.now()}:${randomUUID()}`;
        let d = await active.acquire(principal.keyId, reservation, limits.maxActive);
        if (!d.allowed && (await active.prune(principal.keyId, isStillActive)) > 0) {
          d = await active.acquire(principal.keyId, reservation, limits.maxActive);
        }
        if (!d.allowed) {
          reply.header('retry-after', '10');
          throw new ApiError(
            'too_many_active_videos',
            `This API key already has ${d.active} videos queued or in progress (limit ${limits.maxActive}); wait for one to finish.`,
          );
        }
        (request as Tagged)[RESERVATION] = reservation;
      }
    };

    app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const r = request as Tagged;
      if (r[RESERVATION] && reply.statusCode === 200 && typeof payload === 'string') {
        try {
          const id = (JSON.parse(payload) as { id?: unknown }).id;
          if (typeof id === 'string') r[CREATED] = id;
        } catch {
          // not JSON: nothing created
        }
      }
      return payload;
    });

    app.addHook('onResponse', async (request: FastifyRequest) => {
      const r = request as Tagged;
      const reservation = r[RESERVATION];
      if (!reservation) return;
      const keyId = request.principal.keyId;
      try {
        if (r[CREATED]) await active.confirm(keyId, reservation, r[CREATED]);
        else await active.release(keyId, reservation);
      } catch (err) {
        request.log.warn({ err }, 'could not settle the active-video reservation (pruned later)');
      }
    });
  },
  { name: 'rehyat-rate-limit', fastify: '5.x', dependencies: ['rehyat-config', 'rehyat-redis', 'rehyat-prisma', 'rehyat-queue', 'rehyat-auth'] },
);
