/**
 * Job creation throughput and latency: `POST /v1/videos` (JSON) with autocannon against a real
 * API process, vs the same run's ceiling of raw BullMQ `queue.add` into the same Redis at the
 * same concurrency. Target: API >= 50% of the raw-queue ceiling.
 *
 * Also, under the same autocannon settings: two floors (plain `node:http` and the API's Fastify
 * layer, both answering a fixed video object with nothing behind them, see `floor-server.ts`),
 * and optionally the API of an earlier commit (`--before`, see `prepare-before.sh`). Each
 * measurement records the CPU of the machine, Redis, Postgres, the load generator and the server.
 *
 *   npx tsx --conditions=development bench/api/create.ts [--connections 50] [--duration 10] [--out f.json]
 *       [--before <dir>] [--variants floor-http,floor-fastify,before,before-limits-on,defaults,limits-on,no-webhook]
 *       [--cpu-prof <dir>] (profiles of the API process, summarised by cpu-profile.ts) [--no-raw]
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { CONTRACT_VERSION, GENERATION_QUEUE, JOBS, generationJobId, newVideoId } from '@rehyat/contracts';
import { summarizeProfileFile } from './cpu-profile.js';
import { createApiKey, deletePrefix, freePort, machine, machineJiffies, processGroupCpuSeconds, redisCpuSeconds, REPO_ROOT, startApiProcess, startInfra, summarize, treeCpuSeconds } from './harness.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '10' },
    /** Comma-separated variant keys to run (default: all). */
    variants: { type: 'string' },
    /** Folder for `node --cpu-prof` profiles of the API process; each run's JSON gets its summary. */
    'cpu-prof': { type: 'string' },
    /**
     * A checkout of an earlier commit (`bench/api/prepare-before.sh <commit> <dir>`): its API runs
     * as one more variant (`before`, defaults), in the same run, for a before/after comparison.
     */
    before: { type: 'string' },
    /** Skip the raw BullMQ ceiling (profiling runs only; a committed result always has it). */
    'no-raw': { type: 'boolean', default: false },
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

/** CPU used while `fn` runs: machine (all cores, 100 = one core), Redis, this process (the load generator), Postgres, the server. */
async function withCpu<T>(redis: Redis, serverPid: number | undefined, fn: () => Promise<T>): Promise<T & { cpuPercent: Record<string, number> }> {
  const m0 = await machineJiffies();
  const r0 = await redisCpuSeconds(redis);
  const s0 = serverPid === undefined ? 0 : await treeCpuSeconds(serverPid);
  const p0 = await processGroupCpuSeconds('postgres');
  const b0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await fn();
  const wall = (performance.now() - t0) / 1000;
  const b = process.cpuUsage(b0);
  const m = await machineJiffies();
  const pct = (x: number) => Math.round((x / wall) * 100);
  const cpuPercent: Record<string, number> = {
    machineBusy: Math.round(((m.busy - m0.busy) / (m.total - m0.total)) * cpus().length * 100),
    redis: pct((await redisCpuSeconds(redis)) - r0),
    loadGenerator: pct((b.user + b.system) / 1e6),
    // Postgres backends that stay alive through the run (connections opened and closed during it are missed).
    postgres: pct((await processGroupCpuSeconds('postgres')) - p0),
  };
  if (serverPid !== undefined) cpuPercent.server = pct((await treeCpuSeconds(serverPid)) - s0);
  return { ...out, cpuPercent };
}

/** The API's creation batch histogram (`rehyat_api_video_creation_batch_size`) so far. */
async function batchStats(baseUrl: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const get = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { sum: get('rehyat_api_video_creation_batch_size_sum'), count: get('rehyat_api_video_creation_batch_size_count') };
}

/** Starts a floor server (`floor-server.ts`) in its own process. */
async function startFloor(kind: 'http' | 'fastify', secret: string): Promise<{ baseUrl: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', join(REPO_ROOT, 'bench/api/floor-server.ts'), kind, String(port), secret], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
  });
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}

