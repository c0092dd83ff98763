import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createPrismaClient, type PrismaClient } from '@rehyat/db';

declare module 'fastify' {
  interface FastifyInstance {
    prisma: PrismaClient;
  }
}

export interface PrismaPluginOptions {
  databaseUrl: string;
}

/** `prisma`: the Prisma client (engine-free, over node-postgres) from `@rehyat/db`. */
export const prismaPlugin = fp<PrismaPluginOptions>(
  async (app: FastifyInstance, opts) => {
    const prisma = createPrismaClient({ databaseUrl: opts.databaseUrl });
    app.decorate('prisma', prisma);
    app.addHook('onClose', async () => {
      await prisma.$disconnect();
    });
  },
  { name: 'rehyat-prisma', fastify: '5.x' },
);
