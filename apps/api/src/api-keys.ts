import { createHash, randomBytes } from 'node:crypto';

/** Secret API keys look like `rh_` + 43 base64url characters (32 random bytes). */
export const API_KEY_PATTERN = /^rh_[A-Za-z0-9_-]{43}$/;

/** Characters of the secret (after `rh_`) kept in clear as the displayed prefix. */
const PREFIX_CHARS = 8;

export interface NewApiKey {
  /** The full secret; shown once, never stored. */
  secret: string;
  /** `rh_` plus the first characters, stored and shown in listings to tell keys apart. */
  prefix: string;
  /** SHA-256 hex of the secret, the only thing stored to recognise it. */
  hash: string;
}

export function generateApiKey(): NewApiKey {
  const secret = `rh_${randomBytes(32).toString('base64url')}`;
  return { secret, prefix: secret.slice(0, 3 + PREFIX_CHARS), hash: hashApiKey(secret) };
}

/**
 * Keys carry 256 random bits, so a fast unsalted hash is enough to make a leaked table useless
 * and lets the lookup be one indexed equality.
 */
export function hashApiKey(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/**
 * Redis pub/sub channel on which a change to a key (revocation, limits) is announced; the
 * message is `<key id> <nonce>`. Every API instance drops that key from its in-memory cache and
 * then confirms by pushing to {@link apiKeyAckKey}.
 */
export function apiKeyChangesChannel(prefix: string): string {
  return `${prefix}:api-keys:changed`;
}

/** List every instance pushes one entry to once it has applied announcement `nonce`. */
export function apiKeyAckKey(prefix: string, nonce: string): string {
  return `${prefix}:api-keys:ack:${nonce}`;
}

/** What {@link publishApiKeyChange} needs of a connection (any ioredis client). */
export interface AnnounceConnection {
  publish(channel: string, message: string): Promise<number>;
  llen(key: string): Promise<number>;
  del(...keys: string[]): Promise<number>;
}

export interface Announcement {
  /** API instances subscribed when it was published. */
  instances: number;
  /** Those that confirmed they dropped the key before the deadline. */
  confirmed: number;
}

/**
 * Announces that `keyId` changed (see {@link apiKeyChangesChannel}) and waits until every
 * instance that received it has confirmed (or `timeoutMs` passed), so that once it resolves with
 * `confirmed === instances`, no instance still serves the old key from memory: a revocation is
 * refused at once everywhere, not merely soon. Instances whose subscription is down are not
 * counted; they serve nothing from their cache until they have resubscribed.
 */
export async function publishApiKeyChange(redis: AnnounceConnection, prefix: string, keyId: string, opts: { timeoutMs?: number } = {}): Promise<Announcement> {
  const nonce = randomBytes(8).toString('hex');
  const ack = apiKeyAckKey(prefix, nonce);
  const instances = await redis.publish(apiKeyChangesChannel(prefix), `${keyId} ${nonce}`);
  let confirmed = 0;
  const deadline = Date.now() + (opts.timeoutMs ?? 2000);
  try {
    while (instances > 0) {
      confirmed = await redis.llen(ack);
      if (confirmed >= instances || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await redis.del(ack).catch(() => undefined);
  }
  return { instances, confirmed: Math.min(confirmed, instances) };
}
