/**
 * Resume from a cut-off checkpoint, with the tiny real-architecture model (real checkpoints: the
 * recurrent state tensors) against the real embedded S3: a job released mid-video (SIGTERM path)
 * has its newest checkpoint replaced by a cut-off copy of itself, as an upload killed mid-body
 * leaves it on a store whose PUT is not atomic. The resumed job falls back to the checkpoint before
 * it, regenerates the chunk after that one, and the video equals an uninterrupted run frame for
 * frame (instead of failing with `generation_failed: ... truncated`). A checkpoint after every
 * chunk (`CHECKPOINT_EVERY_CHUNKS=1`), so that the one before the newest is the previous chunk's.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { storageKeys, type VideoId } from '@rehyat/contracts';
import { CheckpointFormatError, ModelRegistry, decodeCheckpoint, type Generator } from '@rehyat/pipeline';
import type { GeneratorProvider } from '../src/processors/generate.js';
import { decodeRgbFrames, probeVideo } from '../src/media/index.js';
import { lastCheckpoint } from '../src/processors/generate.js';
import { startHarness, terminal, type Harness } from './support/harness.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

describe('resume from a cut-off checkpoint (tiny real model, real embedded S3)', () => {
  let h: Harness;
  let registry: ModelRegistry;
  let dir: string;
  /** The chunk of the checkpoint each generation resumed from (null: from the start). */
  const resumedFrom: (number | null)[] = [];
  /** The real generators, recording where each generation starts. */
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
    registry = new ModelRegistry({ modelsDir: await tinyModelsDir() });
    h = await startHarness({ CHECKPOINT_EVERY_CHUNKS: '1' });
    dir = await mkdtemp(join(tmpdir(), 'rehyat-ckpt-fallback-'));
  });
  afterEach(async () => {
    await h.stopWorkers();
  });
  after(async () => {
    await h.close();
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });
  // 6 s at 16 fps in chunks of 8 frames: 12 chunks, so the release lands well before the end.
  const job = { model: 'rehyat-tiny', width: 32, height: 32, seconds: 6, steps: 3, guidance: 4, seed: 17 };
  const FRAMES = 96;

  async function frames(id: VideoId): Promise<Buffer> {
    const p = join(dir, `${id}.mp4`);
    await writeFile(p, await h.storage.getBuffer(storageKeys.video(id)));
    assert.equal((await probeVideo(p)).frames, FRAMES);
    return decodeRgbFrames(p);
  }
  const chunkIndexes = (events: { type: string; data: unknown }[]) => events.filter((e) => e.type === 'video.chunk').map((e) => (e.data as { index: number }).index);

  it('the newest checkpoint cut off: resumes from the one before, same video as uninterrupted', { timeout: 300_000 }, async () => {
    const w0 = await h.start(provider);
    const ref = await h.submit(job);
    assert.equal((await h.waitFor(ref.video_id, terminal, 120_000)).at(-1)!.type, 'video.completed');

    // Release the job after a few chunks (the SIGTERM path: current chunk, checkpoint, back to waiting).
    const p = await h.submit(job);
    await h.waitFor(p.video_id, (ev) => chunkIndexes(ev).length >= 2, 120_000);
    await w0.shutdown();
    const released = await h.queue.getJob(p.video_id);
    assert.equal(await released!.getState(), 'waiting', 'released mid-video');
    const last = await lastCheckpoint(h.storage, p.video_id);
    assert.ok(last !== null && last >= 1 && last < 11, `newest checkpoint: ${last}`);

    // Replace it with a cut-off copy of itself, which the checkpoint reader rejects.
    const key = storageKeys.checkpoint(p.video_id, last);
    const whole = await h.storage.getBuffer(key);
    const cut = whole.subarray(0, Math.floor(whole.length / 2));
    assert.throws(() => decodeCheckpoint(cut), CheckpointFormatError);
    await h.storage.put(key, cut, { contentType: 'application/octet-stream' });
    const before = (await h.events(p.video_id)).length;
    resumedFrom.length = 0;

    const w1 = await h.start(provider);
    const events = await h.waitFor(p.video_id, terminal, 120_000);
    assert.equal(events.at(-1)!.type, 'video.completed', JSON.stringify(events.at(-1)));
    // Resumed after checkpoint last-1 (no restart): chunk `last` is generated again (same bytes, same
    // checkpoint) but not announced again, then the rest.
    assert.deepEqual(resumedFrom, [last - 1], 'resumed from the checkpoint before the cut-off one');
    assert.deepEqual(chunkIndexes(events.slice(before)), [...Array(12).keys()].slice(last + 1));
    assert.deepEqual(chunkIndexes(events), [...Array(12).keys()], 'every chunk announced once');
    assert.equal(events.filter((e) => e.type === 'video.in_progress').length, 1, 'a resume, not a fresh start');
    assert.ok((await h.storage.getBuffer(key)).equals(whole), 'the regenerated chunk wrote the same checkpoint again');
    assert.ok((await frames(p.video_id)).equals(await frames(ref.video_id)), 'the video equals the uninterrupted one frame for frame');
    for (let i = 0; i < 12; i++) {
      const [a, b] = [await h.storage.getBuffer(storageKeys.segment(ref.video_id, i)), await h.storage.getBuffer(storageKeys.segment(p.video_id, i))];
      assert.ok(a.equals(b), `segment ${i} bytes equal`);
    }
    await w1.shutdown();
  });
});
