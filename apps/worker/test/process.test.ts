import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { storageKeys } from '@rehyat/contracts';
import { decodeRgbFrames, probeVideo } from '../src/media/index.js';
import { startHarness, terminal, type Harness } from './support/harness.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** The real worker process (src/main.ts) with the tiny exported model, against the harness's services. */
function spawnWorker(h: Harness, modelsDir: string, id: string): ChildProcess {
  // One node process (no tsx wrapper in between), so signals reach the worker itself.
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=development', MAIN], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: { ...process.env, ...h.env, MODELS_DIR: modelsDir, WORKER_ID: id, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}
const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

describe('worker process with the tiny real-architecture model (kill -9 and SIGTERM mid-job)', () => {
  let h: Harness;
  let models: string;
  let dir: string;
  const children: ChildProcess[] = [];
  before(async () => {
    models = await tinyModelsDir();
    // SIGKILL recovery waits for the dead worker's lock to expire: shorter than the production 30 s,
    // long enough that a live worker on a loaded machine keeps renewing its lock (every 5 s).
    h = await startHarness({ LOCK_DURATION_MS: '10000' });
    dir = await mkdtemp(join(tmpdir(), 'rehyat-proc-'));
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });
  const job = { model: 'rehyat-tiny', width: 32, height: 32, seconds: 6, steps: 3, guidance: 4, seed: 21 };

  async function frames(id: string): Promise<Buffer> {
    const p = join(dir, `${id}.mp4`);
    await writeFile(p, await h.storage.getBuffer(storageKeys.video(id as never)));
    const probe = await probeVideo(p);
    assert.equal(probe.frames, 96);
    return decodeRgbFrames(p);
  }

  it('killed with SIGKILL mid-job, another worker resumes from the last checkpoint: same video frame for frame; SIGTERM releases the job', async () => {
    const w0 = spawnWorker(h, models, 'w0');
    children.push(w0);
    const ref = await h.submit(job);
    await h.waitFor(ref.video_id, terminal, 120_000);

    const p = await h.submit(job);
    await h.waitFor(p.video_id, (ev) => ev.filter((e) => e.type === 'video.chunk').length >= 2, 120_000);
    w0.kill('SIGTERM');
    assert.equal(await exited(w0), 0, 'SIGTERM: clean exit');
    const st = await (await h.queue.getJob(p.video_id))!.getState();
    assert.ok(st === 'waiting' || st === 'completed', `after SIGTERM the job is ${st}`);

    const w1 = spawnWorker(h, models, 'w1');
    children.push(w1);
    const q = await h.submit(job);
    await h.waitFor(q.video_id, (ev) => ev.filter((e) => e.type === 'video.chunk').length >= 3, 120_000);
    w1.kill('SIGKILL');
    await exited(w1);

    const w2 = spawnWorker(h, models, 'w2');
    children.push(w2);
    const evP = await h.waitFor(p.video_id, terminal, 120_000);
    const evQ = await h.waitFor(q.video_id, terminal, 120_000);
    assert.equal(evP.at(-1)!.type, 'video.completed');
    assert.equal(evQ.at(-1)!.type, 'video.completed');
    const want = await frames(ref.video_id);
    assert.ok((await frames(p.video_id)).equals(want), 'SIGTERM-released video equals the uninterrupted one');
    assert.ok((await frames(q.video_id)).equals(want), 'SIGKILL-recovered video equals the uninterrupted one');
    w2.kill('SIGTERM');
    assert.equal(await exited(w2), 0);
  });
});