const loadAtStart = loadavg()[0]!.toFixed(2);
const infra = await startInfra('create');
// Limits off: this measures the create path itself, not the limiter refusing requests.
const limitsOff = { RATE_LIMIT_RPM: '0', MAX_ACTIVE_VIDEOS: '0', QUEUE_MAX_QUEUED: '0' };
// Limits on (all three checked on every creation) but generous enough that none refuses: this
// measures what checking them costs. Nothing completes during a run, so the active cap and the
// queue cap must exceed every creation of the run.
const limitsOn = { RATE_LIMIT_RPM: '100000000', MAX_ACTIVE_VIDEOS: '10000000', QUEUE_MAX_QUEUED: '10000000' };
type Variant = { key: string; name: string; root?: string } & ({ env: Record<string, string> } | { floor: 'http' | 'fastify' });
const beforeCommit = values.before ? (await readFile(join(values.before, '.bench-commit'), 'utf8').catch(() => 'unknown')).trim() : undefined;
const allVariants: Variant[] = [
  ...(values.before ? [{ key: 'before', name: `api before the redesign (commit ${beforeCommit}, defaults, webhook worker in-process)`, env: limitsOff, root: values.before }] : []),
  ...(values.before
    ? [{ key: 'before-limits-on', name: `api of commit ${beforeCommit}, limits on but generous (RATE_LIMIT_RPM, MAX_ACTIVE_VIDEOS, QUEUE_MAX_QUEUED)`, env: limitsOn, root: values.before }]
    : []),
  { key: 'floor-http', name: 'floor: plain node:http, fixed video object, nothing behind it', floor: 'http' },
  { key: 'floor-fastify', name: "floor: the API's Fastify layer (Bearer check in memory, zod body + response schemas), nothing behind it", floor: 'fastify' },
  { key: 'defaults', name: 'api (defaults, webhook worker in-process)', env: limitsOff },
  { key: 'limits-on', name: 'api, limits on but generous (RATE_LIMIT_RPM, MAX_ACTIVE_VIDEOS, QUEUE_MAX_QUEUED; none refuses)', env: limitsOn },
  { key: 'no-webhook', name: 'api (WEBHOOK_WORKER_ENABLED=false)', env: { ...limitsOff, WEBHOOK_WORKER_ENABLED: 'false' } },
];
const wanted = values.variants?.split(',').map((v) => v.trim());
const variants = wanted ? allVariants.filter((v) => wanted.includes(v.key)) : allVariants;
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
try {
  const machineLine = await machine(infra.redis);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const skipRaw = values['no-raw'];
  const raw = () => withCpu(infra.redis, undefined, () => rawQueueCeiling(infra.prefix, redisUrl));
  const ceilingBefore = skipRaw ? { rps: Number.NaN } : await raw();
  const runs: Array<Record<string, unknown> & { rps: number }> = [];
  for (const variant of variants) {
    const profDir = values['cpu-prof'] && 'env' in variant ? `${values['cpu-prof']}/${variant.key}` : undefined;
    const key = await createApiKey(infra.db.url);
    const server =
      'env' in variant
        ? await startApiProcess(infra, variant.env, profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [], variant.root)
        : await startFloor(variant.floor, key.secret);
    let window: { fromUs: number; toUs: number } | undefined;
    try {
      await runAutocannon(server.baseUrl, key.secret, 3); // warm-up: JIT, pools, Prisma
      const batches0 = 'env' in variant ? await batchStats(server.baseUrl) : null;
      const fromUs = monotonicUs();
      const run = await withCpu(infra.redis, server.pid, () => runAutocannon(server.baseUrl, key.secret, durationS));
      window = { fromUs, toUs: monotonicUs() };
      const batches1 = batches0 ? await batchStats(server.baseUrl) : null;
      const batching =
        batches0 && batches1 && Number.isFinite(batches1.count)
          ? { batches: batches1.count - batches0.count, meanVideosPerBatch: Math.round(((batches1.sum - batches0.sum) / Math.max(1, batches1.count - batches0.count)) * 10) / 10 }
          : undefined;
      runs.push({ variant: variant.name, ...('env' in variant ? { env: variant.env } : {}), ...run, ...(batching ? { creationBatches: batching } : {}) });
    } finally {
      await server.stop();
    }
    if (profDir && window) {
      const { readdir, stat } = await import('node:fs/promises');
      // The main thread's profile is the big one (tsx's loader thread writes a small second one).
      const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
      const sizes = await Promise.all(files.map(async (f) => (await stat(`${profDir}/${f}`)).size));
      const file = files[sizes.indexOf(Math.max(...sizes))];
      if (file) {
        const summary = await summarizeProfileFile(`${profDir}/${file}`, window, 30);
        const last = runs.at(-1)!;
        last.cpuProfile = { file: `${profDir}/${file}`, window, apiCpuUsPerRequest: Math.round((summary.busyMs * 1000) / (last.count as number)), ...summary };
        console.error(`${variant.key}: ${JSON.stringify(summary, null, 1)}`);
      }
    }
  }
  const ceilingAfter = skipRaw ? { rps: Number.NaN } : await raw();
  const ceiling = Math.round((ceilingBefore.rps + ceilingAfter.rps) / 2);
  const rps = (key: string) => runs[variants.findIndex((v) => v.key === key)]?.rps;
  const floorFastify = rps('floor-fastify');
  const report = {
    bench: 'create',
    date: new Date().toISOString(),
    machine: machineLine,
    loadAverageAtStart: loadAtStart,
    connections,
    durationS,
    rawQueue: { meanRps: ceiling, before: ceilingBefore, after: ceilingAfter },
    runs: runs.map((r) => ({ ...r, ratioToRawQueuePercent: Math.round((r.rps / ceiling) * 1000) / 10 })),
    loadAverageAtEnd: loadavg()[0]!.toFixed(2),
    /**
     * What the floors say about the target: an API that does at least what the Fastify floor does
     * (HTTP, auth check, zod) and what one raw add does (the client's work and Redis's), on the
     * same cores, can do at most 1 / (1/floor + 1/raw) creations per second.
     */
    ...(floorFastify
      ? { boundFromFloorAndRawPercent: Math.round((1 / (1 / floorFastify + 1 / ceiling) / ceiling) * 1000) / 10 }
      : {}),
  };
  console.log(JSON.stringify(report, null, 2));
  if (values.out) await writeFile(values.out, `${JSON.stringify(report, null, 2)}\n`);
} finally {
  await infra.close();
}
