import { randomBytes } from 'node:crypto';

/** Prefix of every signing secret, as in the Standard Webhooks spec (and OpenAI, Svix). */
export const SECRET_PREFIX = 'whsec_';

/** Bytes of key material in a generated secret (the spec asks for 24 to 64). */
export const SECRET_BYTES = 32;

/** A new signing secret: `whsec_` followed by the base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

export class InvalidSecretError extends Error {
  override readonly name = 'InvalidSecretError';
}

/** The HMAC key of a `whsec_` secret. Throws {@link InvalidSecretError} on anything else. */
export function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new InvalidSecretError(`a signing secret starts with ${SECRET_PREFIX}`);
  }
  const b64 = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new InvalidSecretError('a signing secret is base64 after its prefix');
  const key = Buffer.from(b64, 'base64');
  if (key.length < 24 || key.length > 64) {
    throw new InvalidSecretError(`a signing secret holds 24 to 64 bytes, this one ${key.length}`);
  }
  return key;
}

/**
 * What the API shows of a secret after creation (never the secret itself): the prefix and the
 * last four characters, as OpenAI's `signing_secret_hint`.
 */
export function secretHint(secret: string): string {
  return `${SECRET_PREFIX}...${secret.slice(-4)}`;
}
