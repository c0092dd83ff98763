/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`) by library: for every sample in a time
 * window, the categories on its stack (each counted once per sample: inclusive share) and the
 * category of the function on top (self share). Idle samples are left out, so shares are of the
 * time the process was busy.
 *
 *   npx tsx bench/api/cpu-profile.ts <file.cpuprofile> [--from <µs>] [--to <µs>] [--top 25]
 *
 * `--from`/`--to` are CLOCK_MONOTONIC microseconds (V8's profile clock on Linux, the same as
 * `process.hrtime`); `create.ts --cpu-prof` records the measurement window in them.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The library a frame belongs to, from its script URL. */
export function categoryOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (native, unattributed)';
    if (functionName === '(root)') return 'root';
    return 'native';
  }
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    if (pkg.startsWith('@prisma/') || pkg === 'prisma' || pkg === '.prisma') return 'prisma';
    if (pkg === 'pg' || pkg.startsWith('pg-') || pkg === 'postgres-array' || pkg === 'pgpass') return 'pg';
    if (pkg === 'ioredis' || pkg === 'redis-parser' || pkg === 'redis-errors' || pkg === 'standard-as-callback' || pkg === 'cluster-key-slot') return 'ioredis';
    if (pkg === 'bullmq' || pkg === 'msgpackr' || pkg === 'cron-parser') return 'bullmq';
    if (pkg === 'zod' || pkg === 'fastify-type-provider-zod') return 'zod';
    if (pkg === 'pino' || pkg.startsWith('pino-') || pkg === 'sonic-boom') return 'pino';
    if (pkg === 'prom-client') return 'prom-client';
    if (pkg === 'tsx' || pkg === 'esbuild' || pkg === 'get-tsconfig') return 'tsx (loader)';
    if (
      pkg === 'fastify' ||
      pkg.startsWith('@fastify/') ||
      pkg === 'avvio' ||
      pkg === 'find-my-way' ||
      pkg === 'light-my-request' ||
      pkg.startsWith('fast-') ||
      pkg === 'secure-json-parse' ||
      pkg === 'abstract-logging' ||
      pkg === 'toad-cache' ||
      pkg === 'ajv' ||
      pkg === 'json-schema-ref-resolver' ||
      pkg === 'rfdc'
    )
      return 'fastify';
    return `node_modules/${pkg}`;
  }
  if (url.includes('/packages/db/src/generated/')) return 'prisma';
  const ws = /\/(apps|packages)\/([^/]+)\/src\//.exec(url);
  if (ws) return `${ws[1]}/${ws[2]}`;
  if (url.startsWith('node:')) {
    if (functionName === 'writev' || functionName === 'writevGeneric' || functionName === 'writeGeneric') return 'node (socket write)';
    return 'node (internals)';
  }
  return 'other';
}

export interface ProfileSummary {
  /** Busy samples in the window. */
  samples: number;
  /** Milliseconds of busy time sampled. */
  busyMs: number;
  inclusivePercent: Record<string, number>;
  selfPercent: Record<string, number>;
  topSelf: Array<{ fn: string; percent: number }>;
}

export function summarizeProfile(profile: CpuProfile, window: { fromUs?: number; toUs?: number } = {}, top = 25): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const stackCats = new Map<number, Set<string>>();
  const catsOf = (id: number): Set<string> => {
    let s = stackCats.get(id);
    if (s) return s;
    const p = parent.get(id);
    s = new Set(p === undefined ? [] : catsOf(p));
    const node = byId.get(id)!;
    const c = categoryOf(node.callFrame);
    if (c !== 'root') s.add(c);
    // writev is reached from ioredis and pg alike: count the syscall on its own as well.
    if (c === 'node (socket write)') s.add('socket write (any)');
    stackCats.set(id, s);
    return s;
  };
  const incl = new Map<string, number>();
  const self = new Map<string, number>();
  const selfFn = new Map<string, number>();
  let t = profile.startTime;
  let busy = 0;
  let busyUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (window.fromUs !== undefined && t < window.fromUs) continue;
    if (window.toUs !== undefined && t > window.toUs) continue;
    const node = byId.get(profile.samples[i]!)!;
    const cat = categoryOf(node.callFrame);
    if (cat === 'idle') continue;
    busy++;
    busyUs += dt;
    self.set(cat, (self.get(cat) ?? 0) + 1);
    const f = node.callFrame;
    const fnKey = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(apps|packages)\//, '$1/')}:${f.lineNumber + 1}`;
    selfFn.set(fnKey, (selfFn.get(fnKey) ?? 0) + 1);
    for (const c of catsOf(node.id)) incl.set(c, (incl.get(c) ?? 0) + 1);
  }
  const pct = (m: Map<string, number>) =>
    Object.fromEntries([...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Math.round((v / Math.max(1, busy)) * 1000) / 10]));
  return {
    samples: busy,
    busyMs: Math.round(busyUs / 1000),
    inclusivePercent: pct(incl),
    selfPercent: pct(self),
    topSelf: [...selfFn.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, v]) => ({ fn, percent: Math.round((v / Math.max(1, busy)) * 1000) / 10 })),
  };
}

export async function summarizeProfileFile(path: string, window: { fromUs?: number; toUs?: number } = {}, top = 25): Promise<ProfileSummary> {
  return summarizeProfile(JSON.parse(await readFile(path, 'utf8')) as CpuProfile, window, top);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, top: { type: 'string', default: '25' } },
  });
  if (positionals.length !== 1) throw new Error('usage: cpu-profile.ts <file.cpuprofile> [--from us] [--to us] [--top N]');
  const window = {
    ...(values.from ? { fromUs: Number(values.from) } : {}),
    ...(values.to ? { toUs: Number(values.to) } : {}),
  };
  console.log(JSON.stringify(await summarizeProfileFile(positionals[0]!, window, Number(values.top)), null, 2));
}
