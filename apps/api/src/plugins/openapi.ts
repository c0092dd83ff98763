import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

export interface OpenApiPluginOptions {
  /** Serve Swagger UI at `/docs`. @defaultValue true */
  docs?: boolean;
  version: string;
}

/**
 * `openapi`: the OpenAPI 3 document generated from every route's zod schemas, served at
 * `/openapi.json`, and Swagger UI at `/docs`. Must be registered before the routes.
 */
export const openapiPlugin = fp<OpenApiPluginOptions>(
  async (app: FastifyInstance, opts) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'rehyat API',
          description:
            'Text-to-video generation, compatible with OpenAI\'s Videos API (use the official client with `baseURL` set to `<origin>/v1`), plus live events, HLS playback and cancellation.',
          version: opts.version,
        },
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', description: 'API key `rh_...`' },
            signedUrl: {
              type: 'apiKey',
              in: 'query',
              name: 'sig',
              description: 'Signed URL (playback routes): `expires` and `sig` as issued in `playlist_url` / `chunks[].url`.',
            },
          },
        },
      },
      transform: jsonSchemaTransform,
      transformObject: jsonSchemaTransformObject,
    });
    if (opts.docs ?? true) {
      await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
    }
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'rehyat-openapi', fastify: '5.x' },
);
