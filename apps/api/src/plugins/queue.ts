import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Queue } from 'bullmq';
import { Gauge } from 'prom-client';
import { GENERATION_QUEUE } from '@rehyat/contracts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The contract's generation queue, under the deployment's Redis prefix. */
    generationQueue: Queue;
  }
}

/**
 * `queue`: the BullMQ queue of `GENERATION_QUEUE` (contracts), on the shared Redis connection,
 * with the keyspace prefix as BullMQ prefix so workers of the same deployment find it.
 */
export const queuePlugin = fp(
  async (app: FastifyInstance) => {
    const queue = new Queue(GENERATION_QUEUE, {
      connection: app.redis,
      prefix: app.keyspace.prefix,
      skipWaitingForReady: true,
    });
    queue.on('error', (err: Error) => app.log.warn({ err: err.message }, 'generation queue error'));
    app.decorate('generationQueue', queue);
    const states = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;
    new Gauge({
      name: 'rehyat_api_generation_jobs',
      help: 'Generation jobs in the queue, by BullMQ state (read at scrape time)',
      labelNames: ['state'],
      registers: [app.metrics.registry],
      async collect() {
        try {
          const counts = await queue.getJobCounts(...states);
          for (const s of states) this.set({ state: s }, counts[s] ?? 0);
        } catch {
          this.reset(); // Redis down: no samples rather than a failed scrape
        }
      },
    });
    app.addHook('onClose', async () => {
      await queue.close().catch(() => undefined);
    });
  },
  { name: 'rehyat-queue', fastify: '5.x', dependencies: ['rehyat-config', 'rehyat-redis', 'rehyat-metrics'] },
);

/** Redis key of the queue's wait list (LPUSH by producers, taken from the right by workers). */
export function waitListKey(prefix: string): string {
  return `${prefix}:${GENERATION_QUEUE}:wait`;
}

/** Redis key of the queue's prioritized set (jobs added with a `priority`, served after the wait list). */
export function prioritizedSetKey(prefix: string): string {
  return `${prefix}:${GENERATION_QUEUE}:prioritized`;
}
