/**
 * Device-fatal failures at process level: the real worker process (src/main.ts) with the tiny
 * real-architecture model, into which test code alone injects a CUDA fault at the ONNX Runtime
 * boundary (`--import test/support/ort-device-fault.ts`; see that file for why). The process must
 * record the failed attempt, exit non-zero, and a restarted worker must pick the job up again and
 * finish it (resuming from the last checkpoint: the same video as an uninterrupted run).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import { storageKeys, type VideoId } from '@rehyat/contracts';
import { decodeRgbFrames, probeVideo } from '../src/media/index.js';
import { CUDA_FAULT_MESSAGE } from './support/ort-device-fault.js';
import { startHarness, terminal, type Harness } from './support/harness.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const FAULT = fileURLToPath(new URL('./support/ort-device-fault.ts', import.meta.url));

interface Spawned {
  child: ChildProcess;
  exit: Promise<number | null>;
  /** The signal that ended the process, or null when it exited by itself. */
  signal: Promise<NodeJS.Signals | null>;
  stderr: () => string;
}

describe('device-fatal error in the worker process (tiny real model, CUDA fault injected by the test)', () => {
  let h: Harness;
  let models: string;
  let dir: string;
  const children: ChildProcess[] = [];
  before(async () => {
    models = await tinyModelsDir();
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'rehyat-devfatal-'));
  });
  // A test that fails midway must not leave its workers running: a clean one would take the next
  // test's job from that test's faulty worker.
  afterEach(async () => {
    const alive = children.filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(alive.map((c) => new Promise((r) => { c.once('exit', r); c.kill('SIGKILL'); })));
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });
  const job = { model: 'rehyat-tiny', width: 32, height: 32, seconds: 3, steps: 3, guidance: 4, seed: 8 };

  /**
   * `faultAtRun`: the ONNX Runtime run (counted over the process) that raises the CUDA error;
   * `env`: more environment (e.g. `REHYAT_TEST_ORT_RELEASE_HANGS`, read by the fault file).
   */
  function spawnWorker(id: string, faultAtRun?: number, env: Record<string, string> = {}): Spawned {
    const args = ['--import', 'tsx', '--conditions=development', ...(faultAtRun ? ['--import', FAULT] : []), MAIN];
    const child = spawn(process.execPath, args, {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: {
        ...process.env,
        ...h.env,
        MODELS_DIR: models,
        WORKER_ID: id,
        LOG_LEVEL: faultAtRun ? 'error' : (process.env.TEST_LOG_LEVEL ?? 'warn'),
        ...(faultAtRun ? { REHYAT_TEST_ORT_FAULT_AT_RUN: String(faultAtRun) } : {}),
        ...env,
      },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (process.env.TEST_LOG_LEVEL) process.stderr.write(d);
    });
    const ended = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (code, signal) => r([code, signal])));
    return { child, exit: ended.then(([code]) => code), signal: ended.then(([, signal]) => signal), stderr: () => err };
  }

  async function frames(id: VideoId): Promise<Buffer> {
    const p = join(dir, `${id}.mp4`);
    await writeFile(p, await h.storage.getBuffer(storageKeys.video(id)));
    assert.equal((await probeVideo(p)).frames, 48);
    return decodeRgbFrames(p);
  }

  it('the attempt is recorded, the process exits 1, a restarted worker resumes the job; on the last attempt the video fails with device_error', { timeout: 300_000 }, async () => {
    const w0 = spawnWorker('clean-0');
    const ref = await h.submit(job);
    assert.equal((await h.waitFor(ref.video_id, terminal, 120_000)).at(-1)!.type, 'video.completed');
    w0.child.kill('SIGTERM');
    assert.equal(await w0.exit, 0);

    // Text encoder, then 3 steps + 1 decode per chunk: run 10 faults inside the third chunk.
    const faulty = spawnWorker('faulty-1', 10);
    const p = await h.submit(job, { attempts: 3, backoff: { type: 'fixed', delay: 200 } });
    assert.equal(await faulty.exit, 1, 'a device-fatal error exits the process non-zero');
    const log = faulty.stderr();
    assert.match(log, /"msg":"generation failed".*"kind":"device","code":"device_error"/);
    assert.match(log, /"msg":"device-fatal error: exiting so the supervisor restarts the process"/);
    assert.ok(log.includes('cudaErrorIllegalAddress'));

    const attempt = await h.queue.getJob(p.video_id);
    assert.equal(attempt!.attemptsMade, 1, 'the failed attempt is counted');
    assert.equal(attempt!.failedReason, CUDA_FAULT_MESSAGE, 'and carries the device error');
    assert.ok(['delayed', 'waiting'].includes(await attempt!.getState()), 'and the job waits for another worker');
    const during = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id }, include: { chunks: true } });
    assert.equal(during.status, 'in_progress', 'attempts left: the video is not failed');
    assert.deepEqual([during.errorCode, during.lastErrorCode, during.lastErrorMessage], [null, 'device_error', CUDA_FAULT_MESSAGE], 'the attempt\'s error is on the row');
    assert.ok(during.chunks.length >= 1 && during.chunks.length < during.chunksTotal, `${during.chunks.length} chunks shipped before the fault`);

    const w1 = spawnWorker('clean-1');
    const events = await h.waitFor(p.video_id, terminal, 120_000);
    assert.equal(events.at(-1)!.type, 'video.completed', JSON.stringify(events.at(-1)));
    // Resumed after the last checkpoint: one start, and no chunk shipped twice.
    assert.equal(events.filter((e) => e.type === 'video.in_progress').length, 1);
    assert.deepEqual(events.filter((e) => e.type === 'video.chunk').map((e) => (e.data as { index: number }).index), [...Array(during.chunksTotal).keys()]);
    const finished = await h.settled(p.video_id);
    assert.equal(await finished.getState(), 'completed');
    assert.equal(finished.attemptsMade, 2, 'the restarted worker finished it on the next attempt');
    assert.ok((await frames(p.video_id)).equals(await frames(ref.video_id)), 'resumed video equals the uninterrupted one frame for frame');
    w1.child.kill('SIGTERM');
    assert.equal(await w1.exit, 0);

    // No attempts left: the video fails with device_error and the device's message.
    const last = spawnWorker('faulty-2', 10);
    const q = await h.submit(job, { attempts: 1 });
    assert.equal(await last.exit, 1);
    const failed = (await h.waitFor(q.video_id, terminal, 10_000)).at(-1)!;
    assert.equal(failed.type, 'video.failed');
    assert.deepEqual(failed.data, { code: 'device_error', message: CUDA_FAULT_MESSAGE });
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: q.video_id } });
    assert.deepEqual([video.status, video.errorCode, video.errorMessage], ['failed', 'device_error', CUDA_FAULT_MESSAGE]);
    assert.equal(await (await h.settled(q.video_id)).getState(), 'failed');
  });

  // Releasing the sessions hangs on the broken device; SHUTDOWN_TIMEOUT_MS (10 min) must not apply.
  const hangs = { SHUTDOWN_TIMEOUT_MS: '600000', DEVICE_FATAL_EXIT_TIMEOUT_MS: '2000' };

  it('releasing the sessions never settles: the process still exits 1, after DEVICE_FATAL_EXIT_TIMEOUT_MS, the failure recorded', { timeout: 120_000 }, async () => {
    const w = spawnWorker('faulty-hang', 10, { ...hangs, REHYAT_TEST_ORT_RELEASE_HANGS: 'pending' });
    const p = await h.submit(job, { attempts: 1 });
    assert.equal(await w.exit, 1, 'the device-fatal exit code');
    assert.match(w.stderr(), /"msg":"device-fatal exit timed out; exiting".*"timeoutMs":2000/);
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
    assert.deepEqual([video.status, video.errorCode], ['failed', 'device_error'], 'recorded before the hang');
    assert.equal(await (await h.settled(p.video_id)).getState(), 'failed');
  });

  it('the main thread blocked for good in a session release: the watchdog thread kills the process', { timeout: 120_000 }, async () => {
    const w = spawnWorker('faulty-block', 10, { ...hangs, REHYAT_TEST_ORT_RELEASE_HANGS: 'blocked' });
    const p = await h.submit(job, { attempts: 1 });
    assert.equal(await w.signal, 'SIGKILL', 'killed by the watchdog (no timer of the blocked main thread can fire)');
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
    assert.deepEqual([video.status, video.errorCode], ['failed', 'device_error'], 'recorded before the block');
  });
});
