import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  EMBEDDED_S3_CREDENTIALS,
  ObjectNotFoundError,
  ObjectStorage,
  RangeNotSatisfiableError,
  StorageUnavailableError,
  resolveRange,
  startEmbeddedS3,
  type EmbeddedS3,
} from '../src/index.js';

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

describe('ObjectStorage against the embedded S3 server', () => {
  let dir: string;
  let server: EmbeddedS3;
  let storage: ObjectStorage;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rehyat-storage-test-'));
    server = await startEmbeddedS3({ port: 0, directory: dir });
    storage = new ObjectStorage({
      endpoint: server.endpoint,
      bucket: `test-${randomBytes(4).toString('hex')}`,
      ...EMBEDDED_S3_CREDENTIALS,
      multipartPartSizeBytes: 5 * 1024 * 1024,
    });
    await storage.ensureBucket();
  });

  after(async () => {
    storage.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('ensureBucket is idempotent and ping succeeds', async () => {
    await storage.ensureBucket();
    await storage.ping();
  });

  test('put a buffer, get it back with its content type and length', async () => {
    await storage.put('videos/a/init.mp4', Buffer.from('init-bytes'), { contentType: 'video/mp4' });
    const got = await storage.get('videos/a/init.mp4');
    assert.equal(got.contentType, 'video/mp4');
    assert.equal(got.contentLength, 10);
    assert.equal((await readAll(got.body)).toString(), 'init-bytes');
    const info = await storage.head('videos/a/init.mp4');
    assert.equal(info.contentLength, 10);
    assert.equal(await storage.exists('videos/a/init.mp4'), true);
  });

  test('ranged reads return exactly the requested bytes', async () => {
    const data = randomBytes(1000);
    await storage.put('videos/a/segments/00000.m4s', data, { contentType: 'video/iso.segment' });
    const got = await storage.get('videos/a/segments/00000.m4s', { range: { start: 100, end: 199 } });
    assert.equal(got.contentLength, 100);
    assert.deepEqual(got.range, { start: 100, end: 199, size: 1000 });
    assert.deepEqual(await readAll(got.body), data.subarray(100, 200));
    await assert.rejects(
      storage.get('videos/a/segments/00000.m4s', { range: { start: 5000, end: 6000 } }),
      (err: unknown) => err instanceof RangeNotSatisfiableError && err.size === 1000,
    );
  });

  test('a stream of unknown length above the part size goes up as a multipart upload', async () => {
    const data = randomBytes(12 * 1024 * 1024 + 17);
    const pieces = [data.subarray(0, 3_000_000), data.subarray(3_000_000, 9_000_000), data.subarray(9_000_000)];
    const { etag } = await storage.put('videos/b/video.mp4', Readable.from(pieces), { contentType: 'video/mp4' });
    assert.ok(etag);
    assert.equal((await storage.head('videos/b/video.mp4')).contentLength, data.length);
    assert.deepEqual(await storage.getBuffer('videos/b/video.mp4'), data);
  });

  test('a small stream with a known length goes up in one PUT', async () => {
    await storage.put('videos/b/thumbnail.webp', Readable.from([Buffer.from('abc'), Buffer.from('def')]), {
      contentType: 'image/webp',
      contentLength: 6,
    });
    assert.equal((await storage.getBuffer('videos/b/thumbnail.webp')).toString(), 'abcdef');
  });

  test('missing objects raise ObjectNotFoundError from get, head; exists is false', async () => {
    await assert.rejects(storage.get('videos/none/x'), ObjectNotFoundError);
    await assert.rejects(storage.head('videos/none/x'), ObjectNotFoundError);
    assert.equal(await storage.exists('videos/none/x'), false);
    await storage.delete('videos/none/x');
  });

  test('list and deletePrefix remove exactly the prefix', async () => {
    for (let i = 0; i < 5; i++) await storage.put(`videos/c/segments/${i}.m4s`, Buffer.from([i]), { contentType: 'video/iso.segment' });
    await storage.put('videos/cc/keep', Buffer.from('k'), { contentType: 'text/plain' });
    assert.equal((await storage.list('videos/c/')).length, 5);
    assert.equal(await storage.deletePrefix('videos/c/'), 5);
    assert.deepEqual(await storage.list('videos/c/'), []);
    assert.equal(await storage.exists('videos/cc/keep'), true);
    await assert.rejects(storage.deletePrefix(''), RangeError);
  });

  test('delete removes one object', async () => {
    await storage.put('videos/d/x', Buffer.from('x'), { contentType: 'text/plain' });
    await storage.delete('videos/d/x');
    assert.equal(await storage.exists('videos/d/x'), false);
  });

  /**
   * Sends a PUT of `size` bytes for `key` without its last byte, waits until the server has written
   * at least `storedAtLeast` bytes of it to disk, then destroys the connection (an uploader killed
   * mid-body).
   */
  async function cutOffPut(key: string, size: number, storedAtLeast: number): Promise<void> {
    const url = `${server.endpoint}/${storage.bucket}/${key}`;
    const req = request(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': size } });
    req.on('error', () => {});
    req.write(randomBytes(size - 1));
    // The files the server writes for the key live next to its `<name>._S3rver_object` file.
    const folder = dirname(join(dir, storage.bucket, key));
    const name = key.split('/').at(-1)!;
    const until = Date.now() + 30_000;
    for (;;) {
      const files = await readdir(folder).catch(() => [] as string[]);
      let stored = 0;
      for (const f of files.filter((f) => f.startsWith(`${name}._S3rver_object`) && !f.endsWith('.md5'))) {
        stored = Math.max(stored, await stat(join(folder, f)).then((s) => s.size, () => 0));
      }
      if (stored >= storedAtLeast) break;
      if (Date.now() > until) throw new Error(`the server stored only ${stored} bytes of the upload`);
      await new Promise((r) => setTimeout(r, 10));
    }
    req.destroy();
  }

  test('a PUT cut off mid-body leaves the previous object, or nothing, never a truncated one', async () => {
    const previous = randomBytes(1000);
    await storage.put('videos/e/checkpoints/00001.bin', previous, { contentType: 'application/octet-stream' });
    await cutOffPut('videos/e/checkpoints/00001.bin', 8 * 1024 * 1024, 1024 * 1024);
    assert.deepEqual(await storage.getBuffer('videos/e/checkpoints/00001.bin'), previous, 'the previous object is intact');

    await cutOffPut('videos/e/checkpoints/00002.bin', 8 * 1024 * 1024, 1024 * 1024);
    await assert.rejects(storage.getBuffer('videos/e/checkpoints/00002.bin'), ObjectNotFoundError);
    assert.deepEqual(await storage.list('videos/e/'), ['videos/e/checkpoints/00001.bin']);

    // The server drops what it had received (no partial files left next to the objects).
    const folder = join(dir, storage.bucket, 'videos/e/checkpoints');
    const until = Date.now() + 30_000;
    while ((await readdir(folder)).some((f) => !/\._S3rver_(object|object\.md5|metadata\.json)$/.test(f))) {
      if (Date.now() > until) throw new Error(`partial uploads left behind: ${(await readdir(folder)).join(', ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // And a complete PUT after that works as ever.
    const next = randomBytes(3 * 1024 * 1024);
    await storage.put('videos/e/checkpoints/00002.bin', next, { contentType: 'application/octet-stream' });
    assert.deepEqual(await storage.getBuffer('videos/e/checkpoints/00002.bin'), next);
  });

  test('a missing bucket is StorageUnavailableError, not a missing object', async () => {
    const other = new ObjectStorage({ endpoint: server.endpoint, bucket: 'no-such-bucket-here', ...EMBEDDED_S3_CREDENTIALS });
    try {
      await assert.rejects(other.ping(), StorageUnavailableError);
      await assert.rejects(other.put('k', Buffer.from('x'), { contentType: 'text/plain' }), StorageUnavailableError);
    } finally {
      other.close();
    }
  });
});

test('an unreachable server is StorageUnavailableError', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rehyat-storage-test-'));
  const server = await startEmbeddedS3({ port: 0, directory: dir });
  const endpoint = server.endpoint;
  await server.close();
  const storage = new ObjectStorage({ endpoint, bucket: 'gone-bucket', ...EMBEDDED_S3_CREDENTIALS, maxAttempts: 1 });
  try {
    await assert.rejects(storage.ping(), StorageUnavailableError);
    await assert.rejects(storage.get('x'), StorageUnavailableError);
  } finally {
    storage.close();
    await rm(dir, { recursive: true, force: true });
  }
});

describe('resolveRange', () => {
  test('single ranges', () => {
    assert.deepEqual(resolveRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(resolveRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(resolveRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(resolveRange('bytes=-500', 100), { start: 0, end: 99 });
    assert.deepEqual(resolveRange('bytes=50-5000', 100), { start: 50, end: 99 });
  });
  test('absent, malformed or multi-range headers mean the whole object', () => {
    assert.equal(resolveRange(undefined, 100), null);
    assert.equal(resolveRange('items=0-1', 100), null);
    assert.equal(resolveRange('bytes=0-1,5-6', 100), null);
    assert.equal(resolveRange('bytes=9-3', 100), null);
  });
  test('ranges outside the object are unsatisfiable', () => {
    assert.equal(resolveRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(resolveRange('bytes=-0', 100), 'unsatisfiable');
    assert.equal(resolveRange('bytes=0-', 0), 'unsatisfiable');
  });
});
