import { deliverOnce, type AttemptResult } from './deliver.js';
import type { AttemptUpdate, DeliveryStore } from './delivery-store.js';
import { nextDelayMs, type RetryPolicy } from './retry-schedule.js';
import { signWebhook } from './signature.js';
import type { SsrfGuard } from './ssrf-guard.js';

export interface AttemptContext {
  store: DeliveryStore;
  guard: SsrfGuard;
  retry?: RetryPolicy;
  /** @defaultValue 10_000 */
  timeoutMs?: number;
  /** @defaultValue 1024 */
  excerptBytes?: number;
  now?: () => Date;
}

/** What {@link runAttempt} did; `next` is set when another attempt must be scheduled. */
export type AttemptOutcome =
  | { kind: 'skipped'; reason: 'missing' | 'not_pending' | 'stale' }
  | { kind: 'recorded'; update: AttemptUpdate; result: AttemptResult | null; next: { attempt: number; delayMs: number } | null }
  | { kind: 'lost_race' };

/** Attempt errors that another try will not fix: the delivery fails at once. */
const PERMANENT_ERRORS = new Set(['invalid_url', 'blocked_address']);

/**
 * Makes attempt number `attempt` (1-based) of a delivery and records it. Driven entirely by the
 * store: a job for an attempt the record has already passed, or for a settled delivery, does
 * nothing, so duplicate or replayed jobs are harmless.
 */
export async function runAttempt(ctx: AttemptContext, deliveryId: string, attempt: number): Promise<AttemptOutcome> {
  const target = await ctx.store.loadForAttempt(deliveryId);
  if (!target) return { kind: 'skipped', reason: 'missing' };
  const d = target.delivery;
  if (d.status !== 'pending') return { kind: 'skipped', reason: 'not_pending' };
  if (d.attempts !== attempt - 1) return { kind: 'skipped', reason: 'stale' };
  const now = ctx.now ?? (() => new Date());

  if (!target.endpointEnabled || target.secrets.length === 0) {
    const update: AttemptUpdate = {
      status: 'failed',
      attempts: d.attempts,
      nextAttemptAt: null,
      lastStatusCode: d.lastStatusCode,
      lastLatencyMs: d.lastLatencyMs,
      lastResponseExcerpt: d.lastResponseExcerpt,
      lastError: target.endpointEnabled ? 'no_signing_secret: nothing to sign with' : 'endpoint_disabled: the endpoint is disabled or deleted',
    };
    const wrote = await ctx.store.recordAttempt(deliveryId, d.attempts, update);
    return wrote ? { kind: 'recorded', update, result: null, next: null } : { kind: 'lost_race' };
  }

  const headers = signWebhook({ id: d.messageId, body: d.payload, secrets: target.secrets });
  const result = await deliverOnce({
    url: d.url,
    body: d.payload,
    headers,
    guard: ctx.guard,
    timeoutMs: ctx.timeoutMs ?? 10_000,
    excerptBytes: ctx.excerptBytes ?? 1024,
  });

  const base = {
    attempts: attempt,
    lastStatusCode: result.statusCode,
    lastLatencyMs: result.latencyMs,
    lastResponseExcerpt: result.responseExcerpt,
    lastError: result.error ? `${result.error.code}: ${result.error.message}` : null,
  };
  let update: AttemptUpdate;
  let next: { attempt: number; delayMs: number } | null = null;
  let disable = false;
  if (result.ok) {
    update = { ...base, status: 'succeeded', nextAttemptAt: null };
  } else if (result.statusCode === 410) {
    update = { ...base, status: 'failed', nextAttemptAt: null, lastError: 'gone: the receiver answered 410, endpoint disabled' };
    disable = d.endpointId !== null;
  } else if (result.error && PERMANENT_ERRORS.has(result.error.code)) {
    update = { ...base, status: 'failed', nextAttemptAt: null };
  } else {
    const delay = nextDelayMs(attempt, result.retryAfterMs, ctx.retry);
    if (delay === null) {
      update = { ...base, status: 'failed', nextAttemptAt: null };
    } else {
      update = { ...base, status: 'pending', nextAttemptAt: new Date(now().getTime() + delay) };
      next = { attempt: attempt + 1, delayMs: delay };
    }
  }
  const wrote = await ctx.store.recordAttempt(deliveryId, d.attempts, update);
  if (!wrote) return { kind: 'lost_race' };
  if (disable && d.endpointId) await ctx.store.disableEndpoint(d.endpointId, `receiver answered 410 Gone on delivery ${deliveryId}`);
  return { kind: 'recorded', update, result, next };
}
