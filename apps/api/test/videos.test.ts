import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import OpenAI, { toFile } from 'openai';
import {
  GENERATION_QUEUE,
  GenerateJobPayload,
  JOBS,
  parseVideoEvent,
  storageKeys,
  type VideoId,
} from '@rehyat/contracts';
import { startStack, type Stack } from './helpers.js';

/** What the API returns: OpenAI's video plus our fields. */
type OurVideo = OpenAI.Videos.Video & {
  queue_position: number | null;
  chunks: { index: number; url: string; duration: number }[];
  chunks_total: number;
  playlist_url: string;
  usage: { gpu_ms: number; frames: number; seconds: number };
  seed: number;
  steps: number;
  guidance: number;
  extended_from_video_id: string | null;
  cancel_requested_at: number | null;
};

const secs = (s: string) => s as OpenAI.Videos.VideoSeconds;
const size = (s: string) => s as OpenAI.Videos.VideoSize;

let stack: Stack;
let client: OpenAI;
let queue: Queue;

before(async () => {
  stack = await startStack();
  ({ client } = await stack.client('videos'));
  queue = new Queue(GENERATION_QUEUE, { connection: stack.redis, prefix: stack.config.REDIS_PREFIX });
});
after(async () => {
  await queue.close();
  await stack.close();
});

async function events(id: string) {
  const entries = await stack.redis.xrange(`${stack.config.REDIS_PREFIX}:video:${id}:events`, '-', '+');
  return entries.map(([, fields]) => parseVideoEvent(fields[fields.indexOf('payload') + 1]!));
}

/** Stands in for the worker: marks a video completed and writes its files where the contract says. */
async function completeVideo(id: string, files: { video?: Buffer; thumbnail?: Buffer; chunks?: number } = {}) {
  const vid = id as VideoId;
  const chunks = files.chunks ?? 1;
  for (let i = 0; i < chunks; i++) {
    await stack.app.storage.put(storageKeys.segment(vid, i), Buffer.from(`segment ${i}`), { contentType: 'video/iso.segment' });
    await stack.app.prisma.chunk.create({
      data: { videoId: vid, index: i, storageKey: storageKeys.segment(vid, i), frames: i === 0 ? 9 : 12, durationSeconds: i === 0 ? 9 / 16 : 12 / 16, bytes: 9 },
    });
  }
  if (files.video) await stack.app.storage.put(storageKeys.video(vid), files.video, { contentType: 'video/mp4' });
  if (files.thumbnail) await stack.app.storage.put(storageKeys.thumbnail(vid), files.thumbnail, { contentType: 'image/webp' });
  const job = await queue.getJob(vid);
  await job?.remove();
  await stack.app.prisma.video.update({
    where: { id: vid },
    data: { status: 'completed', progress: 100, completedAt: new Date(), chunksDone: chunks, gpuMs: 1234n, framesTotal: 9 + (chunks - 1) * 12, durationSeconds: (9 + (chunks - 1) * 12) / 16 },
  });
}

