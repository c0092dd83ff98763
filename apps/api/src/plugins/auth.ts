import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { API_KEY_PATTERN, hashApiKey } from '../api-keys.js';
import { ApiError } from '../errors.js';

/** The API key a request authenticated with. */
export interface Principal {
  keyId: string;
  role: 'user' | 'admin';
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.authenticate`; routes behind it may rely on it. */
    principal: Principal;
  }
  interface FastifyInstance {
    /** onRequest hook: accepts `Authorization: Bearer rh_...` of a key that is not revoked. */
    authenticate: (request: FastifyRequest) => Promise<void>;
    /** preHandler hook: refuses (403) keys without the admin role. */
    requireAdmin: (request: FastifyRequest) => Promise<void>;
  }
}

const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * `auth`: Bearer API keys. The secret is hashed (see `../api-keys.ts`) and looked up; unknown
 * and revoked keys are refused alike (401 `invalid_api_key`). Route plugins opt in with
 * `app.addHook('onRequest', app.authenticate)`.
 */
export const authPlugin = fp(
  async (app: FastifyInstance) => {
    app.decorateRequest('principal', null as unknown as Principal);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      if (!header) throw new ApiError('missing_api_key');
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match) throw new ApiError('missing_api_key', 'Send the API key as `Authorization: Bearer rh_...`.');
      const secret = match[1]!;
      if (!API_KEY_PATTERN.test(secret)) throw new ApiError('invalid_api_key');
      const key = await app.prisma.apiKey.findUnique({
        where: { hash: hashApiKey(secret) },
        select: { id: true, role: true, revokedAt: true, lastUsedAt: true },
      });
      if (!key || key.revokedAt !== null) throw new ApiError('invalid_api_key');
      const now = Date.now();
      if (!key.lastUsedAt || now - key.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
        // Best effort, at most once a minute per key; never delays or fails the request.
        app.prisma.apiKey
          .update({ where: { id: key.id }, data: { lastUsedAt: new Date(now) } })
          .catch((err: unknown) => request.log.debug({ err }, 'could not record API key use'));
      }
      request.principal = { keyId: key.id, role: key.role === 'admin' ? 'admin' : 'user' };
    });
    app.decorate('requireAdmin', async (request: FastifyRequest) => {
      if (request.principal?.role !== 'admin') throw new ApiError('permission_denied', 'This route needs an admin API key.');
    });
  },
  { name: 'rehyat-auth', fastify: '5.x', dependencies: ['rehyat-prisma'] },
);
