import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Keyspace } from '@rehyat/contracts';
import type { Config } from '../config.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The parsed configuration (see `../config.ts`). */
    config: Config;
    /** Redis key and channel naming shared with the workers, under `REDIS_PREFIX`. */
    keyspace: Keyspace;
  }
}

export interface ConfigPluginOptions {
  config: Config;
}

/** `config`: exposes the parsed configuration and the contract's keyspace to every plugin. */
export const configPlugin = fp<ConfigPluginOptions>(
  async (app: FastifyInstance, opts) => {
    app.decorate('config', opts.config);
    app.decorate('keyspace', new Keyspace({ prefix: opts.config.REDIS_PREFIX }));
  },
  { name: 'rehyat-config', fastify: '5.x' },
);
