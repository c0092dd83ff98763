import { createHmac, timingSafeEqual } from 'node:crypto';
import { secretKey } from './secret.js';

/**
 * The three headers of a Standard Webhooks request. A type alias, not an interface, so that it
 * is assignable to header records (`Record<string, string>`, openai's `HeadersLike`).
 */
export type WebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/** base64 HMAC-SHA256 of `id.timestamp.body` under one `whsec_` secret. */
export function signatureOf(secret: string, id: string, timestampS: number, body: string): string {
  return createHmac('sha256', secretKey(secret)).update(`${id}.${timestampS}.${body}`).digest('base64');
}

export interface SignOptions {
  /** Message id: the same for every attempt of one message, so receivers can deduplicate. */
  id: string;
  /** Exact bytes that will be sent (the signature covers them, not a re-serialisation). */
  body: string;
  /**
   * Every secret currently valid for the endpoint, newest first. During a rotation the old
   * secret stays valid for a while: one `v1,` signature per secret, space-separated, so a
   * receiver holding either secret verifies the message.
   */
  secrets: readonly string[];
  /**
   * Unix seconds of this attempt.
   * @defaultValue now
   */
  timestampS?: number;
}

/** The `webhook-*` headers of one delivery attempt. */
export function signWebhook(opts: SignOptions): WebhookHeaders {
  if (opts.secrets.length === 0) throw new Error('signWebhook needs at least one secret');
  const ts = opts.timestampS ?? Math.floor(Date.now() / 1000);
  const signatures = opts.secrets.map((s) => `v1,${signatureOf(s, opts.id, ts, opts.body)}`);
  return { 'webhook-id': opts.id, 'webhook-timestamp': String(ts), 'webhook-signature': signatures.join(' ') };
}

export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
}

export interface VerifyOptions {
  /**
   * Largest accepted distance between the timestamp and now, in seconds (replay protection).
   * @defaultValue 300
   */
  toleranceS?: number;
  /** @defaultValue now */
  nowS?: number;
}

/**
 * Verifies a received message against one secret (what a receiver does; used by our tests and
 * available to consumers written in TypeScript). Throws {@link WebhookVerificationError}.
 */
export function verifyWebhook(
  body: string,
  headers: Record<string, string | string[] | undefined>,
  secret: string,
  opts: VerifyOptions = {},
): void {
  const get = (name: string): string => {
    const v = headers[name];
    const s = Array.isArray(v) ? v[0] : v;
    if (!s) throw new WebhookVerificationError(`missing header ${name}`);
    return s;
  };
  const id = get('webhook-id');
  const tsText = get('webhook-timestamp');
  const sigHeader = get('webhook-signature');
  const ts = Number(tsText);
  if (!Number.isInteger(ts)) throw new WebhookVerificationError('invalid webhook-timestamp');
  const now = opts.nowS ?? Math.floor(Date.now() / 1000);
  const tolerance = opts.toleranceS ?? 300;
  if (Math.abs(now - ts) > tolerance) throw new WebhookVerificationError('webhook-timestamp outside tolerance');
  const expected = Buffer.from(signatureOf(secret, id, ts, body), 'base64');
  for (const part of sigHeader.split(' ')) {
    const [version, sig] = part.split(',', 2);
    if (version !== 'v1' || !sig) continue;
    const got = Buffer.from(sig, 'base64');
    if (got.length === expected.length && timingSafeEqual(got, expected)) return;
  }
  throw new WebhookVerificationError('no matching signature');
}