describe('creation', () => {
  test('multipart (what videos.create sends) queues a job validated by the contract', async () => {
    const video = (await client.videos.create({ prompt: 'a red ball bounces', model: 'rehyat-test', seconds: secs('2'), size: size('256x160') })) as OurVideo;
    assert.match(video.id, /^video_[0-9a-f]{32}$/);
    assert.equal(video.object, 'video');
    assert.equal(video.status, 'queued');
    assert.equal(video.model, 'rehyat-test');
    assert.equal(video.seconds, '2');
    assert.equal(video.size, '256x160');
    assert.equal(video.prompt, 'a red ball bounces');
    assert.equal(video.progress, 0);
    assert.equal(video.error, null);
    assert.equal(video.remixed_from_video_id, null);
    assert.equal(video.completed_at, null);
    assert.ok(Math.abs(video.created_at - Date.now() / 1000) < 60);
    assert.equal(video.steps, 8);
    assert.equal(video.guidance, 5);
    assert.equal(video.chunks_total, 3); // 32 frames: 9 + 2 x 12
    assert.deepEqual(video.chunks, []);
    assert.equal(typeof video.queue_position, 'number');
    assert.match(video.playlist_url, new RegExp(`/v1/videos/${video.id}/playlist\\.m3u8`));
    assert.deepEqual(video.usage, { gpu_ms: 0, frames: 0, seconds: 0 });

    const job = await queue.getJob(video.id);
    assert.ok(job, 'the generation job is queued under the video id');
    assert.equal(job.name, JOBS.generate.name);
    assert.equal(job.opts.attempts, JOBS.generate.attempts);
    assert.deepEqual(job.opts.backoff, JOBS.generate.backoff);
    const payload = GenerateJobPayload.parse(job.data);
    assert.equal(payload.video_id, video.id);
    assert.equal(payload.seconds, 2);
    assert.equal(payload.width, 256);
    assert.equal(payload.height, 160);
    assert.equal(payload.seed, video.seed);

    const evs = await events(video.id);
    assert.deepEqual(evs.map((e) => e.type), ['video.queued']);
  });

  test('JSON body with our fields (seed, steps, guidance)', async () => {
    const video = await client.post<OurVideo>('/videos', {
      body: { prompt: 'a blue square slides', model: 'rehyat-test', seconds: 1, size: '160x256', seed: 42, steps: 4, guidance: 3.5 },
    });
    assert.equal(video.status, 'queued');
    assert.equal(video.seconds, '1');
    assert.equal(video.size, '160x256');
    assert.equal(video.seed, 42);
    assert.equal(video.steps, 4);
    assert.equal(video.guidance, 3.5);
    const payload = GenerateJobPayload.parse((await queue.getJob(video.id))!.data);
    assert.deepEqual([payload.seed, payload.steps, payload.guidance, payload.width, payload.height], [42, 4, 3.5, 160, 256]);
  });

  test('defaults: the default model, its native size and sampler settings', async () => {
    const video = (await client.videos.create({ prompt: 'defaults' })) as OurVideo;
    assert.equal(video.model, 'rehyat-test');
    assert.equal(video.size, '256x160');
    assert.equal(video.seconds, '4');
    assert.equal(video.steps, 8);
    assert.ok(video.seed >= 0 && video.seed <= 2 ** 32 - 1);
  });

  test('queue_position counts from the next job to run', async () => {
    await queue.obliterate({ force: true });
    const a = (await client.videos.create({ prompt: 'first' })) as OurVideo;
    const b = (await client.videos.create({ prompt: 'second' })) as OurVideo;
    assert.equal((await client.videos.retrieve(a.id) as OurVideo).queue_position, 0);
    assert.equal((await client.videos.retrieve(b.id) as OurVideo).queue_position, 1);
    // A job added with a priority waits in BullMQ's prioritized set, behind the wait list.
    const c = (await client.videos.create({ prompt: 'third, prioritized' })) as OurVideo;
    const job = (await queue.getJob(c.id))!;
    await job.remove();
    await queue.add(job.name, job.data, { ...job.opts, jobId: c.id, priority: 5 });
    assert.equal((await client.videos.retrieve(c.id) as OurVideo).queue_position, 2);
    const listed = await client.videos.list({ limit: 3 });
    assert.deepEqual(listed.data.map((v) => (v as OurVideo).queue_position), [2, 1, 0]);
  });
});

describe('reads', () => {
  test('retrieve returns the same object; an unknown id is NotFoundError', async () => {
    const created = await client.videos.create({ prompt: 'retrieve me' });
    const got = await client.videos.retrieve(created.id);
    assert.equal(got.id, created.id);
    assert.equal(got.prompt, 'retrieve me');
    await assert.rejects(client.videos.retrieve('video_00000000000000000000000000000000'), OpenAI.NotFoundError);
    await assert.rejects(client.videos.retrieve('not-a-video-id'), OpenAI.NotFoundError);
  });

  test('list paginates with after/limit/order and the client iterates every page', async () => {
    const { client: own } = await stack.client('pagination');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await own.videos.create({ prompt: `page item ${i}` })).id);

    const first = await own.videos.list({ limit: 2 });
    assert.deepEqual(first.data.map((v) => v.id), [ids[4], ids[3]]);
    assert.equal(first.has_more, true);
    assert.equal(first.last_id, ids[3]);

    const all: string[] = [];
    for await (const v of own.videos.list({ limit: 2 })) all.push(v.id);
    assert.deepEqual(all, [...ids].reverse());

    const asc: string[] = [];
    for await (const v of own.videos.list({ limit: 3, order: 'asc' })) asc.push(v.id);
    assert.deepEqual(asc, ids);

    const last = await own.videos.list({ limit: 2, after: ids[1], order: 'desc' });
    assert.deepEqual(last.data.map((v) => v.id), [ids[0]]);
    assert.equal(last.has_more, false);

    const raw = (await own.get('/videos', { query: { limit: 10 } })) as { object: string; first_id: string; last_id: string };
    assert.equal(raw.object, 'list');
    assert.equal(raw.first_id, ids[4]);
    assert.equal(raw.last_id, ids[0]);
  });
});

