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
 * message is the key id. Every API instance drops that key from its in-memory cache at once.
 */
export function apiKeyChangesChannel(prefix: string): string {
  return `${prefix}:api-keys:changed`;
}

/** Announces that `keyId` changed (see {@link apiKeyChangesChannel}). */
export async function publishApiKeyChange(redis: { publish(channel: string, message: string): Promise<number> }, prefix: string, keyId: string): Promise<void> {
  await redis.publish(apiKeyChangesChannel(prefix), keyId);
}
