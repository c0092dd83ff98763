import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { API_KEY_PATTERN, apiKeyAckKey, hashApiKey, publishApiKeyChange, type Announcement } from '../api-keys.js';
import { ApiError } from '../errors.js';
import { ApiKeyCache } from '../services/api-key-cache.js';

/** The API key a request authenticated with. */
export interface Principal {
  keyId: string;
  role: 'user' | 'admin';
  /** The key's own requests-per-minute limit; null: the server default. */
  rateLimitRpm: number | null;
  /** The key's own cap on active videos; null: the server default. */
  maxActiveVideos: number | null;
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
    /** The keys cache, and the announcement of a changed key (revocation, limits) to every instance. */
    apiKeys: { cache: ApiKeyCache; announceChange: (keyId: string) => Promise<Announcement> };
  }
}

const LAST_USED_RESOLUTION_MS = 60_000;
const keySelect = { id: true, role: true, revokedAt: true, lastUsedAt: true, rateLimitRpm: true, maxActiveVideos: true } as const;

/**
 * `auth`: Bearer API keys. The secret is hashed (see `../api-keys.ts`) and looked up, through an
 * in-memory cache kept exact by Redis announcements (`../services/api-key-cache.ts`); unknown
 * and revoked keys are refused alike (401 `invalid_api_key`). Route plugins opt in with
 * `app.addHook('onRequest', app.authenticate)`.
 */
export const authPlugin = fp(
  async (app: FastifyInstance) => {
    const cache = new ApiKeyCache({
      ttlMs: app.config.API_KEY_CACHE_TTL_MS,
      prefix: app.keyspace.prefix,
      subscriber: app.redis.duplicate({
        lazyConnect: true,
        autoResubscribe: false,
        maxRetriesPerRequest: null,
        connectionName: `${app.keyspace.prefix}:api-keys`,
      }),
      load: async (hash) => {
        const row = await app.prisma.apiKey.findUnique({ where: { hash }, select: keySelect });
        return row && { ...row, role: row.role === 'admin' ? 'admin' : 'user' };
      },
      onError: () => undefined, // the command connection and /readyz report Redis being down
      acknowledge: (nonce) => {
        const key = apiKeyAckKey(app.keyspace.prefix, nonce);
        app.redis
          .multi()
          .rpush(key, '1')
          .expire(key, 60)
          .exec()
          .catch(() => undefined); // the announcer then waits until its deadline
      },
    });
    cache.start();
    app.decorate('apiKeys', { cache, announceChange: (keyId: string) => publishApiKeyChange(app.redis, app.keyspace.prefix, keyId) });
    app.addHook('onClose', async () => {
      await cache.close();
    });

    app.decorateRequest('principal', null as unknown as Principal);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      if (!header) throw new ApiError('missing_api_key');
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!match) throw new ApiError('missing_api_key', 'Send the API key as `Authorization: Bearer rh_...`.');
      const secret = match[1]!;
      if (!API_KEY_PATTERN.test(secret)) throw new ApiError('invalid_api_key');
      const key = await cache.get(hashApiKey(secret));
      if (!key || key.revokedAt !== null) throw new ApiError('invalid_api_key');
      const now = Date.now();
      if (!key.lastUsedAt || now - key.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
        // Best effort, at most once a minute per key and instance; never delays or fails the request.
        key.lastUsedAt = new Date(now);
        app.prisma.apiKey
          .update({ where: { id: key.id }, data: { lastUsedAt: key.lastUsedAt } })
          .catch((err: unknown) => request.log.debug({ err }, 'could not record API key use'));
      }
      request.principal = { keyId: key.id, role: key.role, rateLimitRpm: key.rateLimitRpm, maxActiveVideos: key.maxActiveVideos };
    });
    app.decorate('requireAdmin', async (request: FastifyRequest) => {
      if (request.principal?.role !== 'admin') throw new ApiError('permission_denied', 'This route needs an admin API key.');
    });
  },
  { name: 'rehyat-auth', fastify: '5.x', dependencies: ['rehyat-config', 'rehyat-prisma', 'rehyat-redis'] },
);
