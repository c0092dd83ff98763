import type { RateDecision } from './request-rate.js';

/** Go-style duration as OpenAI writes it in `x-ratelimit-reset-*` (`1s`, `6m0s`, `20ms`). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const totalS = Math.ceil(ms / 1000);
  const h = Math.floor(totalS / 3600);
  const m = Math.floor((totalS % 3600) / 60);
  const s = totalS % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * The response headers of a rate decision, as OpenAI sends them; on a denial also
 * `retry-after` (whole seconds) and `retry-after-ms`, both of which the openai client honours.
 */
export function rateLimitHeaders(d: RateDecision): Record<string, string> {
  const h: Record<string, string> = {
    'x-ratelimit-limit-requests': String(d.limit),
    'x-ratelimit-remaining-requests': String(d.remaining),
    'x-ratelimit-reset-requests': formatDuration(d.resetAfterMs),
  };
  if (!d.allowed) {
    h['retry-after'] = String(Math.max(1, Math.ceil(d.retryAfterMs / 1000)));
    h['retry-after-ms'] = String(Math.max(1, d.retryAfterMs));
  }
  return h;
}