describe('content, chunks, remix, extension', () => {
  test('downloadContent streams the MP4 and the thumbnail of a completed video', async () => {
    const video = await client.videos.create({ prompt: 'download me', seconds: secs('1') });
    await assert.rejects(client.videos.downloadContent(video.id), (err: unknown) => {
      assert.ok(err instanceof OpenAI.ConflictError);
      assert.equal((err.error as { code: string }).code, 'video_not_ready');
      return true;
    });
    const mp4 = Buffer.from('\x00\x00\x00\x18ftypisom fake mp4 bytes', 'binary');
    await completeVideo(video.id, { video: mp4, thumbnail: Buffer.from('RIFF fake webp') });

    const res = await client.videos.downloadContent(video.id);
    assert.equal(res.headers.get('content-type'), 'video/mp4');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), mp4);

    const thumb = await client.videos.downloadContent(video.id, { variant: 'thumbnail' });
    assert.equal(thumb.headers.get('content-type'), 'image/webp');
    assert.equal(Buffer.from(await thumb.arrayBuffer()).toString(), 'RIFF fake webp');

    await assert.rejects(client.videos.downloadContent(video.id, { variant: 'spritesheet' }), OpenAI.NotFoundError);
  });

  test('a completed video lists its chunks with signed URLs, duration and usage', async () => {
    const video = await client.videos.create({ prompt: 'chunks', seconds: secs('2') });
    await completeVideo(video.id, { chunks: 3, video: Buffer.from('mp4') });
    const got = (await client.videos.retrieve(video.id)) as OurVideo;
    assert.equal(got.status, 'completed');
    assert.equal(got.progress, 100);
    assert.equal(got.queue_position, null);
    assert.ok(got.completed_at !== null && got.expires_at !== null && got.expires_at > got.completed_at);
    assert.deepEqual(got.chunks.map((c) => [c.index, c.duration]), [[0, 9 / 16], [1, 12 / 16], [2, 12 / 16]]);
    for (const c of got.chunks) assert.match(c.url, new RegExp(`/v1/videos/${video.id}/`));
    assert.deepEqual(got.usage, { gpu_ms: 1234, frames: 33, seconds: 33 / 16 });
  });

  test('remix keeps seed and settings, records the source and needs a completed source', async () => {
    const source = await client.post<OurVideo>('/videos', { body: { prompt: 'original', seed: 7, steps: 5, seconds: '3', size: '160x256' } });
    await assert.rejects(client.videos.remix(source.id, { prompt: 'too early' }), OpenAI.ConflictError);
    await completeVideo(source.id, { video: Buffer.from('mp4') });
    const remix = (await client.videos.remix(source.id, { prompt: 'the same, but green' })) as OurVideo;
    assert.equal(remix.remixed_from_video_id, source.id);
    assert.equal(remix.prompt, 'the same, but green');
    assert.deepEqual([remix.seed, remix.steps, remix.seconds, remix.size, remix.status], [7, 5, '3', '160x256', 'queued']);
    const payload = GenerateJobPayload.parse((await queue.getJob(remix.id))!.data);
    assert.deepEqual(payload.source, { kind: 'remix', video_id: source.id });
  });

  test('extend (videos.extend, multipart video[id]) continues a completed video', async () => {
    const source = await client.videos.create({ prompt: 'a cat walks', seconds: secs('2') });
    await completeVideo(source.id, { chunks: 3, video: Buffer.from('mp4') });
    const ext = (await client.videos.extend({ video: { id: source.id }, prompt: 'the cat sits down', seconds: secs('1') })) as OurVideo;
    assert.equal(ext.extended_from_video_id, source.id);
    assert.equal(ext.remixed_from_video_id, null);
    assert.equal(ext.status, 'queued');
    assert.equal(Number(ext.seconds), 33 / 16 + 21 / 16); // stitched total: source's real length + the new part's (9 + 12 frames)
    const payload = GenerateJobPayload.parse((await queue.getJob(ext.id))!.data);
    assert.deepEqual(payload.source, { kind: 'extension', video_id: source.id });
    assert.equal(payload.seconds, 1);
    await assert.rejects(client.videos.extend({ video: { id: 'video_00000000000000000000000000000000' }, prompt: 'x', seconds: '4' }), OpenAI.NotFoundError);
  });
});

