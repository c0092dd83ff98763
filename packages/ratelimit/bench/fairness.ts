/**
 * Fair ordering measured on real BullMQ + Redis: key A floods the generation-like queue with
 * 200 jobs, then keys B and C add 10 each; one worker (concurrency 1, no work) drains it.
 * Compared: plain FIFO (no priority) and FairPriority. Also the cost of one `assign()`.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npm run bench:fairness -w @rehyat/ratelimit
 *
 * Prints Markdown; the committed output is bench/fairness.md.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import { FairPriority } from '../src/index.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `bench-fair-${randomBytes(4).toString('hex')}`;
const FLOOD = 200;
const SMALL = 10;

interface Stats {
  mode: string;
  lastB: number;
  lastC: number;
  meanSmall: number;
  firstSmall: number;
  aInOrder: boolean;
}

async function scenario(redis: Redis, mode: 'fifo' | 'fair'): Promise<Stats> {
  const name = `q-${mode}`;
  const q = new Queue(name, { connection: redis, prefix });
  const fair = new FairPriority({ redis, prefix, queueName: name });
  const add = async (k: string, i: number): Promise<void> => {
    const priority = mode === 'fair' ? await fair.assign(k) : undefined;
    await q.add('j', { k, i }, priority === undefined ? {} : { priority });
  };
  for (let i = 0; i < FLOOD; i++) await add('A', i);
  for (let i = 0; i < SMALL; i++) {
    await add('B', i);
    await add('C', i);
  }
  const order: Array<{ k: string; i: number }> = [];
  const wconn = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const w = new Worker(name, async (job) => void order.push(job.data as { k: string; i: number }), { connection: wconn, prefix, concurrency: 1 });
  while (order.length < FLOOD + 2 * SMALL) await new Promise((r) => setTimeout(r, 20));
  await w.close();
  wconn.disconnect();
  await q.obliterate({ force: true });
  await q.close();
  const pos = (k: string): number[] => order.flatMap((o, p) => (o.k === k ? [p + 1] : []));
  const small = [...pos('B'), ...pos('C')];
  const a = order.filter((o) => o.k === 'A').map((o) => o.i);
  return {
    mode,
    lastB: Math.max(...pos('B')),
    lastC: Math.max(...pos('C')),
    meanSmall: small.reduce((x, y) => x + y, 0) / small.length,
    firstSmall: Math.min(...small),
    aInOrder: a.every((v, i) => i === 0 || v > a[i - 1]!),
  };
}

async function assignCost(redis: Redis): Promise<{ p50: number; p99: number }> {
  const fair = new FairPriority({ redis, prefix, queueName: 'cost' });
  const t: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const s = performance.now();
    await fair.assign(`k${i % 50}`);
    t.push((performance.now() - s) * 1000);
  }
  t.sort((x, y) => x - y);
  return { p50: t[Math.floor(t.length * 0.5)]!, p99: t[Math.floor(t.length * 0.99)]! };
}

const redis = new Redis(REDIS_URL);
try {
  const rows = [await scenario(redis, 'fifo'), await scenario(redis, 'fair')];
  const cost = await assignCost(redis);
  const info = (await redis.info('server')).match(/redis_version:(\S+)/)?.[1];
  console.log(`# Fair ordering between API keys (BullMQ priorities)\n`);
  console.log(`Machine: ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, Node ${process.version}, Redis ${info}, BullMQ 6.7.0.`);
  console.log(`Scenario: key A enqueues ${FLOOD} jobs, then keys B and C enqueue ${SMALL} each (alternating); one worker drains the queue.`);
  console.log(`Positions are 1-based completion order over ${FLOOD + 2 * SMALL} jobs.\n`);
  console.log('| mode | first B/C job at | last B job at | last C job at | mean B/C position | A kept in order |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.mode} | ${r.firstSmall} | ${r.lastB} | ${r.lastC} | ${r.meanSmall.toFixed(1)} | ${r.aInOrder} |`);
  console.log(`\nCost of FairPriority.assign() (one Lua call, sequential): p50 ${cost.p50.toFixed(0)} µs, p99 ${cost.p99.toFixed(0)} µs.`);
} finally {
  await deleteRedisPrefix(redis, prefix);
  redis.disconnect();
}
