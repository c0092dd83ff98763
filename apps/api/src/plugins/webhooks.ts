import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { SsrfGuard, SsrfRefusedError, WebhookDeliveryQueue, WebhookDeliveryWorker, DEFAULT_RETRY_SCHEDULE_MS } from '@rehyat/webhooks';
import { ApiError } from '../errors.js';
import { playbackUrls } from '../signed-url.js';
import { handleFeedEvents } from '../webhooks/emitter.js';
import { EventFeedConsumer } from '../webhooks/event-feed-consumer.js';
import { PrismaDeliveryStore } from '../webhooks/prisma-delivery-store.js';

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: {
      queue: WebhookDeliveryQueue;
      guard: SsrfGuard;
      /** Validates a webhook URL against the SSRF policy; 400 `invalid_webhook_url` naming `param`. */
      checkUrl: (url: string, param: string) => Promise<string>;
    };
  }
}

/** Consumer group of the all-videos feed used for webhooks and active-video release. */
export const FEED_GROUP = 'api-webhooks';

/**
 * `webhooks`: the delivery queue producer and SSRF guard for routes; with
 * `WEBHOOK_WORKER_ENABLED`, also the delivery worker (BullMQ queue `webhook-delivery`) and the
 * consumer of the all-videos event feed that turns events into deliveries and releases
 * active-video slots. Everything is closed in `onClose`.
 */
export const webhooksPlugin = fp(
  async (app: FastifyInstance) => {
    const config = app.config;
    const guard = new SsrfGuard({ allowedCidrs: config.WEBHOOK_ALLOWED_CIDRS, allowHttp: config.WEBHOOK_ALLOW_HTTP });
    const log = app.log.child({ component: 'webhooks' });
    let lastErrorLog = 0;
    const onError = (err: Error): void => {
      // Redis down: the connections retry; say so at most every 10 s (readiness reports it too).
      if (Date.now() - lastErrorLog > 10_000) {
        lastErrorLog = Date.now();
        log.warn({ err: err.message }, 'webhook queue error');
      }
    };
    const connection = { redisUrl: config.REDIS_URL, prefix: app.keyspace.prefix, onError };
    const queue = new WebhookDeliveryQueue(connection);
    const checkUrl = async (url: string, param: string): Promise<string> => {
      try {
        return (await guard.check(url)).toString();
      } catch (err) {
        if (err instanceof SsrfRefusedError) throw new ApiError('invalid_webhook_url', `Invalid value for '${param}': ${err.message}.`, { param });
        throw err;
      }
    };
    app.decorate('webhooks', { queue, guard, checkUrl });

    // `webhook_url` on video creation: refused (400) before anything is created.
    app.addHook('onRoute', (route) => {
      if (route.url !== '/v1/videos' || !(route.method === 'POST' || (Array.isArray(route.method) && route.method.includes('POST')))) return;
      const check = async (request: FastifyRequest): Promise<void> => {
        const body = request.body as { webhook_url?: unknown } | undefined;
        if (body && typeof body.webhook_url === 'string') body.webhook_url = await checkUrl(body.webhook_url, 'webhook_url');
      };
      const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler];
      route.preHandler = [check, ...existing];
    });

    let worker: WebhookDeliveryWorker | null = null;
    let consumer: EventFeedConsumer | null = null;
    if (config.WEBHOOK_WORKER_ENABLED) {
      worker = new WebhookDeliveryWorker({
        ...connection,
        store: new PrismaDeliveryStore(app.prisma),
        guard,
        timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        concurrency: config.WEBHOOK_WORKER_CONCURRENCY,
        retry: {
          scheduleMs: config.WEBHOOK_RETRY_SCHEDULE_MS.length ? config.WEBHOOK_RETRY_SCHEDULE_MS : DEFAULT_RETRY_SCHEDULE_MS,
          jitter: config.WEBHOOK_RETRY_JITTER,
        },
        onOutcome: (job, outcome) => {
          if (outcome.kind === 'recorded') {
            log.info({ deliveryId: job.deliveryId, attempt: job.attempt, status: outcome.update.status, code: outcome.update.lastStatusCode, error: outcome.update.lastError }, 'webhook attempt');
          }
        },
      });
      const view = { urls: playbackUrls(config), retentionS: config.VIDEO_RETENTION_S };
      consumer = new EventFeedConsumer({
        redisUrl: config.REDIS_URL,
        stream: app.keyspace.videoEventFeed(),
        group: FEED_GROUP,
        handle: (items) => handleFeedEvents({ prisma: app.prisma, pg: app.pg, queue, active: app.limits.active, view }, items),
        onError: (err, entryId) => (entryId ? log.warn({ err: (err as Error).message, entryId }, 'event feed entry not handled') : onError(err as Error)),
      });
      consumer.start();
    }

    app.addHook('onClose', async () => {
      await consumer?.stop();
      await worker?.close();
      await queue.close();
    });
  },
  { name: 'rehyat-webhooks', fastify: '5.x', dependencies: ['rehyat-config', 'rehyat-redis', 'rehyat-prisma', 'rehyat-rate-limit'] },
);
