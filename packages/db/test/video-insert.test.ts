import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHash, randomBytes } from 'node:crypto';
import { createPgPool, createPrismaClient, insertVideos, type NewVideoRow, type PgPool, type PrismaClient } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing/index.js';

const videoId = () => `video_${randomBytes(16).toString('hex')}`;

describe('insertVideos (raw multi-row insert on a pool shared with Prisma)', () => {
  let db: TestDatabase;
  let pool: PgPool;
  let prisma: PrismaClient;
  const ownerId = `key_${randomBytes(12).toString('hex')}`;

  before(async () => {
    db = await createTestDatabase();
    pool = createPgPool({ databaseUrl: db.url, maxConnections: 2 });
    prisma = createPrismaClient({ databaseUrl: db.url, pool });
    const secret = randomBytes(24).toString('hex');
    await prisma.apiKey.create({ data: { id: ownerId, name: 'insert', prefix: secret.slice(0, 8), hash: createHash('sha256').update(secret).digest('hex') } });
  });
  after(async () => {
    await prisma?.$disconnect();
    await pool?.end();
    await db?.drop();
  });

  const row = (over: Partial<NewVideoRow> = {}): NewVideoRow => ({
    id: videoId(),
    ownerId,
    prompt: 'a "quoted" prompt, with {braces}, a back\\slash, NULL and ünïcödé ✓',
    model: 'rehyat-test',
    seconds: 2.5,
    size: '256x160',
    width: 256,
    height: 160,
    seed: 4294967295n,
    steps: 4,
    guidance: 1.5,
    shift: null,
    sourceVideoId: null,
    sourceKind: null,
    chunksTotal: 3,
    createdAt: new Date('2026-02-03T04:05:06.789Z'),
    webhookUrl: null,
    ...over,
  });

  it('writes exactly what prisma.video.create writes, for every row of the batch', async () => {
    const viaPrisma = row();
    const created = await prisma.video.create({ data: { ...viaPrisma, status: 'queued' } });
    const source = created.id;
    const rows = [row(), row({ shift: 3, sourceVideoId: source, sourceKind: 'remix', seed: 0n, prompt: 'x' }), row({ webhookUrl: 'https://example.com/h?a=1&b="2"', sourceVideoId: source, sourceKind: 'extension', seconds: 6 })];
    await insertVideos(pool, rows);
    const read = await prisma.video.findMany({ where: { id: { in: rows.map((r) => r.id) } } });
    assert.equal(read.length, rows.length);
    for (const r of rows) {
      const got = read.find((x) => x.id === r.id)!;
      const { id: _a, ...gotRest } = got;
      const { id: _b, ...wantRest } = { ...created, ...r, updatedAt: r.createdAt };
      assert.deepEqual(gotRest, wantRest);
    }
  });

  it('is all or nothing: one bad row (unknown owner) inserts none of the batch', async () => {
    const rows = [row(), row({ ownerId: 'key_missing' }), row()];
    await assert.rejects(insertVideos(pool, rows), (err: Error & { code?: string }) => err.code === '23503');
    assert.equal(await prisma.video.count({ where: { id: { in: rows.map((r) => r.id) } } }), 0);
  });

  it('an empty batch is a no-op; the shared pool survives prisma.$disconnect', async () => {
    await insertVideos(pool, []);
    const other = createPrismaClient({ databaseUrl: db.url, pool });
    await other.apiKey.count();
    await other.$disconnect();
    await insertVideos(pool, [row()]);
  });
});
