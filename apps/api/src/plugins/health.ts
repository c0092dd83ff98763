import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { hostPort } from '../config.js';

export const DependencyName = z.enum(['database', 'redis', 'storage']);
export type DependencyName = z.infer<typeof DependencyName>;

export const DependencyCheck = z.object({
  name: DependencyName,
  ok: z.boolean(),
  /** `host:port` (or endpoint) that was checked. */
  target: z.string(),
  error: z.string().nullable(),
});
export type DependencyCheck = z.infer<typeof DependencyCheck>;

const Readiness = z.object({
  status: z.enum(['ready', 'unavailable']),
  /** Human-readable summary naming what is down. */
  message: z.string(),
  checks: z.array(DependencyCheck),
});

declare module 'fastify' {
  interface FastifyInstance {
    /** Checks Postgres, Redis and S3 once each, concurrently, each within DEPENDENCY_TIMEOUT_MS. */
    checkDependencies: () => Promise<DependencyCheck[]>;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One line naming why a dependency check failed (first cause of an AggregateError, errno code). */
export function describeFailure(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return describeFailure(err.errors[0]);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const msg = err.message || code || err.name;
    return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
  }
  return String(err);
}

/** Summary line such as `database (127.0.0.1:5432) is down: ECONNREFUSED`. */
export function summarize(checks: DependencyCheck[]): string {
  const down = checks.filter((c) => !c.ok);
  if (down.length === 0) return 'all dependencies are reachable';
  return down.map((c) => `${c.name} (${c.target}) is down: ${c.error}`).join('; ');
}

/**
 * `health`: `GET /healthz` (the process answers) and `GET /readyz` (Postgres, Redis and S3 all
 * answer; 503 naming what is down otherwise).
 */
export const healthPlugin = fp(
  async (app: FastifyInstance) => {
    const timeoutMs = app.config.DEPENDENCY_TIMEOUT_MS;
    const run = async (name: DependencyName, target: string, fn: () => Promise<unknown>): Promise<DependencyCheck> => {
      try {
        await withTimeout(fn(), timeoutMs, name);
        return { name, ok: true, target, error: null };
      } catch (err) {
        return { name, ok: false, target, error: describeFailure(err) };
      }
    };
    app.decorate('checkDependencies', async () =>
      Promise.all([
        run('database', hostPort(app.config.DATABASE_URL, 5432), () => app.prisma.$queryRawUnsafe('SELECT 1')),
        run('redis', hostPort(app.config.REDIS_URL, 6379), () => app.redis.ping()),
        run('storage', `${app.storage.endpoint} bucket ${app.storage.bucket}`, () => app.storage.ping()),
      ]),
    );

    const typed = app.withTypeProvider<ZodTypeProvider>();
    typed.get(
      '/healthz',
      {
        schema: {
          tags: ['health'],
          summary: 'Liveness: the process is up',
          response: { 200: z.object({ status: z.literal('ok') }) },
        },
      },
      async () => ({ status: 'ok' as const }),
    );
    typed.get(
      '/readyz',
      {
        schema: {
          tags: ['health'],
          summary: 'Readiness: Postgres, Redis and S3 all answer',
          response: { 200: Readiness, 503: Readiness },
        },
      },
      async (_request, reply) => {
        const checks = await app.checkDependencies();
        const ok = checks.every((c) => c.ok);
        return reply.status(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', message: summarize(checks), checks });
      },
    );
  },
  { name: 'rehyat-health', fastify: '5.x', dependencies: ['rehyat-config', 'rehyat-prisma', 'rehyat-redis', 'rehyat-storage'] },
);
