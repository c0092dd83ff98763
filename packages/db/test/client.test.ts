import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHash, randomBytes } from 'node:crypto';
import { ApiKeyRole, createPrismaClient, Prisma, VideoSourceKind, VideoStatus, type PrismaClient } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing/index.js';

function newKey() {
  const secret = `sk-rehyat-${randomBytes(24).toString('hex')}`;
  return {
    id: `key_${randomBytes(12).toString('hex')}`,
    secret,
    prefix: secret.slice(0, 12),
    hash: createHash('sha256').update(secret).digest('hex'),
  };
}

const videoId = () => `video_${randomBytes(16).toString('hex')}`;

describe('@rehyat/db client', () => {
  let db: TestDatabase;
  let prisma: PrismaClient;

  before(async () => {
    db = await createTestDatabase();
    prisma = createPrismaClient({ databaseUrl: db.url });
  });
  after(async () => {
    await prisma?.$disconnect();
    await db?.drop();
  });

  it('round-trips an ApiKey, finds it by hash, and enforces a unique hash', async () => {
    const key = newKey();
    const created = await prisma.apiKey.create({
      data: { id: key.id, name: 'ci', prefix: key.prefix, hash: key.hash, role: ApiKeyRole.admin, rateLimitRpm: 120, maxActiveVideos: 3 },
    });
    assert.equal(created.role, 'admin');
    assert.ok(created.createdAt instanceof Date);
    assert.equal(created.lastUsedAt, null);
    const found = await prisma.apiKey.findUnique({ where: { hash: key.hash } });
    assert.deepEqual(found, created);
    const revokedAt = new Date('2026-01-02T03:04:05.678Z');
    const revoked = await prisma.apiKey.update({ where: { id: key.id }, data: { revokedAt } });
    assert.equal(revoked.revokedAt?.toISOString(), revokedAt.toISOString());
    await assert.rejects(
      prisma.apiKey.create({ data: { id: `key_${randomBytes(12).toString('hex')}`, name: 'dup', prefix: key.prefix, hash: key.hash } }),
      (error: unknown) => error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002',
    );
  });

  it('round-trips a Video with every column, BigInt seed and usage, and lists by (owner, createdAt, id)', async () => {
    const key = newKey();
    await prisma.apiKey.create({ data: { id: key.id, name: 'videos', prefix: key.prefix, hash: key.hash } });
    const source = await prisma.video.create({
      data: {
        id: videoId(),
        ownerId: key.id,
        prompt: 'a red ball bouncing',
        model: 'rehyat-tiny',
        seconds: 2.5,
        size: '128x128',
        width: 128,
        height: 128,
        seed: 4294967295n,
        steps: 20,
        guidance: 5,
        chunksTotal: 4,
        createdAt: new Date('2026-01-01T00:00:00.000Z'),
      },
    });
    assert.equal(source.status, VideoStatus.queued);
    assert.equal(source.progress, 0);
    assert.equal(source.chunksDone, 0);
    assert.equal(source.gpuMs, 0n);
    assert.equal(source.seed, 4294967295n);
    assert.equal(source.shift, null);

    const completedAt = new Date('2026-01-01T00:01:00.000Z');
    const remix = await prisma.video.create({
      data: {
        id: videoId(),
        ownerId: key.id,
        status: VideoStatus.completed,
        progress: 100,
        prompt: 'the same ball, blue',
        model: 'rehyat-tiny',
        seconds: 2.5,
        size: '128x128',
        width: 128,
        height: 128,
        seed: 0n,
        steps: 20,
        guidance: 4.5,
        shift: 3,
        sourceVideoId: source.id,
        sourceKind: VideoSourceKind.remix,
        chunksTotal: 4,
        chunksDone: 4,
        framesTotal: 40,
        durationSeconds: 2.5,
        gpuMs: 12345678901n,
        workerId: 'worker-1',
        createdAt: new Date('2026-01-01T00:00:01.000Z'),
        startedAt: new Date('2026-01-01T00:00:02.000Z'),
        completedAt,
        expiresAt: new Date('2026-01-02T00:01:00.000Z'),
      },
    });
    const read = await prisma.video.findUniqueOrThrow({ where: { id: remix.id } });
    assert.deepEqual(read, remix);
    assert.equal(read.sourceKind, 'remix');
    assert.equal(read.gpuMs, 12345678901n);
    assert.equal(read.completedAt?.toISOString(), completedAt.toISOString());

    const failed = await prisma.video.update({
      where: { id: source.id },
      data: { status: VideoStatus.failed, errorCode: 'internal_error', errorMessage: 'boom', cancelRequestedAt: new Date() },
    });
    assert.equal(failed.errorCode, 'internal_error');
    assert.ok(failed.updatedAt.getTime() >= source.updatedAt.getTime());

    const page = await prisma.video.findMany({
      where: { ownerId: key.id },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: 1,
    });
    assert.deepEqual(
      page.map((video) => video.id),
      [remix.id],
    );
  });

  it('rejects a seed outside 0..2^32-1 and a progress outside 0..100 in the database', async () => {
    const key = newKey();
    await prisma.apiKey.create({ data: { id: key.id, name: 'checks', prefix: key.prefix, hash: key.hash } });
    const base = {
      ownerId: key.id,
      prompt: 'p',
      model: 'm',
      seconds: 1,
      size: '128x128',
      width: 128,
      height: 128,
      steps: 1,
      guidance: 1,
      chunksTotal: 1,
    };
    await assert.rejects(prisma.video.create({ data: { ...base, id: videoId(), seed: 4294967296n } }));
    await assert.rejects(prisma.video.create({ data: { ...base, id: videoId(), seed: -1n } }));
    await assert.rejects(prisma.video.create({ data: { ...base, id: videoId(), seed: 1n, progress: 101 } }));
  });

  it('round-trips Chunks keyed by (videoId, index) and deletes them with their video', async () => {
    const key = newKey();
    await prisma.apiKey.create({ data: { id: key.id, name: 'chunks', prefix: key.prefix, hash: key.hash } });
    const id = videoId();
    await prisma.video.create({
      data: { id, ownerId: key.id, prompt: 'p', model: 'm', seconds: 1, size: '128x128', width: 128, height: 128, seed: 7n, steps: 1, guidance: 1, chunksTotal: 2 },
    });
    for (const index of [1, 0]) {
      await prisma.chunk.create({
        data: { videoId: id, index, storageKey: `videos/${id}/segments/${index}.ts`, frames: 12, durationSeconds: 0.5, bytes: 1000 + index },
      });
    }
    const chunk = await prisma.chunk.findUniqueOrThrow({ where: { videoId_index: { videoId: id, index: 1 } } });
    assert.equal(chunk.bytes, 1001);
    assert.equal(chunk.durationSeconds, 0.5);
    await assert.rejects(
      prisma.chunk.create({ data: { videoId: id, index: 1, storageKey: 'x', frames: 1, durationSeconds: 1, bytes: 1 } }),
      (error: unknown) => error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002',
    );
    const withChunks = await prisma.video.findUniqueOrThrow({ where: { id }, include: { chunks: { orderBy: { index: 'asc' } } } });
    assert.deepEqual(
      withChunks.chunks.map((c) => c.index),
      [0, 1],
    );
    await prisma.video.delete({ where: { id } });
    assert.equal(await prisma.chunk.count({ where: { videoId: id } }), 0);
  });

  it('round-trips IdempotencyRecords, unique per (ownerId, key)', async () => {
    const key = newKey();
    await prisma.apiKey.create({ data: { id: key.id, name: 'idem', prefix: key.prefix, hash: key.hash } });
    const id = videoId();
    const expiresAt = new Date(Date.now() + 86_400_000);
    const [, record] = await prisma.$transaction([
      prisma.video.create({
        data: { id, ownerId: key.id, prompt: 'p', model: 'm', seconds: 1, size: '128x128', width: 128, height: 128, seed: 1n, steps: 1, guidance: 1, chunksTotal: 1 },
      }),
      prisma.idempotencyRecord.create({ data: { ownerId: key.id, key: 'abc', requestHash: 'f'.repeat(64), videoId: id, expiresAt } }),
    ]);
    const found = await prisma.idempotencyRecord.findUniqueOrThrow({ where: { ownerId_key: { ownerId: key.id, key: 'abc' } } });
    assert.deepEqual(found, record);
    assert.equal(typeof found.id, 'bigint');
    await assert.rejects(
      prisma.idempotencyRecord.create({ data: { ownerId: key.id, key: 'abc', requestHash: '0'.repeat(64), videoId: id, expiresAt } }),
      (error: unknown) => error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002',
    );
    await prisma.video.delete({ where: { id } });
    assert.equal(await prisma.idempotencyRecord.count({ where: { ownerId: key.id } }), 0);
  });
});
