import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createPgPool, createPrismaClient, type PgPool, type PrismaClient } from '@rehyat/db';

declare module 'fastify' {
  interface FastifyInstance {
    prisma: PrismaClient;
    /** The pg pool behind `prisma`, for the few raw hot-path statements (batched video inserts). */
    pg: PgPool;
  }
}

export interface PrismaPluginOptions {
  databaseUrl: string;
}

/** `prisma`: the Prisma client (engine-free, over node-postgres) from `@rehyat/db`, on a pg pool it shares with raw statements. */
export const prismaPlugin = fp<PrismaPluginOptions>(
  async (app: FastifyInstance, opts) => {
    const pool = createPgPool({ databaseUrl: opts.databaseUrl });
    const prisma = createPrismaClient({ databaseUrl: opts.databaseUrl, pool });
    app.decorate('prisma', prisma);
    app.decorate('pg', pool);
    app.addHook('onClose', async () => {
      await prisma.$disconnect();
      await pool.end();
    });
  },
  { name: 'rehyat-prisma', fastify: '5.x' },
);
