/**
 * Checkpoint cadence and background upload (`CHECKPOINT_EVERY_CHUNKS`, `CHECKPOINT_ASYNC`), with the
 * tiny real-architecture model (real recurrent-state checkpoints) against real Redis, Postgres and
 * the embedded S3. A 6 s job is 12 chunks; with a checkpoint every 4th chunk they are written after
 * chunks 3, 7 and 11 (the last: extensions start from it).
 * - how many checkpoint objects a job writes (every 4th, async; every chunk, sync: the old way);
 * - a worker process killed with SIGKILL after chunk 5 (newest checkpoint: 3) and one stopped with
 *   SIGTERM mid-video (its boundary checkpoint): the resumed videos equal an uninterrupted one frame
 *   for frame, every chunk is announced once, progress and chunks_done never go back;
 * - a background checkpoint upload failing (S3 reached through a proxy that drops those PUTs) fails
 *   the attempt as a synchronous upload failure does (transient, retried, `storage_unavailable` as
 *   the attempt's error), and the retried attempt resumes from the checkpoint before it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import { storageKeys, type VideoEvent, type VideoId } from '@rehyat/contracts';
import { decodeCheckpoint, ModelRegistry, type Generator } from '@rehyat/pipeline';
import { EMBEDDED_S3_CREDENTIALS, ObjectStorage } from '@rehyat/storage';
import { decodeRgbFrames, probeVideo } from '../src/media/index.js';
import { lastCheckpoint, type GeneratorProvider } from '../src/processors/generate.js';
import { startHarness, terminal, type Harness } from './support/harness.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const STALL = fileURLToPath(new URL('./support/ort-stall.ts', import.meta.url));
const S3_FAILURE = /^S3 at http:\/\/127\.0\.0\.1:\d+ failed: /;

interface Spawned {
  child: ChildProcess;
  exit: Promise<number | null>;
  stderr: () => string;
}

const chunkIndexes = (events: VideoEvent[]) => events.filter((e) => e.type === 'video.chunk').map((e) => (e.data as { index: number }).index);
const progressValues = (events: VideoEvent[]) => events.filter((e) => e.type === 'video.progress').map((e) => (e.data as { progress: number }).progress);
const ALL = [...Array(12).keys()];

describe('checkpoint cadence and background upload (tiny real model, real Redis/Postgres/S3)', () => {
  let h: Harness;
  let models: string;
  let registry: ModelRegistry;
  let dir: string;
  let ref: VideoId;
  const children: ChildProcess[] = [];
  /** The chunk of the checkpoint each in-process generation resumed from (null: from the start). */
  const resumedFrom: (number | null)[] = [];
  const provider: GeneratorProvider = {
    async get(model) {
      const g = await registry.get(model);
      const recording: Generator = {
        info: g.info,
        close: () => g.close(),
        generate(req, opts = {}) {
          resumedFrom.push(opts.resumeFrom ? (decodeCheckpoint(opts.resumeFrom).meta as { chunk: number }).chunk : null);
          return g.generate(req, opts);
        },
      };
      return recording;
    },
  };

  before(async () => {
    models = await tinyModelsDir();
    registry = new ModelRegistry({ modelsDir: models });
    // SIGKILL recovery waits for the dead worker's lock to expire (as in process.test.ts).
    h = await startHarness({ LOCK_DURATION_MS: '10000', CHECKPOINT_EVERY_CHUNKS: '4', CHECKPOINT_ASYNC: 'true' });
    dir = await mkdtemp(join(tmpdir(), 'rehyat-cadence-'));
  });
  // A test that fails midway must leave no worker behind: it would take the next test's job.
  afterEach(async () => {
    await h.stopWorkers();
    const alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(alive.map((c) => new Promise((r) => { c.once('exit', r); c.kill('SIGKILL'); })));
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await h.close();
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });

  // 6 s at 16 fps in chunks of 8 frames: 12 chunks.
  const job = { model: 'rehyat-tiny', width: 32, height: 32, seconds: 6, steps: 3, guidance: 4, seed: 31 };

  function spawnWorker(id: string, env: Record<string, string> = {}, stallAtRun?: number): Spawned {
    const args = ['--import', 'tsx', '--conditions=development', ...(stallAtRun ? ['--import', STALL] : []), MAIN];
    const child = spawn(process.execPath, args, {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: {
        ...process.env,
        ...h.env,
        MODELS_DIR: models,
        WORKER_ID: id,
        LOG_LEVEL: 'info',
        ...(stallAtRun ? { REHYAT_TEST_ORT_STALL_AT_RUN: String(stallAtRun) } : {}),
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (process.env.TEST_LOG_LEVEL) process.stderr.write(d);
    });
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, exit, stderr: () => err };
  }

  async function frames(id: VideoId): Promise<Buffer> {
    const p = join(dir, `${id}.mp4`);
    await writeFile(p, await h.storage.getBuffer(storageKeys.video(id)));
    assert.equal((await probeVideo(p)).frames, 96);
    return decodeRgbFrames(p);
  }

  async function checkpointIndexes(id: VideoId): Promise<number[]> {
    const keys = await h.storage.list(storageKeys.checkpoint(id, 0).replace(/00000\.bin$/, ''));
    return keys.map((k) => Number(/(\d{5})\.bin$/.exec(k)![1])).sort((a, b) => a - b);
  }

  async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Waits for the video to end, sampling the row's chunks_done and progress on the way. */
  async function watch(id: VideoId): Promise<{ events: VideoEvent[]; chunksDone: number[]; progress: number[] }> {
    const chunksDone: number[] = [];
    const progress: number[] = [];
    const events = await until('the video to end', async () => {
      const row = await h.prisma.video.findUniqueOrThrow({ where: { id } });
      chunksDone.push(row.chunksDone);
      progress.push(row.progress);
      const ev = await h.events(id);
      return terminal(ev) ? ev : undefined;
    });
    return { events, chunksDone, progress };
  }

  const nonDecreasing = (xs: number[]) => xs.every((x, i) => i === 0 || x >= xs[i - 1]!);

  async function assertSameVideo(id: VideoId): Promise<void> {
    assert.ok((await frames(id)).equals(await frames(ref)), 'the video equals the uninterrupted one frame for frame');
    for (const i of ALL) {
      const [a, b] = [await h.storage.getBuffer(storageKeys.segment(ref, i)), await h.storage.getBuffer(storageKeys.segment(id, i))];
      assert.ok(a.equals(b), `segment ${i} bytes equal`);
    }
  }

  it('a 12-chunk job writes checkpoints 3, 7 and 11 with a cadence of 4 (async), all 12 with 1 (sync, the old way)', { timeout: 300_000 }, async () => {
    const w = await h.start(provider);
    const p = await h.submit(job);
    assert.equal((await h.waitFor(p.video_id, terminal, 120_000)).at(-1)!.type, 'video.completed');
    ref = p.video_id;
    assert.deepEqual(await checkpointIndexes(p.video_id), [3, 7, 11]);
    await w.shutdown();

    const old = await h.start(provider, undefined, { config: { CHECKPOINT_EVERY_CHUNKS: 1, CHECKPOINT_ASYNC: false } });
    const q = await h.submit(job);
    assert.equal((await h.waitFor(q.video_id, terminal, 120_000)).at(-1)!.type, 'video.completed');
    assert.deepEqual(await checkpointIndexes(q.video_id), ALL);
    await old.shutdown();
    await assertSameVideo(q.video_id);
  });

  it('SIGKILL after chunk 5 resumes from checkpoint 3; SIGTERM mid-video writes the checkpoint of the chunk it stops at; both videos equal the uninterrupted one', { timeout: 300_000 }, async () => {
    assert.ok(ref, 'the uninterrupted reference of the first test');

    // SIGKILL: a worker whose 26th ONNX Runtime run never returns (text encoder, then 3 steps + 1
    // decode per chunk: the first step of chunk 6) has shipped chunks 0-5; its newest checkpoint is 3.
    const a = spawnWorker('killed', {}, 26);
    const k = await h.submit(job);
    await until('chunks 0-5 shipped and checkpoint 3 uploaded', async () => {
      const n = chunkIndexes(await h.events(k.video_id)).length;
      return n >= 6 && (await lastCheckpoint(h.storage, k.video_id)) === 3 ? true : undefined;
    });
    // The 6th chunk's rows and events come before the generator is asked for chunk 6 (and stalls).
    await new Promise((r) => setTimeout(r, 300));
    a.child.kill('SIGKILL');
    await a.exit;
    assert.deepEqual(chunkIndexes(await h.events(k.video_id)), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(await checkpointIndexes(k.video_id), [3]);
    assert.equal((await h.prisma.video.findUniqueOrThrow({ where: { id: k.video_id } })).chunksDone, 6);

    // Another worker takes the job once the dead one's lock expired: resumes after chunk 3, so
    // chunks 4 and 5 are generated again (same bytes) but not announced again.
    const b = spawnWorker('resumer-1');
    const resK = await watch(k.video_id);

    // SIGTERM mid-video: the job finishes its chunk, writes that boundary's checkpoint (off the
    // cadence as a rule) and goes back to the queue.
    const t = await h.submit(job);
    await h.waitFor(t.video_id, (ev) => chunkIndexes(ev).length >= 2, 120_000);
    b.child.kill('SIGTERM');
    assert.equal(await b.exit, 0, 'SIGTERM: clean exit');
    assert.equal(await (await h.queue.getJob(t.video_id))!.getState(), 'waiting', 'released mid-video');
    const shipped = await h.prisma.chunk.count({ where: { videoId: t.video_id } });
    assert.ok(shipped >= 2 && shipped < 12, `${shipped} chunks shipped before the stop`);
    assert.deepEqual(await checkpointIndexes(t.video_id), [...[3, 7].filter((i) => i < shipped - 1), shipped - 1], 'the cadence ones and the boundary');
    const beforeResume = (await h.events(t.video_id)).length;
    const c = spawnWorker('resumer-2');
    const resT = await watch(t.video_id);
    c.child.kill('SIGTERM');
    assert.equal(await c.exit, 0);

    for (const [res, what] of [[resK, 'SIGKILL'], [resT, 'SIGTERM']] as const) {
      assert.equal(res.events.at(-1)!.type, 'video.completed', `${what}: ${JSON.stringify(res.events.at(-1))}`);
      assert.deepEqual(chunkIndexes(res.events), ALL, `${what}: every chunk announced once, in order`);
      assert.equal(res.events.filter((e) => e.type === 'video.in_progress').length, 1, `${what}: started once`);
      assert.ok(nonDecreasing(progressValues(res.events)), `${what}: progress events never go back`);
      assert.ok(nonDecreasing(res.chunksDone), `${what}: chunks_done never goes back: ${res.chunksDone.join(',')}`);
      assert.ok(nonDecreasing(res.progress), `${what}: the row's progress never goes back`);
    }
    // Where each resumed, from the resuming workers' logs.
    const resumes = (log: string) =>
      log
        .split('\n')
        .filter((l) => l.includes('"msg":"resuming after the last checkpoint"'))
        .map((l) => JSON.parse(l) as { videoId: string; chunk: number })
        .map((r) => [r.videoId, r.chunk]);
    assert.deepEqual(resumes(b.stderr()), [[k.video_id, 3]]);
    assert.deepEqual(resumes(c.stderr()), [[t.video_id, shipped - 1]]);
    assert.deepEqual(chunkIndexes((await h.events(t.video_id)).slice(beforeResume)), ALL.slice(shipped), 'SIGTERM: nothing generated twice');
    assert.deepEqual(await checkpointIndexes(k.video_id), [3, 7, 11]);
    await assertSameVideo(k.video_id);
    await assertSameVideo(t.video_id);
  });

  it('a failed background checkpoint upload fails the attempt as transient (storage_unavailable), the retry resumes from the checkpoint before it; nothing is lost', { timeout: 300_000 }, async () => {
    assert.ok(ref, 'the uninterrupted reference of the first test');
    // S3 through a proxy that drops the connection of every PUT of checkpoint 7 until it has
    // dropped 3 (the SDK's attempts for one upload): the first job attempt's upload fails for good.
    const dropped: string[] = [];
    const proxy = await startFaultProxy(new URL(h.s3.endpoint), (method, url) => {
      if (method === 'PUT' && url.includes('/checkpoints/00007.bin') && dropped.length < 3) {
        dropped.push(url);
        return true;
      }
      return false;
    });
    const storage = new ObjectStorage({
      endpoint: proxy.endpoint,
      bucket: h.config.S3_BUCKET,
      accessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      secretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
    });
    try {
      resumedFrom.length = 0;
      const w = await h.start(provider, undefined, { storage });
      const p = await h.submit(job, { attempts: 3, backoff: { type: 'fixed', delay: 200 } });
      const res = await watch(p.video_id);
      assert.equal(res.events.at(-1)!.type, 'video.completed', JSON.stringify(res.events.at(-1)));
      assert.equal(dropped.length, 3, 'the proxy dropped the first attempt\'s uploads of checkpoint 7');

      // Without handling the background failure the first attempt would have completed with
      // checkpoint 7 missing: one attempt, no error on record, no checkpoint 7.
      const j = await h.settled(p.video_id);
      assert.equal(j.attemptsMade, 2, 'the failed upload failed the first attempt; the second completed');
      const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
      assert.deepEqual([video.status, video.errorCode, video.lastErrorCode], ['completed', null, 'storage_unavailable']);
      assert.match(video.lastErrorMessage ?? '', S3_FAILURE);
      assert.deepEqual(resumedFrom, [null, 3], 'first attempt from the start; the retry after checkpoint 3 (7 never reached S3)');
      assert.deepEqual(await checkpointIndexes(p.video_id), [3, 7, 11], 'checkpoint 7 written by the retry');
      assert.deepEqual(chunkIndexes(res.events), ALL, 'every chunk announced once');
      assert.ok(nonDecreasing(progressValues(res.events)), 'progress events never go back');
      assert.ok(nonDecreasing(res.chunksDone), `chunks_done never goes back: ${res.chunksDone.join(',')}`);
      await w.shutdown();
      await assertSameVideo(p.video_id);
    } finally {
      storage.client.destroy();
      await proxy.close();
    }
  });
});

/**
 * An HTTP proxy in front of the embedded S3 that destroys the connection of requests `drop`
 * selects (the client sees a reset mid-request, as with a network failure) and forwards the rest
 * unchanged (same headers, so SigV4 signatures still verify).
 */
async function startFaultProxy(target: URL, drop: (method: string, url: string) => boolean): Promise<{ endpoint: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (drop(req.method ?? '', req.url ?? '')) {
      req.socket.destroy();
      return;
    }
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
