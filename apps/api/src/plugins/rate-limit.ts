import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { GENERATION_QUEUE } from '@rehyat/contracts';
import { ActiveVideoLimiter, FairPriority, rateLimitHeaders, RequestLimits } from '@rehyat/ratelimit';
import { ApiError } from '../errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    limits: {
      active: ActiveVideoLimiter;
      /** Priorities of generation jobs for fair ordering between keys; null when `FAIR_QUEUE` is off. */
      fair: FairPriority | null;
      /** Rate limit, queue cap and active cap of the requests of one event-loop turn in one script call. */
      checks: RequestLimits;
    };
  }
}

/** Routes that create a video (and so a generation job). */
const CREATION_ROUTES = new Set(['POST /v1/videos', 'POST /v1/videos/:id/remix', 'POST /v1/videos/extensions']);
/** A reservation older than this belongs to a request that died: `prune` drops it. */
const RESERVATION_TTL_MS = 5 * 60_000;

const RESERVATION = Symbol('activeReservation');
const HOLDS_SLOT = Symbol('reservationHoldsActiveSlot');
const CREATED = Symbol('createdVideoId');
type Tagged = FastifyRequest & { [RESERVATION]?: string; [HOLDS_SLOT]?: boolean; [CREATED]?: string };

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
    const active = new ActiveVideoLimiter({ redis: app.redis, prefix: app.keyspace.prefix });
    const fair = config.FAIR_QUEUE ? new FairPriority({ redis: app.redis, prefix: app.keyspace.prefix, queueName: GENERATION_QUEUE }) : null;
    const checks = new RequestLimits({ redis: app.redis, prefix: app.keyspace.prefix, queueName: GENERATION_QUEUE, queueCap: config.QUEUE_MAX_QUEUED });
    app.decorate('limits', { active, fair, checks });

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

    // One script call judges every request of the event-loop turn (rate, then for creations the
    // queue cap, then the active cap: the order of the separate checks), exactly and in order.
    const enforce = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      const principal = request.principal;
      const limits = limitsOf(principal);
      const creation = CREATION_ROUTES.has(`${request.method} ${request.routeOptions.url}`);
      if (!(limits.rpm > 0) && !(creation && (config.QUEUE_MAX_QUEUED > 0 || limits.maxActive > 0))) return;
      const maxActive = Math.max(0, limits.maxActive);
      const reservation = creation && (config.QUEUE_MAX_QUEUED > 0 || maxActive > 0) ? `req:${Date.now()}:${randomUUID()}` : undefined;
      const v = await checks.check({ keyId: principal.keyId, rpm: Math.max(0, limits.rpm), creation, maxActive, reservation });
      if (v.rate) reply.headers(rateLimitHeaders(v.rate));
      if (v.refusedBy === 'rate') {
        throw new ApiError(
          'rate_limit_exceeded',
          `Rate limit reached: ${limits.rpm} requests per minute for this API key. Retry in ${Math.ceil(v.rate!.retryAfterMs / 1000)} s.`,
        );
      }
      if (v.refusedBy === 'queue') {
        reply.header('retry-after', '30');
        throw new ApiError('queue_full', `The generation queue is full (${v.queued} jobs waiting); try again later.`);
      }
      let activeNow = v.active ?? 0;
      if (v.refusedBy === 'active') {
        // Refused: drop members that are no longer active (a release was missed), then try the
        // caps once more (not the rate: this request was counted already).
        let allowed = false;
        if ((await active.prune(principal.keyId, isStillActive)) > 0) {
          const again = await checks.check({ keyId: principal.keyId, rpm: 0, creation, maxActive, reservation });
          if (again.refusedBy === 'queue') {
            reply.header('retry-after', '30');
            throw new ApiError('queue_full', `The generation queue is full (${again.queued} jobs waiting); try again later.`);
          }
          allowed = again.refusedBy === null;
          activeNow = again.active ?? activeNow;
        }
        if (!allowed) {
          reply.header('retry-after', '10');
          throw new ApiError(
            'too_many_active_videos',
            `This API key already has ${activeNow} videos queued or in progress (limit ${limits.maxActive}); wait for one to finish.`,
          );
        }
      }
      if (reservation) {
        (request as Tagged)[RESERVATION] = reservation;
        (request as Tagged)[HOLDS_SLOT] = maxActive > 0;
      }
    };

    // The created video's id, read off the route's returned object before it is serialised.
    app.addHook('preSerialization', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      const r = request as Tagged;
      if (r[HOLDS_SLOT] && reply.statusCode === 200 && payload !== null && typeof payload === 'object') {
        const id = (payload as { id?: unknown }).id;
        if (typeof id === 'string') r[CREATED] = id;
      }
      return payload;
    });

    app.addHook('onResponse', async (request: FastifyRequest) => {
      const r = request as Tagged;
      const reservation = r[RESERVATION];
      if (!reservation) return;
      const keyId = request.principal.keyId;
      try {
        await checks.settle({ keyId, reservation, videoId: r[CREATED] ?? null, active: r[HOLDS_SLOT] === true });
      } catch (err) {
        request.log.warn({ err }, 'could not settle the admission / active-video reservation (pruned or expired later)');
      }
    });
  },
  { name: 'rehyat-rate-limit', fastify: '5.x', dependencies: ['rehyat-config', 'rehyat-redis', 'rehyat-prisma', 'rehyat-queue', 'rehyat-auth'] },
);
