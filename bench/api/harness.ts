/**
 * Shared set-up of the API benchmarks: a fresh Postgres database, an embedded S3 server, a unique
 * Redis prefix, and the API as a separate real process (`apps/api/src/server.ts`), so the numbers
 * include HTTP, auth, validation, Postgres, BullMQ and Redis exactly as deployed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createPrismaClient } from '@rehyat/db';
import { deleteRedisPrefix } from '@rehyat/contracts/testing';
import { createTestDatabase, type TestDatabase } from '@rehyat/db/testing';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from '@rehyat/storage';
import { ApiKeyService } from '../../apps/api/src/services/api-key-service.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const FIXTURE_MODELS_DIR = join(REPO_ROOT, 'apps/api/test/fixtures/models');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface Infra {
  db: TestDatabase;
  s3: EmbeddedS3;
  prefix: string;
  redis: Redis;
  close(): Promise<void>;
}

export async function startInfra(name: string): Promise<Infra> {
  const db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), `rehyat-bench-${name}-`));
  const s3 = await startEmbeddedS3({ port: 0, directory: dir, buckets: ['rehyat-bench'] });
  const prefix = `bench-${name}-${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  return {
    db,
    s3,
    prefix,
    redis,
    async close() {
      await deletePrefix(redis, prefix);
      redis.disconnect();
      await s3.close();
      await rm(dir, { recursive: true, force: true });
      await db.drop();
    },
  };
}

/** Deletes every key under `prefix:` (SCAN with COUNT 5000, the hint this harness always used). */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  await deleteRedisPrefix(redis, prefix, { count: 5000 });
}

export interface ApiProcess {
  baseUrl: string;
  pid: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `apps/api/src/server.ts` in its own Node process and waits for `/readyz`. `root`: another
 * checkout of the repository to run the API of (see `prepare-before.sh`).
 */
export async function startApiProcess(infra: Infra, env: Record<string, string> = {}, nodeArgs: string[] = [], root = REPO_ROOT): Promise<ApiProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, '--conditions=development', '--import', 'tsx', join(root, 'apps/api/src/server.ts')], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      HOST: '127.0.0.1',
      PORT: String(port),
      PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
      LOG_LEVEL: 'error',
      DATABASE_URL: infra.db.url,
      REDIS_URL,
      REDIS_PREFIX: infra.prefix,
      S3_ENDPOINT: infra.s3.endpoint,
      S3_BUCKET: 'rehyat-bench',
      S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
      MODELS_DIR: FIXTURE_MODELS_DIR,
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const baseUrl = `http://127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`API process exited with ${code}`))));
  const ready = (async () => {
    for (let i = 0; i < 600; i++) {
      try {
        const res = await fetch(`${baseUrl}/readyz`);
        if (res.ok) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('API process did not become ready in 60 s');
  })();
  await Promise.race([ready, exited]);
  exited.catch(() => {});
  return {
    baseUrl,
    pid: child.pid!,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}

export async function createApiKey(databaseUrl: string): Promise<{ id: string; secret: string }> {
  const prisma = createPrismaClient({ databaseUrl });
  try {
    const key = await new ApiKeyService(prisma).create({ name: 'bench' });
    return { id: key.id, secret: key.secret };
  } finally {
    await prisma.$disconnect();
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds of a process and its direct children (the API's cluster workers), from /proc. */
export async function treeCpuSeconds(pid: number): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  let total = 0;
  for (const p of await readdir('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = await readFile(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(p) === pid || Number(fields[1]) === pid) total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** Busy and total jiffies of the whole machine so far (all cores), from /proc/stat. */
export async function machineJiffies(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** CPU seconds (user + system) Redis has used so far (`INFO cpu`, main thread and children). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return get('used_cpu_sys') + get('used_cpu_user');
}

/** CPU seconds (user + system) used so far by all live processes whose name is `comm` (e.g. `postgres`). */
export async function processGroupCpuSeconds(comm: string): Promise<number> {
  const { readdir } = await import('node:fs/promises');
  let total = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== comm) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(values: number[]): { n: number; p50: number; p90: number; p99: number; max: number; mean: number } {
  const s = [...values].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    n: s.length,
    p50: r(percentile(s, 50)),
    p90: r(percentile(s, 90)),
    p99: r(percentile(s, 99)),
    max: r(s.at(-1) ?? Number.NaN),
    mean: r(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
  };
}

export async function machine(redis: Redis): Promise<string> {
  const info = await redis.info('server');
  const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  const c = cpus();
  return (
    `${c.length}-core CPU (${c[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ` +
    `Node ${process.version}, Redis ${redisVersion}, PostgreSQL local; load generator, API, Redis and Postgres share the cores; ` +
    `1-min load average at start ${loadavg()[0]!.toFixed(2)}`
  );
}
