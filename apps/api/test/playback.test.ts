import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { newVideoId, storageKeys, type VideoId } from '@rehyat/contracts';
import { EXPIRY_GRANULARITY_S, checkSignature, signatureQuery, signedPath, signingOptions } from '../src/signed-url.js';
import { renderPlaylist } from '../src/routes/playlist.js';
import { errorOf, startStack, type Stack } from './helpers.js';

let stack: Stack;
let origin: string;
let owner: { keyId: string; secret: string };
let other: { keyId: string; secret: string };

before(async () => {
  stack = await startStack();
  origin = stack.baseURL.replace(/\/v1$/, '');
  owner = await stack.client('playback-owner');
  other = await stack.client('playback-other');
});
after(async () => {
  await stack.close();
});

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

async function insertVideo(ownerId = owner.keyId) {
  const id = newVideoId() as VideoId;
  await stack.app.prisma.video.create({
    data: {
      id,
      ownerId,
      status: 'in_progress',
      prompt: 'a blue square slides',
      model: 'rehyat-test',
      seconds: 6,
      size: '64x64',
      width: 64,
      height: 64,
      seed: 7n,
      steps: 4,
      guidance: 1,
      chunksTotal: 3,
    },
  });
  return id;
}

/** Stands in for the worker: uploads a chunk's segment where the contract says and adds its row. */
async function addChunk(id: VideoId, index: number, bytes: Buffer) {
  const key = storageKeys.segment(id, index);
  await stack.app.storage.put(key, bytes, { contentType: 'video/iso.segment' });
  await stack.app.prisma.chunk.create({
    data: { videoId: id, index, storageKey: key, frames: 32, durationSeconds: 2, bytes: bytes.length },
  });
}

async function get(path: string, headers: Record<string, string> = {}) {
  return fetch(path.startsWith('http') ? path : `${origin}${path}`, { headers });
}

/** Resolves a playlist URI (relative, signed) against the playlist's URL. */
const resolveUri = (playlistUrl: string, uri: string) => new URL(uri, playlistUrl).toString();

