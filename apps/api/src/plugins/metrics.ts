import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  videosCreated: Counter<'model'>;
  videosCancelled: Counter<'from'>;
  creationBatchSize: Histogram;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics;
  }
}

/**
 * `metrics`: a Prometheus registry of its own (so several apps in one process do not collide),
 * default process metrics, per-route request counters and latency, and `GET /metrics`.
 */
export const metricsPlugin = fp(
  async (app: FastifyInstance) => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'rehyat_api_' });
    const metrics: ApiMetrics = {
      registry,
      httpRequests: new Counter({
        name: 'rehyat_api_http_requests_total',
        help: 'HTTP requests answered, by route pattern and status',
        labelNames: ['method', 'route', 'status'],
        registers: [registry],
      }),
      httpDuration: new Histogram({
        name: 'rehyat_api_http_request_duration_seconds',
        help: 'Time to answer an HTTP request (headers sent), by route pattern',
        labelNames: ['method', 'route'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [registry],
      }),
      videosCreated: new Counter({
        name: 'rehyat_api_videos_created_total',
        help: 'Videos created (new jobs enqueued), by model',
        labelNames: ['model'],
        registers: [registry],
      }),
      videosCancelled: new Counter({
        name: 'rehyat_api_videos_cancelled_total',
        help: 'Cancel requests accepted, by the status the video had',
        labelNames: ['from'],
        registers: [registry],
      }),
      creationBatchSize: new Histogram({
        name: 'rehyat_api_video_creation_batch_size',
        help: 'Videos stored and queued together (one INSERT, one Redis MULTI) per creation batch',
        buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
        registers: [registry],
      }),
    };
    app.decorate('metrics', metrics);
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
      metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    });
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      void reply.type(registry.contentType);
      return registry.metrics();
    });
    app.addHook('onClose', async () => {
      registry.clear();
    });
  },
  { name: 'rehyat-metrics', fastify: '5.x' },
);