describe('cancel and delete', () => {
  test('cancel of a queued video removes the job and emits video.cancelled; again is ConflictError', async () => {
    const video = await client.videos.create({ prompt: 'cancel me' });
    const cancelled = await client.post<OurVideo>(`/videos/${video.id}/cancel`);
    assert.equal(cancelled.status, 'cancelled');
    assert.equal(cancelled.queue_position, null);
    assert.ok(cancelled.cancel_requested_at !== null);
    assert.equal(await queue.getJob(video.id), undefined);
    assert.deepEqual((await events(video.id)).map((e) => e.type), ['video.queued', 'video.cancelled']);
    await assert.rejects(client.post(`/videos/${video.id}/cancel`), OpenAI.ConflictError);
  });

  test('cancel of a running video signals the worker through the contract', async () => {
    const video = await client.videos.create({ prompt: 'running' });
    (await queue.getJob(video.id))?.remove();
    await stack.app.prisma.video.update({ where: { id: video.id }, data: { status: 'in_progress', startedAt: new Date() } });
    const sub = stack.redis.duplicate();
    const announced = new Promise<string>((resolve) => sub.on('message', (_ch, msg) => resolve(msg)));
    await sub.subscribe(`${stack.config.REDIS_PREFIX}:cancel`);
    const res = await client.post<OurVideo>(`/videos/${video.id}/cancel`);
    assert.equal(res.status, 'in_progress');
    assert.ok(res.cancel_requested_at !== null);
    assert.equal(await announced, video.id);
    assert.ok(await stack.redis.get(`${stack.config.REDIS_PREFIX}:video:${video.id}:cancel`));
    sub.disconnect();
  });

  test('delete of a video being generated is ConflictError until it is cancelled', async () => {
    const video = await client.videos.create({ prompt: 'busy' });
    (await queue.getJob(video.id))?.remove();
    await stack.app.prisma.video.update({ where: { id: video.id }, data: { status: 'in_progress', startedAt: new Date() } });
    await assert.rejects(client.videos.delete(video.id), (err: unknown) => {
      assert.ok(err instanceof OpenAI.ConflictError);
      assert.equal((err.error as { code: string }).code, 'video_in_progress');
      return true;
    });
    await stack.app.prisma.video.update({ where: { id: video.id }, data: { status: 'cancelled' } });
    assert.equal((await client.videos.delete(video.id)).deleted, true);
  });

  test('delete removes the row, the queued job and the stored objects', async () => {
    const queued = await client.videos.create({ prompt: 'delete me while queued' });
    const del = await client.videos.delete(queued.id);
    assert.deepEqual(del, { id: queued.id, object: 'video.deleted', deleted: true });
    assert.equal(await queue.getJob(queued.id), undefined);
    await assert.rejects(client.videos.retrieve(queued.id), OpenAI.NotFoundError);

    const done = await client.videos.create({ prompt: 'delete me when done' });
    await completeVideo(done.id, { video: Buffer.from('mp4'), chunks: 2 });
    await client.videos.delete(done.id);
    assert.deepEqual(await stack.app.storage.list(storageKeys.prefix(done.id as VideoId)), []);
    assert.equal(await stack.app.prisma.chunk.count({ where: { videoId: done.id } }), 0);
    await assert.rejects(client.videos.delete(done.id), OpenAI.NotFoundError);
  });
});
