import { Redis } from 'ioredis';
import { publishApiKeyChange } from '../api-keys.js';
import { hostPort, type Config } from '../config.js';

/** Thrown when a key change was committed but could not be announced to the API instances. */
export class AnnounceError extends Error {
  override name = 'AnnounceError';
}

/**
 * The CLIs' announcement of a changed key (revocation, limits) on Redis, so every running API
 * instance drops it from its key cache at once; it returns once they all confirmed (a warning
 * names any that did not within 2 s). One short-lived connection; a Redis that is
 * down fails fast with an {@link AnnounceError} saying what that means.
 */
export function cliAnnouncer(config: Config): { announce: (keyId: string) => Promise<void>; close: () => void } {
  let redis: Redis | undefined;
  return {
    async announce(keyId: string) {
      if (!redis) {
        redis = new Redis(config.REDIS_URL, {
          lazyConnect: true,
          connectTimeout: config.DEPENDENCY_TIMEOUT_MS,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        redis.on('error', () => undefined); // reported by the failed publish below
      }
      try {
        if (redis.status === 'wait') await redis.connect();
        const { instances, confirmed } = await publishApiKeyChange(redis, config.REDIS_PREFIX, keyId);
        if (confirmed < instances) {
          process.stderr.write(
            `warning: ${confirmed} of ${instances} API instances confirmed the change to ${keyId} in time; the others apply it ` +
              `as soon as they process the announcement (at the latest after API_KEY_CACHE_TTL_MS, ${config.API_KEY_CACHE_TTL_MS} ms)\n`,
          );
        }
      } catch (err) {
        throw new AnnounceError(
          `the change to ${keyId} is saved, but it could not be announced through Redis at ${hostPort(config.REDIS_URL, 6379)} ` +
            `(${err instanceof Error ? err.message : String(err)}); running API instances apply it within ` +
            `API_KEY_CACHE_TTL_MS (${config.API_KEY_CACHE_TTL_MS} ms). Run the command again once Redis is reachable.`,
        );
      }
    },
    close() {
      redis?.disconnect();
    },
  };
}
