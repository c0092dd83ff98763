/**
 * Job creation throughput and latency: `POST /v1/videos` (JSON) with autocannon against a real
 * API process, vs the same run's ceiling of raw BullMQ `queue.add` into the same Redis at the
 * same concurrency. Target: API >= 50% of the raw-queue ceiling.
 *
 *   npx tsx --conditions=development bench/api/create.ts [--connections 50] [--duration 10]
 */
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import { CONTRACT_VERSION, GENERATION_QUEUE, JOBS, generationJobId, newVideoId } from '@rehyat/contracts';
import { cpuSeconds, createApiKey, deletePrefix, machine, startApiProcess, startInfra, summarize } from './harness.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '10' },
  },
});
const connections = Number(values.connections);
const durationS = Number(values.duration);

const body = { prompt: 'a red ball bounces across a blue floor', model: 'rehyat-test', seconds: '2', size: '256x160' };

/** Raw BullMQ ceiling: `connections` concurrent loops of `queue.add` for `durationS`. */
async function rawQueueCeiling(infraPrefix: string, redisUrl: string) {
  const { Redis } = await import('ioredis');
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefix = `${infraPrefix}-raw`;
  const queue = new Queue(GENERATION_QUEUE, { connection, prefix });
  await queue.waitUntilReady();
  const latencies: number[] = [];
  let count = 0;
  const deadline = performance.now() + durationS * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) {
        const id = newVideoId();
        const payload = {
          v: CONTRACT_VERSION,
          video_id: id,
          model: 'rehyat-test',
          prompt: body.prompt,
          seconds: 2,
          width: 256,
          height: 160,
          seed: 42,
          steps: 4,
          guidance: 1,
          owner_id: 'key_bench',
          created_at: new Date().toISOString(),
        };
        const t0 = performance.now();
        await queue.add(JOBS.generate.name, payload, {
          jobId: generationJobId(id),
          attempts: JOBS.generate.attempts,
          backoff: JOBS.generate.backoff,
          removeOnComplete: true,
        });
        latencies.push(performance.now() - t0);
        count++;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  await queue.close();
  await deletePrefix(connection, prefix);
  connection.disconnect();
  return { rps: Math.round(count / elapsed), count, latencyMs: summarize(latencies) };
}

async function runAutocannon(url: string, secret: string, seconds: number) {
  const result = await autocannon({
    url: `${url}/v1/videos`,
    method: 'POST',
    connections,
    duration: seconds,
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    rps: Math.round(result.requests.average),
    count: result.requests.total,
    non2xx: result.non2xx,
    statusCodes: result.statusCodeStats,
    errors: result.errors,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
  };
}

const infra = await startInfra('create');
// Limits off: this measures the create path itself, not the limiter refusing requests.
const limitsOff = { RATE_LIMIT_RPM: '0', MAX_ACTIVE_VIDEOS: '0', QUEUE_MAX_QUEUED: '0' };
const variants = [
  { name: 'api (defaults, webhook worker in-process)', env: limitsOff },
  { name: 'api (WEBHOOK_WORKER_ENABLED=false)', env: { ...limitsOff, WEBHOOK_WORKER_ENABLED: 'false' } },
];
try {
  const machineLine = await machine(infra.redis);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const ceilingBefore = await rawQueueCeiling(infra.prefix, redisUrl);
  const runs = [];
  for (const variant of variants) {
    const api = await startApiProcess(infra, variant.env);
    try {
      const key = await createApiKey(infra.db.url);
      await runAutocannon(api.baseUrl, key.secret, 3); // warm-up: JIT, pools, Prisma
      const cpu0 = await cpuSeconds(api.pid);
      const run = await runAutocannon(api.baseUrl, key.secret, durationS);
      const cpu = (await cpuSeconds(api.pid)) - cpu0;
      runs.push({ variant: variant.name, env: variant.env, ...run, apiProcessCpuPercent: Math.round((cpu / durationS) * 100) });
    } finally {
      await api.stop();
    }
  }
  const ceilingAfter = await rawQueueCeiling(infra.prefix, redisUrl);
  const ceiling = Math.round((ceilingBefore.rps + ceilingAfter.rps) / 2);
  const report = {
    bench: 'create',
    date: new Date().toISOString(),
    machine: machineLine,
    connections,
    durationS,
    rawQueue: { meanRps: ceiling, before: ceilingBefore, after: ceilingAfter },
    api: runs.map((r) => ({ ...r, ratioToRawQueuePercent: Math.round((r.rps / ceiling) * 1000) / 10 })),
    loadAverageAtEnd: loadavg()[0]!.toFixed(2),
  };
  console.log(JSON.stringify(report, null, 2));
  if (values.out) await writeFile(values.out, `${JSON.stringify(report, null, 2)}\n`);
} finally {
  await infra.close();
}
