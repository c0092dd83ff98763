import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { storageKeys, WorkerHeartbeat, type VideoId } from '@rehyat/contracts';
import { requestCancel } from '@rehyat/events';
import { CheckpointFormatError, ModelUnavailableError, decodeCheckpoint } from '@rehyat/pipeline';
import { InvalidJobError } from '../src/failure.js';
import { decodeRgbFrames, probeVideo } from '../src/media/index.js';
import type { GeneratorProvider } from '../src/processors/generate.js';
import { PrismaVideoRepository } from '../src/prisma-video-repository.js';
import { startHarness, terminal, type Harness } from './support/harness.js';
import { ScriptedGenerator, VIDEO } from './support/scripted-generator.js';

function provider(gen: ScriptedGenerator): GeneratorProvider {
  return {
    async get(model) {
      if (model === 'scripted') return gen;
      if (model === 'missing-files') throw new ModelUnavailableError('model v9: file dit_step.onnx (dit_step) is missing from /models/v9');
      throw new InvalidJobError(`unknown model ${model}`);
    },
  };
}

async function download(h: Harness, key: string, dir: string, name: string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, await h.storage.getBuffer(key));
  return p;
}

describe('worker processor (real Redis, Postgres, S3, ffmpeg; scripted generator)', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await startHarness();
    dir = await mkdtemp(join(tmpdir(), 'rehyat-worker-out-'));
  });
  afterEach(async () => {
    await h.stopWorkers();
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('generates a video: segments, rows, events in order, MP4 + thumbnail + spritesheet, usage, heartbeat', async () => {
    const gen = new ScriptedGenerator();
    const w = await h.start(provider(gen));
    const p = await h.submit();
    const events = await h.waitFor(p.video_id, terminal);
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'video.in_progress');
    assert.equal(types.at(-1), 'video.completed', JSON.stringify(events.at(-1)));
    const plan = gen.info.plan(p.seconds);
    const chunkEvents = events.filter((e) => e.type === 'video.chunk');
    assert.deepEqual(chunkEvents.map((e) => (e.data as { index: number }).index), [...Array(plan.chunks).keys()]);
    const progress = events.filter((e) => e.type === 'video.progress').map((e) => e.data as { progress: number; step: number; steps_total: number });
    assert.ok(progress.length >= plan.chunks * p.steps);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.progress >= progress[i - 1]!.progress, 'progress never goes back');

    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id }, include: { chunks: { orderBy: { index: 'asc' } } } });
    assert.equal(video.status, 'completed');
    assert.equal(video.progress, 100);
    assert.equal(video.chunksTotal, plan.chunks);
    assert.equal(video.chunksDone, plan.chunks);
    assert.equal(video.framesTotal, plan.frames);
    assert.ok(video.gpuMs > 0n);
    assert.ok(video.startedAt && video.completedAt);
    assert.deepEqual(video.chunks.map((c) => c.storageKey), [...Array(plan.chunks).keys()].map((i) => storageKeys.segment(p.video_id, i)));

    const mp4 = await download(h, storageKeys.video(p.video_id), dir, 'a.mp4');
    const probe = await probeVideo(mp4);
    assert.deepEqual([probe.frames, probe.width, probe.height, probe.fps], [plan.frames, VIDEO.width, VIDEO.height, VIDEO.fps]);
    assert.ok(Math.abs(probe.duration - plan.seconds) < 1e-3);
    assert.equal((await h.storage.getBuffer(storageKeys.thumbnail(p.video_id))).subarray(8, 12).toString(), 'WEBP');
    assert.equal((await h.storage.getBuffer(storageKeys.spritesheet(p.video_id)))[0], 0xff);

    const beat = await h.redis.hget(h.keyspace.workerHeartbeat(h.config.WORKER_ID), 'state');
    assert.ok(beat, 'heartbeat written');
    assert.equal(WorkerHeartbeat.parse(JSON.parse(beat)).device, 'cpu');
    await w.shutdown();
  });

  it('a progress write never lowers the row\'s progress (a late write after a chunk\'s higher one)', async () => {
    const p = await h.submit();
    await (await h.queue.getJob(p.video_id))?.remove(); // the row alone: no worker may take it
    const repo = new PrismaVideoRepository(h.prisma);
    await h.prisma.video.update({ where: { id: p.video_id }, data: { status: 'in_progress', progress: 50 } });
    await repo.setProgress(p.video_id, 40);
    assert.equal((await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } })).progress, 50);
    await repo.setProgress(p.video_id, 60);
    assert.equal((await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } })).progress, 60);
  });

  it('a malformed payload fails the video as invalid_request without retrying', async () => {
    const w = await h.start(provider(new ScriptedGenerator()));
    const p = await h.submit({ steps: -3 });
    const events = await h.waitFor(p.video_id, terminal);
    const failed = events.at(-1)!;
    assert.equal(failed.type, 'video.failed');
    assert.equal((failed.data as { code: string }).code, 'invalid_request');
    assert.match((failed.data as { message: string }).message, /steps/);
    const job = await h.settled(p.video_id);
    assert.equal(await job.getState(), 'failed');
    assert.equal(job.attemptsMade, 1);
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
    assert.deepEqual([video.status, video.errorCode], ['failed', 'invalid_request']);
    await w.shutdown();
  });

  it('a missing model file fails the video as model_unavailable, naming the file', async () => {
    const w = await h.start(provider(new ScriptedGenerator()));
    const p = await h.submit({ model: 'missing-files' });
    const events = await h.waitFor(p.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.failed');
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id } });
    assert.equal(video.errorCode, 'model_unavailable');
    assert.match(video.errorMessage ?? '', /dit_step\.onnx/);
    assert.equal((await h.settled(p.video_id)).attemptsMade, 1);
    await w.shutdown();
  });

  it('cancel while running stops within a step; shipped chunks stay', async () => {
    const gen = new ScriptedGenerator(40);
    const w = await h.start(provider(gen));
    const p = await h.submit({ seconds: 6 });
    await h.waitFor(p.video_id, (ev) => ev.some((e) => e.type === 'video.chunk'));
    await requestCancel(h.redis, h.keyspace, p.video_id);
    const events = await h.waitFor(p.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.cancelled');
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: p.video_id }, include: { chunks: true } });
    assert.equal(video.status, 'cancelled');
    const total = gen.info.plan(p.seconds).chunks;
    assert.ok(video.chunks.length >= 1 && video.chunks.length < total, `${video.chunks.length} of ${total} chunks`);
    // every recorded chunk is downloadable
    for (const c of video.chunks) assert.ok((await h.storage.getBuffer(c.storageKey)).length > 0);
    // steps taken after the cancel: at most the step in flight plus the chunk's encode
    const afterCancel = events.slice(events.findIndex((e) => e.type === 'video.chunk') + 1).filter((e) => e.type === 'video.chunk');
    assert.ok(afterCancel.length <= 1);
    await w.shutdown();
  });

  it('SIGTERM path: the job is released after the current chunk and a new worker resumes it; the video equals an uninterrupted one', async () => {
    const seconds = 4;
    // uninterrupted reference
    const refGen = new ScriptedGenerator(5);
    const w0 = await h.start(provider(refGen));
    const ref = await h.submit({ seconds, seed: 99 });
    await h.waitFor(ref.video_id, terminal);
    await w0.shutdown();

    const gen1 = new ScriptedGenerator(30);
    const w1 = await h.start(provider(gen1));
    const p = await h.submit({ seconds, seed: 99 });
    await h.waitFor(p.video_id, (ev) => ev.some((e) => e.type === 'video.chunk'));
    await w1.shutdown();
    const job = await h.queue.getJob(p.video_id);
    assert.equal(await job!.getState(), 'waiting', 'released back to the queue');
    assert.equal(job!.attemptsMade, 0, 'a release is not a failed attempt');
    const shipped = gen1.produced.length;
    const total = gen1.info.plan(seconds).chunks;
    assert.ok(shipped < total);

    const gen2 = new ScriptedGenerator(5);
    const w2 = await h.start(provider(gen2));
    const events = await h.waitFor(p.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.completed');
    assert.deepEqual(gen2.produced, [...Array(total).keys()].slice(shipped), 'resumed after the last checkpoint');
    await w2.shutdown();
    await assertSameVideo(h, dir, ref.video_id, p.video_id);
  });

  it('every checkpoint unreadable (cut off): the resumed job starts over; the video equals an uninterrupted one', async () => {
    const seconds = 4;
    const refGen = new ScriptedGenerator(5);
    const w0 = await h.start(provider(refGen));
    const ref = await h.submit({ seconds, seed: 123 });
    await h.waitFor(ref.video_id, terminal);
    await w0.shutdown();

    const w1 = await h.start(provider(new ScriptedGenerator(30)));
    const p = await h.submit({ seconds, seed: 123 });
    await h.waitFor(p.video_id, (ev) => ev.some((e) => e.type === 'video.chunk'));
    await w1.shutdown();
    assert.equal(await (await h.queue.getJob(p.video_id))!.getState(), 'waiting');
    const checkpoints = await h.storage.list(storageKeys.checkpoint(p.video_id, 0).replace(/00000\.bin$/, ''));
    assert.ok(checkpoints.length >= 1);
    for (const key of checkpoints) {
      const whole = await h.storage.getBuffer(key);
      const cut = whole.subarray(0, Math.floor(whole.length / 2));
      assert.throws(() => decodeCheckpoint(cut), CheckpointFormatError);
      await h.storage.put(key, cut, { contentType: 'application/octet-stream' });
    }

    const gen2 = new ScriptedGenerator(5);
    const w2 = await h.start(provider(gen2));
    const events = await h.waitFor(p.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.completed', JSON.stringify(events.at(-1)));
    const total = gen2.info.plan(seconds).chunks;
    assert.deepEqual(gen2.produced, [...Array(total).keys()], 'no readable checkpoint: generated from the start');
    await w2.shutdown();
    await assertSameVideo(h, dir, ref.video_id, p.video_id);
  });

  it('extend: the new video is the source followed by new chunks generated from its final state', async () => {
    const gen = new ScriptedGenerator(5);
    const w = await h.start(provider(gen));
    const src = await h.submit({ seconds: 2 });
    await h.waitFor(src.video_id, terminal);
    const ext = await h.submit({ seconds: 2, prompt: 'now it moves left', source: { kind: 'extension', video_id: src.video_id } });
    const events = await h.waitFor(ext.video_id, terminal);
    assert.equal(events.at(-1)!.type, 'video.completed', JSON.stringify(events.at(-1)));
    const srcPlan = gen.info.plan(2);
    const newChunks = Math.ceil((2 * VIDEO.fps) / VIDEO.chunk_frames);
    const video = await h.prisma.video.findUniqueOrThrow({ where: { id: ext.video_id }, include: { chunks: true } });
    assert.equal(video.chunks.length, srcPlan.chunks + newChunks);
    const a = await decodeRgbFrames(await download(h, storageKeys.video(src.video_id), dir, 'src.mp4'));
    const b = await decodeRgbFrames(await download(h, storageKeys.video(ext.video_id), dir, 'ext.mp4'));
    assert.equal(b.length / (VIDEO.width * VIDEO.height * 3), srcPlan.frames + newChunks * VIDEO.chunk_frames);
    assert.ok(b.subarray(0, a.length).equals(a), 'the extension starts with the source video, bit for bit');
    await w.shutdown();
  });
});

async function assertSameVideo(h: Harness, dir: string, a: VideoId, b: VideoId): Promise<void> {
  const fa = await decodeRgbFrames(await download(h, storageKeys.video(a), dir, `${a}.mp4`));
  const fb = await decodeRgbFrames(await download(h, storageKeys.video(b), dir, `${b}.mp4`));
  assert.equal(fa.length, fb.length);
  assert.ok(fa.equals(fb), 'frame for frame equal');
  for (let i = 0; ; i++) {
    const ka = storageKeys.segment(a, i);
    const list = await h.storage.list(ka);
    if (list.length === 0) break;
    assert.ok((await h.storage.getBuffer(ka)).equals(await h.storage.getBuffer(storageKeys.segment(b, i))), `segment ${i} bytes equal`);
  }
}
