/**
 * End to end: the real API (apps/api buildApp) and the real worker (startWorker with the
 * pipeline's ModelRegistry) over real Postgres, Redis, S3 (embedded s3rver) and ffmpeg, with the
 * tiny model exported by the real exporter (random weights), driven by the official `openai` client.
 * `REHYAT_E2E_MODELS_DIR=<repo>/models` runs it with the released model instead (slower on CPU).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { ApiKeyService, buildApp, loadConfig as loadApiConfig } from '@rehyat/api';
import { ModelRegistry } from '@rehyat/pipeline';
import { openSse } from '../../api/test/sse-client.js';
import { decodeRgbFrames, probeVideo } from '../src/media/index.js';
import type { RunningWorker } from '../src/worker.js';
import { startHarness, type Harness } from './support/harness.js';
import { tinyModelsDir } from '../../../packages/pipeline/test/support/tiny-model.js';

type OurVideo = OpenAI.Videos.Video & { chunks: { index: number; url: string; duration: number }[]; playlist_url: string; chunks_total: number };
const secs = (s: string) => s as OpenAI.Videos.VideoSeconds;
const size = (s: string) => s as OpenAI.Videos.VideoSize;

describe('end to end: openai client -> API -> queue -> worker -> pipeline -> S3/SSE/HLS', () => {
  let h: Harness;
  let app: FastifyInstance;
  let worker: RunningWorker;
  let registry: ModelRegistry;
  let client: OpenAI;
  let secret: string;
  let origin: string;
  let dir: string;
  // The model under test: its public name, size and frame geometry from its manifest.
  const m = { name: '', size: '', fps: 0, chunkFrames: 0 };
  const framesFor = (seconds: number) => Math.ceil((seconds * m.fps) / m.chunkFrames) * m.chunkFrames;

  before(async () => {
    const models = process.env.REHYAT_E2E_MODELS_DIR ?? (await tinyModelsDir());
    const version = (await readdir(models, { withFileTypes: true })).find((d) => d.isDirectory())!.name;
    const manifest = JSON.parse(await readFile(join(models, version, 'manifest.json'), 'utf8'));
    Object.assign(m, { name: manifest.models.student, size: manifest.limits.sizes[0], fps: manifest.video.fps, chunkFrames: manifest.video.chunk_frames });
    h = await startHarness({ MODELS_DIR: models });
    dir = await mkdtemp(join(tmpdir(), 'rehyat-e2e-'));
    const config = loadApiConfig({
      DATABASE_URL: h.env.DATABASE_URL,
      REDIS_URL: h.env.REDIS_URL,
      REDIS_PREFIX: h.env.REDIS_PREFIX,
      S3_ENDPOINT: h.env.S3_ENDPOINT,
      S3_BUCKET: h.env.S3_BUCKET,
      S3_ACCESS_KEY_ID: h.env.S3_ACCESS_KEY_ID,
      S3_SECRET_ACCESS_KEY: h.env.S3_SECRET_ACCESS_KEY,
      MODELS_DIR: models,
      LOG_LEVEL: 'silent',
    });
    app = await buildApp({ config });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    origin = `http://127.0.0.1:${port}`;
    const key = await new ApiKeyService(app.prisma).create({ name: 'e2e' });
    secret = key.secret;
    client = new OpenAI({ apiKey: secret, baseURL: `${origin}/v1`, maxRetries: 0 });
    registry = new ModelRegistry({ modelsDir: models });
    worker = await h.start(registry);
  });
  after(async () => {
    await worker?.shutdown();
    await registry?.close();
    await app?.close();
    await h?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const auth = () => ({ authorization: `Bearer ${secret}` });
  /** Signed URLs carry PUBLIC_BASE_URL's origin; the test's API listens on a free port. */
  const local = (u: string) => {
    const parsed = new URL(u, origin);
    return new URL(parsed.pathname + parsed.search, origin);
  };

  it('create, follow SSE (resuming with Last-Event-ID), watch the HLS playlist grow, download and ffprobe', async () => {
    const created = (await client.videos.create({ prompt: 'a red circle bounces on a blue background', model: m.name, seconds: secs('4'), size: size(m.size) })) as OurVideo;
    assert.equal(created.status, 'queued');

    // SSE: read a few events, drop the connection, resume after the last id seen.
    const url = `${origin}/v1/videos/${created.id}/events`;
    const first = await openSse(url, auth());
    const seen: { id: string; event: string }[] = [];
    const playlistSizes: number[] = [];
    while (seen.length < 4) {
      const m = await first.nextEvent();
      assert.ok(m, 'stream ended early');
      seen.push({ id: m.id!, event: m.event! });
    }
    first.close();
    const resumed = await openSse(url, { ...auth(), 'last-event-id': seen.at(-1)!.id });
    for (;;) {
      const m = await resumed.nextEvent();
      if (!m) break;
      seen.push({ id: m.id!, event: m.event! });
      if (m.event === 'video.chunk') {
        const v = (await client.videos.retrieve(created.id)) as OurVideo;
        const pl = await (await fetch(local(v.playlist_url))).text();
        playlistSizes.push((pl.match(/\.m4s/g) ?? []).length);
      }
      if (m.event === 'video.completed' || m.event === 'video.failed') break;
    }
    resumed.close();
    assert.equal(seen.at(-1)!.event, 'video.completed');
    assert.equal(new Set(seen.map((s) => s.id)).size, seen.length, 'no event twice across the resume');
    const stream = await h.events(created.id as never);
    assert.deepEqual(seen.map((s) => s.id), stream.map((e) => e.id).slice(stream.length - seen.length), 'no event lost');
    assert.ok(playlistSizes.length >= 2 && playlistSizes.at(-1)! > playlistSizes[0]!, `playlist grew: ${playlistSizes.join(',')}`);

    const done = (await client.videos.retrieve(created.id)) as OurVideo;
    assert.equal(done.status, 'completed');
    assert.equal(done.chunks.length, framesFor(4) / m.chunkFrames);
    const pl = await (await fetch(local(done.playlist_url))).text();
    assert.match(pl, /#EXT-X-ENDLIST/);
    // The playlist itself plays in ffmpeg over HTTP: every frame.
    const viaHls = await probeVideo(local(done.playlist_url).toString());
    assert.equal(viaHls.frames, framesFor(4));

    const content = await client.videos.downloadContent(created.id);
    const file = join(dir, 'a.mp4');
    await writeFile(file, Buffer.from(await content.arrayBuffer()));
    const p = await probeVideo(file);
    const [w, hgt] = m.size.split('x').map(Number);
    assert.deepEqual([p.codec, p.frames, p.width, p.height, p.fps], ['h264', framesFor(4), w, hgt, m.fps]);
    assert.ok(Math.abs(p.duration - framesFor(4) / m.fps) < 1e-3);
    const thumb = await client.videos.downloadContent(created.id, { variant: 'thumbnail' });
    assert.equal(Buffer.from(await thumb.arrayBuffer()).subarray(8, 12).toString(), 'WEBP');
  });

  it('extend continues the video from its final state; cancel stops a running video', async () => {
    const src = (await client.videos.create({ prompt: 'a green square moves right', model: m.name, seconds: secs('1'), size: size(m.size) })) as OurVideo;
    await waitStatus(src.id, ['completed']);
    const ext = (await client.videos.extend({ video: { id: src.id } as never, prompt: 'then it moves left', seconds: secs('1') } as never)) as OurVideo;
    const extDone = await waitStatus(ext.id, ['completed', 'failed']);
    assert.equal(extDone.status, 'completed', JSON.stringify((extDone as { error?: unknown }).error));
    const a = join(dir, 'src.mp4');
    const b = join(dir, 'ext.mp4');
    await writeFile(a, Buffer.from(await (await client.videos.downloadContent(src.id)).arrayBuffer()));
    await writeFile(b, Buffer.from(await (await client.videos.downloadContent(ext.id)).arrayBuffer()));
    const fa = await decodeRgbFrames(a);
    const fb = await decodeRgbFrames(b);
    assert.equal(fb.length, 2 * fa.length);
    assert.ok(fb.subarray(0, fa.length).equals(fa), 'the extension starts with the source, frame for frame');

    const long = (await client.videos.create({ prompt: 'a yellow star orbits', model: m.name, seconds: secs('30'), size: size(m.size) })) as OurVideo;
    await waitChunks(long.id, 1);
    const res = await fetch(`${origin}/v1/videos/${long.id}/cancel`, { method: 'POST', headers: auth() });
    assert.ok(res.ok, `cancel: ${res.status}`);
    const cancelled = (await waitStatus(long.id, ['cancelled'])) as OurVideo;
    assert.ok(cancelled.chunks.length >= 1 && cancelled.chunks.length < framesFor(30) / m.chunkFrames, `${cancelled.chunks.length} chunks kept`);
  });

  async function waitStatus(id: string, statuses: string[], timeoutMs = 120_000): Promise<OurVideo> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = (await client.videos.retrieve(id)) as OurVideo;
      if (statuses.includes(v.status)) return v;
      if (Date.now() > until) throw new Error(`video ${id} is ${v.status}, waited for ${statuses.join('|')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  async function waitChunks(id: string, n: number): Promise<void> {
    await h.waitFor(id as never, (ev) => ev.filter((e) => e.type === 'video.chunk').length >= n, 120_000);
  }
});
