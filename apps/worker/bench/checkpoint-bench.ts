/**
 * Wall time of real videos through the worker path (BullMQ job -> processor -> pipeline -> ffmpeg
 * segments -> S3, rows, events -> finalize) with each checkpoint setting, in one run on one machine:
 *
 *   1 sync   CHECKPOINT_EVERY_CHUNKS=1 CHECKPOINT_ASYNC=false  (the behaviour before these settings)
 *   1 async  CHECKPOINT_EVERY_CHUNKS=1 CHECKPOINT_ASYNC=true
 *   4 sync   CHECKPOINT_EVERY_CHUNKS=4 CHECKPOINT_ASYNC=false
 *   4 async  CHECKPOINT_EVERY_CHUNKS=4 CHECKPOINT_ASYNC=true   (the default)
 *
 * Real Redis and a fresh Postgres database (as the tests), the embedded S3 server in its own
 * process (as a remote S3 would be: its work is not on the worker's event loop), the released model
 * (models/rehyat-5 by default) on onnxruntime-node CPU. The model is loaded once and warmed up by
 * one unmeasured video; then the settings take turns, `--reps` videos each (interleaved so drift in
 * the machine's load spreads over all of them). A video's wall time runs from the job's enqueue to
 * its `video.completed` event (polled every 20 ms).
 *
 *   cd apps/worker && npx tsx --conditions=development bench/checkpoint-bench.ts [--models DIR] [--model rehyat-5] [--seconds 4] [--reps 3] > bench/results/checkpoint-cpu.md
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { GENERATION_QUEUE, JOBS, Keyspace, newVideoId, parseVideoEvent, storageKeys, type GenerateJobPayload, type VideoId } from '@rehyat/contracts';
import { createPrismaClient } from '@rehyat/db';
import { createTestDatabase } from '@rehyat/db/testing';
import { ModelRegistry } from '@rehyat/pipeline';
import { EMBEDDED_S3_CREDENTIALS, ObjectStorage } from '@rehyat/storage';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { PrismaVideoRepository } from '../src/prisma-video-repository.js';
import { startWorker } from '../src/worker.js';
import { deleteRedisPrefix } from '../test/support/harness.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: fileURLToPath(new URL('../../../models/', import.meta.url)) },
    model: { type: 'string', default: 'rehyat-5' },
    seconds: { type: 'string', default: '4' },
    reps: { type: 'string', default: '3' },
  },
});
const SECONDS = Number(args.seconds);
const REPS = Number(args.reps);
const SETTINGS = [
  { name: '1 sync (before)', every: 1, async: false },
  { name: '1 async', every: 1, async: true },
  { name: '4 sync', every: 4, async: false },
  { name: '4 async (default)', every: 4, async: true },
] as const;
const err = (line: string) => process.stderr.write(`${line}\n`);

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function startS3Process(dir: string, bucket: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const port = await freePort();
  const bin = fileURLToPath(new URL('../../../packages/storage/bin/s3-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=development', bin, '--port', String(port), '--directory', dir, '--bucket', bucket], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('s3 ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`s3-server exited with ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, child };
}

const db = await createTestDatabase();
const s3dir = await mkdtemp(join(tmpdir(), 'rehyat-ckbench-'));
const bucket = 'rehyat-bench';
const s3 = await startS3Process(s3dir, bucket);
const prefix = `ckbench-${randomBytes(6).toString('hex')}`;
const env = {
  DATABASE_URL: db.url,
  REDIS_PREFIX: prefix,
  S3_ENDPOINT: s3.endpoint,
  S3_BUCKET: bucket,
  S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
  S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
  LOG_LEVEL: 'warn',
  MODELS_DIR: args.models!,
};
const prisma = createPrismaClient({ databaseUrl: db.url });
const storage = new ObjectStorage({ endpoint: s3.endpoint, bucket, ...EMBEDDED_S3_CREDENTIALS });
const redis = new Redis('redis://127.0.0.1:6379');
const keyspace = new Keyspace({ prefix });
const queueConnection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queue = new Queue(GENERATION_QUEUE, { connection: queueConnection, prefix });
const registry = new ModelRegistry({ modelsDir: args.models! });
const ownerId = 'key_bench';
await prisma.apiKey.create({ data: { id: ownerId, name: 'bench', prefix: 'sk-bench', hash: randomBytes(32).toString('hex') } });
const generator = await registry.get(args.model!);
const info = generator.info;
const manifest = JSON.parse(await readFile(join(args.models!, args.model!, 'manifest.json'), 'utf8')) as { sampler: { steps: number; guidance: number } };
const { steps, guidance } = manifest.sampler;

interface Run {
  setting: string;
  wallMs: number;
  generatorMs: number;
  checkpoints: number;
  checkpointBytes: number;
}

async function runVideo(setting: (typeof SETTINGS)[number], seed: number): Promise<Run> {
  const config = loadConfig({ ...env, CHECKPOINT_EVERY_CHUNKS: String(setting.every), CHECKPOINT_ASYNC: String(setting.async) });
  const worker = await startWorker({ config, repo: new PrismaVideoRepository(prisma), storage, generators: registry, log: createLogger(config.LOG_LEVEL) });
  const payload: GenerateJobPayload = {
    v: 1,
    video_id: newVideoId(),
    model: args.model!,
    prompt: 'a red circle bounces on a blue background',
    seconds: SECONDS,
    width: info.width,
    height: info.height,
    seed,
    steps,
    guidance,
    owner_id: ownerId,
    created_at: new Date().toISOString(),
  };
  await prisma.video.create({
    data: { id: payload.video_id, ownerId, prompt: payload.prompt, model: payload.model, seconds: SECONDS, size: `${info.width}x${info.height}`, width: info.width, height: info.height, seed: BigInt(seed), steps, guidance, chunksTotal: 1 },
  });
  const t0 = performance.now();
  await queue.add(JOBS.generate.name, payload, { jobId: payload.video_id, attempts: 1 });
  const id = payload.video_id as VideoId;
  for (;;) {
    const last = await redis.xrevrange(keyspace.videoEvents(id), '+', '-', 'COUNT', 1);
    const type = last[0] ? parseVideoEvent(last[0][1][1]!).type : undefined;
    if (type === 'video.completed') break;
    if (type === 'video.failed' || type === 'video.cancelled') throw new Error(`video ${id} ended ${type}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const wallMs = performance.now() - t0;
  await worker.shutdown();
  const row = await prisma.video.findUniqueOrThrow({ where: { id } });
  const keys = await storage.list(storageKeys.checkpoint(id, 0).replace(/00000\.bin$/, ''));
  const checkpointBytes = keys.length > 0 ? (await storage.head(keys[0]!)).contentLength : 0;
  return { setting: setting.name, wallMs, generatorMs: Number(row.gpuMs), checkpoints: keys.length, checkpointBytes };
}

const startLoad = loadavg();
const started = new Date();
const results: Run[] = [];
try {
  err(`warm-up video (${args.model}, ${SECONDS} s)`);
  const warm = await runVideo(SETTINGS[3], 1);
  err(`  ${(warm.wallMs / 1000).toFixed(2)} s`);
  for (let r = 0; r < REPS; r++) {
    // Rotate the order each round, so no setting always runs first (or after the same one).
    for (let i = 0; i < SETTINGS.length; i++) {
      const s = SETTINGS[(i + r) % SETTINGS.length]!;
      const run = await runVideo(s, 1);
      results.push(run);
      err(`round ${r + 1} ${s.name}: ${(run.wallMs / 1000).toFixed(2)} s wall, generator ${(run.generatorMs / 1000).toFixed(2)} s, ${run.checkpoints} checkpoints of ${run.checkpointBytes} bytes`);
    }
  }
} finally {
  await queue.close();
  queueConnection.disconnect();
  await deleteRedisPrefix(redis, prefix);
  redis.disconnect();
  await registry.close();
  await prisma.$disconnect();
  storage.client.destroy();
  s3.child.kill('SIGTERM');
  await rm(s3dir, { recursive: true, force: true });
  await db.drop();
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const base = median(results.filter((r) => r.setting === SETTINGS[0].name).map((r) => r.wallMs));
const plan = info.plan(SECONDS);
const rows = SETTINGS.map((s) => {
  const rs = results.filter((r) => r.setting === s.name);
  const wall = median(rs.map((r) => r.wallMs));
  const gen = median(rs.map((r) => r.generatorMs));
  return `| ${s.name} | ${rs.map((r) => (r.wallMs / 1000).toFixed(2)).join(', ')} | ${(wall / 1000).toFixed(2)} | **${(wall / base).toFixed(3)}** | ${(gen / 1000).toFixed(2)} | ${rs[0]!.checkpoints} |`;
});
const ckBytes = results.find((r) => r.checkpointBytes > 0)?.checkpointBytes ?? 0;
console.log(`# Checkpoint settings through the worker path (CPU)

${started.toISOString()}. Machine: ${cpus().length}x ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version},
load average at start ${startLoad.map((x) => x.toFixed(2)).join(' ')}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}
(the machine is shared with other jobs: compare the ratios of this run, not absolute times across runs).

Model ${args.model} on onnxruntime-node CPU (${info.width}x${info.height} @ ${info.fps} fps, ${steps} steps, guidance ${guidance}: batch 2 per dit_step run),
${SECONDS} s videos = ${plan.chunks} chunks, ${plan.frames} frames; one checkpoint = ${(ckBytes / 2 ** 20).toFixed(1)} MiB.
The worker path in one process (in-process BullMQ worker, real Redis, a fresh Postgres database),
the embedded S3 server in its own process on the same machine. Wall = enqueue -> \`video.completed\`;
generator = the row's \`gpu_ms\` (time inside the generator, plus the checkpoint serialization).
${REPS} videos per setting, rounds interleaved, after one unmeasured warm-up video.

| CHECKPOINT_EVERY_CHUNKS / CHECKPOINT_ASYNC | wall per video (s) | median (s) | vs 1 sync | generator median (s) | checkpoints per video |
| --- | --- | ---: | ---: | ---: | ---: |
${rows.join('\n')}

Command: \`cd apps/worker && npx tsx --conditions=development bench/checkpoint-bench.ts --seconds ${SECONDS} --reps ${REPS}\`
`);
