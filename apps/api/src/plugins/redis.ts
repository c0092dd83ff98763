import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Redis } from 'ioredis';
import { hostPort } from '../config.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Shared command connection (events, cancel signal, queue). Never used for blocking reads. */
    redis: Redis;
  }
}

export interface RedisPluginOptions {
  url: string;
  /** @defaultValue 2000 */
  connectTimeoutMs?: number;
}

/**
 * `redis`: one ioredis connection for commands. It connects lazily and keeps reconnecting while
 * Redis is down; a command fails after one retry instead of waiting, so requests answer 503
 * rather than hang. Closed in `onClose`.
 */
export const redisPlugin = fp<RedisPluginOptions>(
  async (app: FastifyInstance, opts) => {
    const where = hostPort(opts.url, 6379);
    const redis = new Redis(opts.url, {
      lazyConnect: true,
      connectTimeout: opts.connectTimeoutMs ?? 2000,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    let lastLogged = 0;
    redis.on('error', (err: Error) => {
      const now = Date.now();
      if (now - lastLogged > 10_000) {
        lastLogged = now;
        app.log.warn({ err: err.message }, `Redis at ${where} unreachable`);
      }
    });
    redis.connect().catch(() => {
      /* reported through the 'error' event and /readyz; ioredis keeps retrying */
    });
    app.decorate('redis', redis);
    app.addHook('onClose', async () => {
      redis.disconnect();
    });
  },
  { name: 'rehyat-redis', fastify: '5.x', dependencies: ['rehyat-config'] },
);
