/**
 * The Redis commands {@link deleteRedisPrefix} uses, typed structurally so that this package needs
 * no Redis client at runtime: an ioredis `Redis` satisfies it as is.
 */
export interface PrefixScanningRedis {
  scan(cursor: string, matchToken: 'MATCH', pattern: string, countToken: 'COUNT', count: number): Promise<[cursor: string, keys: string[]]>;
  del(...keys: string[]): Promise<unknown>;
}

/** Options of {@link deleteRedisPrefix}. */
export interface DeleteRedisPrefixOptions {
  /**
   * The `COUNT` hint of each `SCAN` call (keys examined per round trip, not a limit).
   * @defaultValue 1000
   */
  count?: number;
}

/**
 * Deletes every key under `prefix:` (the keys matching `${prefix}:*`), walking the keyspace with
 * `SCAN` and deleting each batch found with `DEL`. For tests and benches that give themselves a
 * unique Redis prefix and clean it up afterwards; not for production keyspaces (it does not
 * coordinate with writers, and keys written during the walk may survive it).
 */
export async function deleteRedisPrefix(redis: PrefixScanningRedis, prefix: string, options: DeleteRedisPrefixOptions = {}): Promise<void> {
  const count = options.count ?? 1000;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', count);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}
