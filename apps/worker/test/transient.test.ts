/**
 * Transient S3 failures against the real embedded S3 server, with the tiny real-architecture model
 * (no generator double): the server is stopped while a job is generating, the attempt fails as
 * transient and BullMQ retries it with backoff; the server comes back (same port, same directory)
 * and the job completes with the whole video, equal to an uninterrupted one. And when S3 stays down
 * past the last attempt, the video fails with `storage_unavailable` and a message naming S3.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { storageKeys, type VideoId } from '@rehyat/contracts';
import { ModelRegistry } from '@rehyat/pipeline';
import { decodeRgbFrames, probeVideo } from '../src/media/index.js';
import { startHarness, terminal, type Harness } from './support/harness.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

const S3_FAILURE = /^S3 at http:\/\/127\.0\.0\.1:\d+ failed: /;

describe('transient S3 failures (real embedded S3 stopped and restarted; tiny real model)', () => {
  let h: Harness;
  let registry: ModelRegistry;
  let dir: string;
  before(async () => {
    registry = new ModelRegistry({ modelsDir: await tinyModelsDir() });
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'rehyat-transient-'));
  });
  afterEach(async () => {
    await h.stopWorkers();
  });
  after(async () => {
    await h.close();
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });
  // Enough denoising steps that the job is still generating when S3 goes down after its first chunk
  // (with 3 steps a fast machine finished the whole job before the outage took effect).
  const job = { model: 'rehyat-tiny', width: 32, height: 32, seconds: 3, steps: 32, guidance: 4, seed: 5 };
  const FRAMES = 48;

  async function frames(id: VideoId): Promise<Buffer> {
    const p = join(dir, `${id}.mp4`);
    await writeFile(p, await h.storage.getBuffer(storageKeys.video(id)));
    assert.equal((await probeVideo(p)).frames, FRAMES);
    return decodeRgbFrames(p);
  }

  async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('S3 stopped mid-job: the attempt fails as transient, is retried with backoff, and completes once S3 is back; same video as uninterrupted', { timeout: 300_000 }, async () => {
    const w = await h.start(registry);
    const ref = await h.submit(job);
    assert.equal((await h.waitFor(ref.video_id, terminal, 120_000)).at(-1)!.type, 'video.completed');

    // Exponential backoff 1 s, 2 s, 4 s, 8 s: S3 may stay down ~15 s before the attempts run out.
    const p = await h.submit(job, { attempts: 5, backoff: { type: 'exponential', delay: 1000 } });
    await h.waitFor(p.video_id, (ev) => ev.some((e) => e.type === 'video.chunk'), 120_000);
    await h.stopS3();
    try {
      // A failed attempt waiting out its backoff: counted, the reason names S3, the video not failed.
      const failedAttempt = await until('a failed attempt in backoff', async () => {
        const j = await h.queue.getJob(p.video_id);
        return j && j.attemptsMade >= 1 && (await j.getState()) === 'delayed' ? j : undefined;
      });
      assert.match(failedAttempt.failedReason, S3_FAILURE);
      assert.ok(failedAttempt.attemptsMade < 5);
      const during = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
      assert.equal(during.status, 'in_progress', 'a transient failure with attempts left does not fail the video');
      assert.equal(during.errorCode, null);
      // ... but the row says why the attempt failed (the API's last_error).
      assert.equal(during.lastErrorCode, 'storage_unavailable');
      assert.match(during.lastErrorMessage ?? '', S3_FAILURE);
      assert.ok(during.lastErrorAt);
      assert.ok(!(await h.events(p.video_id)).some((e) => e.type === 'video.failed'));
    } finally {
      await h.restartS3(); // also when an assertion above fails: the next test needs S3
    }
    const events = await h.waitFor(p.video_id, terminal, 120_000);
    assert.equal(events.at(-1)!.type, 'video.completed', JSON.stringify(events.at(-1)));
    const done = await h.settled(p.video_id);
    assert.equal(await done!.getState(), 'completed');
    assert.ok(done!.attemptsMade >= 2, `attempts made: ${done!.attemptsMade}`);
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id }, include: { chunks: true } });
    assert.deepEqual([video.status, video.errorCode, video.chunksDone, video.chunks.length], ['completed', null, video.chunksTotal, video.chunksTotal]);
    assert.equal(video.lastErrorCode, 'storage_unavailable', 'the retried attempt\'s error stays on record');
    // Every chunk announced (one whose checkpoint upload hit the outage is regenerated, same bytes).
    const announced = new Set(events.filter((e) => e.type === 'video.chunk').map((e) => (e.data as { index: number }).index));
    assert.deepEqual([...announced].sort((a, b) => a - b), [...Array(video.chunksTotal).keys()]);
    assert.ok((await frames(p.video_id)).equals(await frames(ref.video_id)), 'the video equals the uninterrupted one frame for frame');
    await w.shutdown();
  });

  it('S3 down past the last attempt: the video fails with storage_unavailable and a message naming S3', { timeout: 120_000 }, async () => {
    const w = await h.start(registry);
    await h.stopS3();
    try {
      const p = await h.submit(job, { attempts: 2, backoff: { type: 'fixed', delay: 200 } });
      const events = await h.waitFor(p.video_id, terminal, 120_000);
      const failed = events.at(-1)!;
      assert.equal(failed.type, 'video.failed');
      const data = failed.data as { code: string; message: string };
      assert.equal(data.code, 'storage_unavailable');
      assert.match(data.message, S3_FAILURE);
      assert.equal(events.filter((e) => e.type === 'video.failed').length, 1, 'failed once, after the last attempt');
      const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
      assert.deepEqual([video.status, video.errorCode], ['failed', 'storage_unavailable']);
      assert.match(video.errorMessage ?? '', S3_FAILURE);
      const j = await h.settled(p.video_id);
      assert.equal(await j.getState(), 'failed');
      assert.equal(j.attemptsMade, 2, 'every attempt was used');
    } finally {
      await h.restartS3();
      await w.shutdown();
    }
  });
});
