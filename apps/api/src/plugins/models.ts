import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ModelRegistry } from '../model-registry.js';

declare module 'fastify' {
  interface FastifyInstance {
    models: ModelRegistry;
  }
}

export interface ModelsPluginOptions {
  /** A registry built by the caller; read from `MODELS_DIR` when absent. */
  registry?: ModelRegistry | undefined;
}

/** `models`: the installed model manifests, read once at boot (see `../model-registry.ts`). */
export const modelsPlugin = fp<ModelsPluginOptions>(
  async (app: FastifyInstance, opts) => {
    const registry =
      opts.registry ?? (await ModelRegistry.load({ modelsDir: app.config.MODELS_DIR, defaultModel: app.config.DEFAULT_MODEL }));
    if (registry.names().length === 0) app.log.warn(`no model manifests under ${app.config.MODELS_DIR}; video creation will answer model_not_found`);
    app.decorate('models', registry);
  },
  { name: 'rehyat-models', fastify: '5.x', dependencies: ['rehyat-config'] },
);
