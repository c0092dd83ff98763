import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_RETRY_SCHEDULE_MS, maxAttempts, nextDelayMs, parseRetryAfter } from '../src/index.js';

test('the default schedule is the spec schedule stretched to about three days', () => {
  assert.deepEqual(DEFAULT_RETRY_SCHEDULE_MS.slice(0, 8), [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
  const totalH = DEFAULT_RETRY_SCHEDULE_MS.reduce((a, b) => a + b, 0) / 3_600_000;
  assert.ok(totalH > 70 && totalH <= 72, `total ${totalH} h`);
  assert.equal(maxAttempts(), 10);
});

test('jitter stays within its bounds and the schedule ends with null', () => {
  assert.equal(nextDelayMs(1, null, { random: () => 0 }), 4_000);
  assert.equal(nextDelayMs(1, null, { random: () => 0.999999 }), 6_000);
  assert.equal(nextDelayMs(1, null, { jitter: 0 }), 5_000);
  assert.equal(nextDelayMs(10, null), null);
  assert.equal(nextDelayMs(2, null, { scheduleMs: [0, 10] }), null);
});

test('Retry-After is honoured as a floor and capped', () => {
  assert.equal(nextDelayMs(1, 60_000, { jitter: 0 }), 60_000);
  assert.equal(nextDelayMs(2, 1_000, { jitter: 0 }), 300_000);
  assert.equal(nextDelayMs(1, 10 * 86_400_000, { jitter: 0, maxRetryAfterMs: 3_600_000 }), 3_600_000);
  assert.equal(parseRetryAfter('120'), 120_000);
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('soon'), null);
  assert.equal(parseRetryAfter(undefined), null);
});