describe('HLS playback', () => {
  test('playlist before completion: init map, one EXTINF per chunk in order, no ENDLIST; after: ENDLIST', async () => {
    const id = await insertVideo();
    const segs = [randomBytes(3000), randomBytes(2000)];
    await stack.app.storage.put(storageKeys.init(id), Buffer.from('ftyp-moov'), { contentType: 'video/mp4' });
    await addChunk(id, 1, segs[1]!);
    await addChunk(id, 0, segs[0]!);

    const res = await get(`/v1/videos/${id}/playlist.m3u8`, bearer(owner.secret));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.apple.mpegurl');
    const text = await res.text();
    const lines = text.trim().split('\n');
    assert.equal(lines[0], '#EXTM3U');
    assert.ok(lines.includes('#EXT-X-PLAYLIST-TYPE:EVENT'));
    assert.ok(lines.includes('#EXT-X-TARGETDURATION:2'));
    assert.match(text, /#EXT-X-MAP:URI="init\.mp4\?expires=\d+&sig=[\w-]+"/);
    const uris = lines.filter((l) => l.startsWith('segments/'));
    assert.equal(uris.length, 2);
    assert.match(uris[0]!, /^segments\/0\.m4s\?expires=\d+&sig=/);
    assert.match(uris[1]!, /^segments\/1\.m4s\?/);
    assert.equal(lines.filter((l) => l === '#EXTINF:2.000,').length, 2);
    assert.ok(!text.includes('#EXT-X-ENDLIST'));

    await stack.app.prisma.video.update({ where: { id }, data: { status: 'completed', completedAt: new Date() } });
    const done = await (await get(`/v1/videos/${id}/playlist.m3u8`, bearer(owner.secret))).text();
    assert.equal(done.trim().split('\n').at(-1), '#EXT-X-ENDLIST');
  });

  test('a player with only the signed playlist_url fetches the playlist, init and every segment', async () => {
    const id = await insertVideo();
    const segs = [randomBytes(5000), randomBytes(4000), randomBytes(100)];
    await stack.app.storage.put(storageKeys.init(id), Buffer.from('init-segment'), { contentType: 'video/mp4' });
    for (const [i, s] of segs.entries()) await addChunk(id, i, s);

    const video = (await (await get(`/v1/videos/${id}`, bearer(owner.secret))).json()) as {
      playlist_url: string;
      chunks: { index: number; url: string }[];
    };
    assert.ok(video.playlist_url.startsWith(`${stack.config.PUBLIC_BASE_URL}/v1/videos/${id}/playlist.m3u8?expires=`));
    // The video object's URLs are absolute against PUBLIC_BASE_URL; the test server listens elsewhere.
    const local = (u: string) => u.replace(stack.config.PUBLIC_BASE_URL, origin);
    const playlistUrl = local(video.playlist_url);
    const playlist = await get(playlistUrl);
    assert.equal(playlist.status, 200);
    const text = await playlist.text();
    const init = await get(resolveUri(playlistUrl, /URI="([^"]+)"/.exec(text)![1]!));
    assert.equal(init.status, 200);
    assert.equal(init.headers.get('content-type'), 'video/mp4');
    assert.equal(await init.text(), 'init-segment');
    const uris = text.split('\n').filter((l) => l.startsWith('segments/'));
    assert.equal(uris.length, 3);
    for (const [i, uri] of uris.entries()) {
      const seg = await get(resolveUri(playlistUrl, uri));
      assert.equal(seg.status, 200);
      assert.equal(seg.headers.get('content-type'), 'video/iso.segment');
      assert.equal(Number(seg.headers.get('content-length')), segs[i]!.length);
      assert.deepEqual(Buffer.from(await seg.arrayBuffer()), segs[i]);
    }
    // chunks[].url works on its own too.
    const viaChunkUrl = await get(local(video.chunks[1]!.url));
    assert.deepEqual(Buffer.from(await viaChunkUrl.arrayBuffer()), segs[1]);
  });

  test('segments honour Range (206 with Content-Range, 416 outside)', async () => {
    const id = await insertVideo();
    const seg = randomBytes(1000);
    await addChunk(id, 0, seg);
    const part = await get(`/v1/videos/${id}/segments/0.m4s`, { ...bearer(owner.secret), range: 'bytes=100-199' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 100-199/1000');
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), seg.subarray(100, 200));
    const tail = await get(`/v1/videos/${id}/segments/0.m4s`, { ...bearer(owner.secret), range: 'bytes=-10' });
    assert.equal(tail.status, 206);
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), seg.subarray(990));
    const outside = await get(`/v1/videos/${id}/segments/0.m4s`, { ...bearer(owner.secret), range: 'bytes=5000-' });
    assert.equal(outside.status, 416);
    assert.equal((await errorOf(outside)).code, 'range_not_satisfiable');
  });

  test('bad, forged, other-video and expired signatures are 403 in OpenAI\'s error shape', async () => {
    const id = await insertVideo();
    const otherId = await insertVideo();
    await addChunk(id, 0, Buffer.from('x'));
    const signing = signingOptions(stack.config);
    const good = signedPath(signing, `/v1/videos/${id}/segments/0.m4s`);
    assert.equal((await get(good)).status, 200);

    const forged = await get(good.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`)); // always a different signature
    assert.equal(forged.status, 403);
    assert.deepEqual(await forged.json(), {
      error: { message: 'The URL signature does not match this video.', type: 'permission_error', param: 'sig', code: 'invalid_signature' },
    });

    const borrowed = await get(`/v1/videos/${otherId}/playlist.m3u8?${new URL(good, origin).searchParams.toString()}`);
    assert.equal(borrowed.status, 403);
    assert.equal((await errorOf(borrowed)).code, 'invalid_signature');

    const malformed = await get(`/v1/videos/${id}/playlist.m3u8?sig=abc`);
    assert.equal(malformed.status, 403);
    assert.equal((await errorOf(malformed)).code, 'invalid_signature');

    const past = { ...signing, nowS: () => Date.now() / 1000 - 10 * 24 * 3600 };
    const expired = await get(`/v1/videos/${id}/playlist.m3u8?${signatureQuery(past, id)}`);
    assert.equal(expired.status, 403);
    const body = await errorOf(expired);
    assert.equal(body.code, 'signature_expired');
    assert.equal(body.type, 'permission_error');
    assert.equal(body.param, 'expires');
  });

  test('without a signature: Bearer of the owner only (401 without, 404 for another key)', async () => {
    const id = await insertVideo();
    const none = await get(`/v1/videos/${id}/playlist.m3u8`);
    assert.equal(none.status, 401);
    assert.equal((await errorOf(none)).type, 'authentication_error');
    const otherKey = await get(`/v1/videos/${id}/playlist.m3u8`, bearer(other.secret));
    assert.equal(otherKey.status, 404);
    assert.equal((await errorOf(otherKey)).code, 'video_not_found');
  });

  test('missing init or segment is 404 content_not_found; bad index is 400', async () => {
    const id = await insertVideo();
    const init = await get(`/v1/videos/${id}/init.mp4`, bearer(owner.secret));
    assert.equal(init.status, 404);
    assert.equal((await errorOf(init)).code, 'content_not_found');
    const seg = await get(`/v1/videos/${id}/segments/4.m4s`, bearer(owner.secret));
    assert.equal(seg.status, 404);
    assert.equal((await errorOf(seg)).code, 'content_not_found');
    const bad = await get(`/v1/videos/${id}/segments/abc.m4s`, bearer(owner.secret));
    assert.equal(bad.status, 400);
    assert.equal((await errorOf(bad)).param, 'index');
  });
});

describe('signed URLs and playlist rendering (unit)', () => {
  const signing = { secret: 's'.repeat(32), ttlS: 600, nowS: () => 1_000_000 };
  test('expiry is at least ttl ahead and rounded, so URLs are stable; checks detect tampering and expiry', () => {
    const id = newVideoId();
    const path = signedPath(signing, `/v1/videos/${id}/playlist.m3u8`);
    const q = new URL(path, 'http://x').searchParams;
    const expires = Number(q.get('expires'));
    assert.ok(expires >= 1_000_600 && expires % EXPIRY_GRANULARITY_S === 0);
    assert.equal(signedPath({ ...signing, nowS: () => 1_000_001 }, `/v1/videos/${id}/playlist.m3u8`), path);
    const query = { expires: q.get('expires')!, sig: q.get('sig')! };
    assert.equal(checkSignature(signing, id, query), 'valid');
    assert.equal(checkSignature(signing, newVideoId(), query), 'invalid');
    assert.equal(checkSignature({ ...signing, secret: 't'.repeat(32) }, id, query), 'invalid');
    assert.equal(checkSignature({ ...signing, nowS: () => expires + 1 }, id, query), 'expired');
    assert.equal(checkSignature(signing, id, { expires: String(expires + 300), sig: query.sig }), 'invalid');
    assert.equal(checkSignature(signing, id, {}), 'absent');
    assert.equal(checkSignature(signing, id, { sig: query.sig }), 'malformed');
    assert.throws(() => signedPath(signing, '/v1/videos'), RangeError);
  });

  test('a chunk after a gap is held back; target duration covers the planned chunk length', () => {
    const text = renderPlaylist({
      chunks: [
        { index: 0, durationSeconds: 2 },
        { index: 2, durationSeconds: 2 },
      ],
      terminal: false,
      plannedChunkSeconds: 2.5,
      query: 'expires=1&sig=x',
    });
    assert.ok(text.includes('#EXT-X-TARGETDURATION:3'));
    assert.ok(text.includes('segments/0.m4s?expires=1&sig=x'));
    assert.ok(!text.includes('segments/2.m4s'));
    assert.ok(!text.includes('#EXT-X-ENDLIST'));
  });
});
