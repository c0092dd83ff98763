import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SegmentEncoder,
  decodeRgbFrames,
  finalizeMedia,
  firstDecodeTime,
  listBoxes,
  probeVideo,
  sameInit,
  type RgbFrames,
} from '../src/media/index.js';

const W = 128;
const H = 96;
const FPS = 16;
// A first chunk of 5 frames then chunks of 8, like a causal VAE with 4x temporal compression.
const CHUNK_FRAMES = [5, 8, 8, 8];
const TOTAL = CHUNK_FRAMES.reduce((a, b) => a + b, 0);

/** A moving gradient with a square: frame f of the whole video, deterministic. */
function frames(start: number, count: number): RgbFrames {
  const data = new Uint8Array(count * H * W * 3);
  for (let f = 0; f < count; f++) {
    const t = start + f;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const o = ((f * H + y) * W + x) * 3;
        const inSquare = Math.abs(x - (10 + t * 3)) < 10 && Math.abs(y - 48) < 10;
        data[o] = inSquare ? 230 : (x * 2) & 255;
        data[o + 1] = inSquare ? 40 : (y * 2) & 255;
        data[o + 2] = inSquare ? 40 : 128;
      }
    }
  }
  return { width: W, height: H, count, data };
}

function playlist(durations: number[]): string {
  const target = Math.ceil(Math.max(...durations));
  return [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${target}`,
    '#EXT-X-PLAYLIST-TYPE:EVENT',
    '#EXT-X-MEDIA-SEQUENCE:0',
    '#EXT-X-MAP:URI="init.mp4"',
    ...durations.flatMap((d, i) => [`#EXTINF:${d.toFixed(6)},`, `${String(i).padStart(5, '0')}.m4s`]),
    '#EXT-X-ENDLIST',
    '',
  ].join('\n');
}

describe('media: chunked fMP4 segments', () => {
  let dir: string;
  const enc = new SegmentEncoder({ width: W, height: H, fps: FPS });
  let init: Uint8Array;
  const segments: Uint8Array[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rehyat-media-'));
    let start = 0;
    for (const [i, n] of CHUNK_FRAMES.entries()) {
      const out = await enc.encode(frames(start, n), start, i);
      if (i === 0) init = out.init;
      else assert.ok(sameInit(init, out.init), `chunk ${i} init differs from chunk 0`);
      assert.equal(out.frames, n);
      segments.push(out.segment);
      start += n;
    }
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('segments are moof/mdat only with tfdt at the chunk start', () => {
    let start = 0;
    for (const [i, seg] of segments.entries()) {
      const types = listBoxes(seg).map((b) => b.type);
      assert.deepEqual([...new Set(types)].sort(), ['mdat', 'moof']);
      assert.equal(firstDecodeTime(seg), start * enc.ticksPerFrame);
      start += CHUNK_FRAMES[i]!;
    }
  });

  it('encoding is deterministic (a retried chunk overwrites with the same bytes)', async () => {
    const again = await enc.encode(frames(5, 8), 5, 1);
    assert.ok(Buffer.from(again.segment).equals(Buffer.from(segments[1]!)));
  });

  it('init + segments play as one stream: frames, fps, size, duration', async () => {
    const file = join(dir, 'stream.mp4');
    await writeFile(file, Buffer.concat([init, ...segments]));
    const p = await probeVideo(file);
    assert.equal(p.codec, 'h264');
    assert.equal(p.width, W);
    assert.equal(p.height, H);
    assert.equal(p.frames, TOTAL);
    assert.equal(p.fps, FPS);
    assert.ok(Math.abs(p.duration - TOTAL / FPS) < 1e-3, `duration ${p.duration}`);
  });

  it('an HLS playlist of init + the first k segments plays the first k chunks', async () => {
    await writeFile(join(dir, 'init.mp4'), init);
    for (const [i, s] of segments.entries()) await writeFile(join(dir, `${String(i).padStart(5, '0')}.m4s`), s);
    for (const k of [1, 2, CHUNK_FRAMES.length]) {
      const m3u8 = join(dir, `p${k}.m3u8`);
      await writeFile(m3u8, playlist(CHUNK_FRAMES.slice(0, k).map((n) => n / FPS)));
      const p = await probeVideo(m3u8);
      const want = CHUNK_FRAMES.slice(0, k).reduce((a, b) => a + b, 0);
      assert.equal(p.frames, want, `playlist of ${k} segments`);
      assert.equal(p.width, W);
    }
  });

  it('decoded frames are close to the input (no chunk misplaced)', async () => {
    const file = join(dir, 'stream.mp4');
    const rgb = await decodeRgbFrames(file);
    const want = frames(0, TOTAL).data;
    assert.equal(rgb.length, want.length);
    const per = W * H * 3;
    for (let f = 0; f < TOTAL; f++) {
      let err = 0;
      for (let i = f * per; i < (f + 1) * per; i++) err += Math.abs(rgb[i]! - want[i]!);
      assert.ok(err / per < 4, `frame ${f} mean abs error ${err / per}`);
    }
  });

  it('finalize: faststart MP4 remux (same frames), WebP thumbnail, JPEG spritesheet', async () => {
    const out = await finalizeMedia(init, segments, TOTAL);
    const top = listBoxes(out.video).map((b) => b.type);
    assert.ok(top.indexOf('moov') < top.indexOf('mdat'), `moov before mdat: ${top.join(',')}`);
    assert.ok(!top.includes('moof'), 'progressive, not fragmented');
    const file = join(dir, 'video.mp4');
    await writeFile(file, out.video);
    const p = await probeVideo(file);
    assert.deepEqual([p.frames, p.width, p.height, p.fps], [TOTAL, W, H, FPS]);
    assert.ok(Math.abs(p.duration - TOTAL / FPS) < 1e-3);
    assert.ok((await decodeRgbFrames(file)).equals(await decodeRgbFrames(join(dir, 'stream.mp4'))), 'remux is lossless');

    assert.equal(out.thumbnail.subarray(8, 12).toString(), 'WEBP');
    const thumb = join(dir, 't.webp');
    await writeFile(thumb, out.thumbnail);
    const t = await probeVideo(thumb);
    assert.deepEqual([t.width, t.height], [W, H]);

    assert.equal(out.spritesheet[0], 0xff);
    assert.equal(out.spritesheet[1], 0xd8);
    const sp = join(dir, 's.jpg');
    await writeFile(sp, out.spritesheet);
    const s = await probeVideo(sp);
    assert.equal(s.width, 128 * out.sprite.columns);
    assert.equal(s.height, 96 * out.sprite.rows);
  });

  it('rejects frames of the wrong size or length', async () => {
    await assert.rejects(enc.encode({ width: 64, height: 64, count: 1, data: new Uint8Array(64 * 64 * 3) }, 0, 0), RangeError);
    await assert.rejects(enc.encode({ width: W, height: H, count: 2, data: new Uint8Array(10) }, 0, 0), RangeError);
    assert.throws(() => new SegmentEncoder({ width: 127, height: 96, fps: 16 }), RangeError);
  });
});
