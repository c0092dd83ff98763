/**
 * When the attempts of one message happen. Entry `i` is the delay before attempt `i + 1`, counted
 * from the previous attempt (entry 0 from the event).
 *
 * The first eight are the Standard Webhooks spec's schedule (immediately, 5 s, 5 min, 30 min,
 * 2 h, 5 h, 10 h, 10 h, about 27.6 h in all); two more attempts (20 h, 24 h) stretch it to about
 * 72 h, the window OpenAI retries in. A message whose last attempt fails is `failed`.
 */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
  20 * 3_600_000,
  24 * 3_600_000,
];

export interface RetryPolicy {
  /**
   * Delays between attempts, see {@link DEFAULT_RETRY_SCHEDULE_MS}; its length is the number of
   * attempts.
   * @defaultValue DEFAULT_RETRY_SCHEDULE_MS
   */
  scheduleMs?: readonly number[];
  /**
   * Each delay is multiplied by a uniform factor in `[1 - jitter, 1 + jitter]` so that receivers
   * that came back up are not hit by every sender at once.
   * @defaultValue 0.2
   */
  jitter?: number;
  /**
   * Longest `Retry-After` honoured, in milliseconds; a longer one is cut to this.
   * @defaultValue 86_400_000 (24 h)
   */
  maxRetryAfterMs?: number;
  /** Source of randomness in [0, 1), for tests. @defaultValue Math.random */
  random?: () => number;
}

export function maxAttempts(policy: RetryPolicy = {}): number {
  return (policy.scheduleMs ?? DEFAULT_RETRY_SCHEDULE_MS).length;
}

/**
 * Delay before the next attempt after `attemptsMade` failed attempts, or `null` when none is left.
 * A `Retry-After` from the receiver is honoured: the next attempt is never earlier than it asked
 * (nor earlier than the schedule).
 */
export function nextDelayMs(attemptsMade: number, retryAfterMs: number | null, policy: RetryPolicy = {}): number | null {
  const schedule = policy.scheduleMs ?? DEFAULT_RETRY_SCHEDULE_MS;
  const base = schedule[attemptsMade];
  if (base === undefined) return null;
  const jitter = policy.jitter ?? 0.2;
  const random = policy.random ?? Math.random;
  const jittered = Math.round(base * (1 - jitter + 2 * jitter * random()));
  const floor = retryAfterMs === null ? 0 : Math.min(retryAfterMs, policy.maxRetryAfterMs ?? 86_400_000);
  return Math.max(jittered, floor);
}

/**
 * Parses a `Retry-After` header (delta seconds or an HTTP date) into milliseconds from `nowMs`;
 * `null` when absent or unparsable.
 */
export function parseRetryAfter(value: string | undefined | null, nowMs: number = Date.now()): number | null {
  if (value === undefined || value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}
