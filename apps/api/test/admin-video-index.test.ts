/**
 * The admin video list is served by an index, not a scan and a sort of every video: the SQL the
 * real `AdminVideoService.list` sends (captured at the pg pool under Prisma) is EXPLAINed on a
 * fresh database holding 20,000 analysed videos. A plan-shape check, not a timing: the planner
 * picks the index on its own (no `enable_*` switches), because a backward index scan stopping
 * after `limit + 1` rows is far cheaper than reading and sorting the table.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createPgPool, createPrismaClient, type PgPool, type PrismaClient } from '@rehyat/db';
import { createTestDatabase, type TestDatabase } from '@rehyat/db/testing';
import { AdminVideoService, type AdminVideoServiceDeps } from '../src/admin/videos.js';

const VIDEOS = 20_000;
const OWNERS = ['key_a', 'key_b', 'key_c', 'key_d'];

let db: TestDatabase;
let pool: PgPool;
let prisma: PrismaClient;
let service: AdminVideoService;
/** Statements Prisma sent through the pool, with their parameters. */
const sent: Array<{ text: string; values: unknown[] }> = [];

before(async () => {
  db = await createTestDatabase();
  pool = createPgPool({ databaseUrl: db.url, maxConnections: 2 });
  await pool.query(
    `INSERT INTO api_keys (id, name, prefix, hash) SELECT k, k, k, k FROM unnest($1::text[]) AS k`,
    [OWNERS],
  );
  // Newest first is i = 0; every 100th video failed; pairs share a creation time (ties broken by id).
  await pool.query(
    `INSERT INTO videos (id, owner_id, status, prompt, model, seconds, size, width, height, seed, steps, guidance, chunks_total, created_at, updated_at)
     SELECT 'video_' || lpad(to_hex(i), 32, '0'), ($2::text[])[1 + i % 4],
            (CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'completed' END)::video_status,
            'prompt ' || i, 'rehyat-test', 2, '128x128', 128, 128, i, 8, 3, 4,
            now() - (i / 2) * interval '1 second', now()
     FROM generate_series(0, $1::int - 1) AS i`,
    [VIDEOS, OWNERS],
  );
  await pool.query('ANALYZE videos');

  const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
  (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const q = args[0] as { text?: string; values?: unknown[] } | string;
    if (typeof q === 'object' && typeof q.text === 'string') sent.push({ text: q.text, values: q.values ?? [] });
    return query(...args);
  };
  prisma = createPrismaClient({ databaseUrl: db.url, pool });
  // `list` reads Postgres only; the retry's dependencies (Redis, BullMQ, slots) are not used here.
  service = new AdminVideoService({ prisma } as unknown as AdminVideoServiceDeps);
});

after(async () => {
  await prisma?.$disconnect();
  await pool?.end();
  await db?.drop();
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  Plans?: PlanNode[];
}
const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];

/** The plan of the last ordered statement on `videos` sent by `run`. */
async function planOf(run: () => Promise<unknown>): Promise<PlanNode[]> {
  sent.length = 0;
  await run();
  const listing = sent.filter((s) => /FROM\s+"public"\."videos"/.test(s.text) && /ORDER BY/.test(s.text)).at(-1);
  assert.ok(listing, `an ordered SELECT on videos among:\n${sent.map((s) => s.text).join('\n')}`);
  const { rows } = await pool.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${listing.text}`, listing.values);
  return nodes(rows[0]!['QUERY PLAN'][0].Plan);
}

function assertServedBy(plan: PlanNode[], index: string): void {
  const shape = plan.map((n) => `${n['Node Type']}${n['Index Name'] ? ` using ${n['Index Name']}` : ''}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''}`);
  const scan = plan.find((n) => n['Relation Name'] === 'videos');
  assert.ok(scan, shape.join(' > '));
  assert.match(scan['Node Type'], /^Index (Only )?Scan$/, shape.join(' > '));
  assert.equal(scan['Index Name'], index, shape.join(' > '));
  assert.equal(scan['Scan Direction'], 'Backward', 'newest first, read in index order');
  assert.ok(!plan.some((n) => n['Node Type'] === 'Sort' || n['Node Type'] === 'Incremental Sort'), `no sort: ${shape.join(' > ')}`);
}

test('every owner\'s videos, newest first: a backward scan of videos_created_id_idx, no sort (first page and after a cursor)', async () => {
  const first = await service.list({ limit: 20 });
  assert.equal(first.data.length, 20);
  assert.equal(first.has_more, true);
  assertServedBy(await planOf(() => service.list({ limit: 20 })), 'videos_created_id_idx');
  const cursor = first.data.at(-1)!.id;
  assertServedBy(await planOf(() => service.list({ limit: 20, after: cursor })), 'videos_created_id_idx');
});

test('filtered by status: a backward scan of videos_status_created_id_idx, no sort', async () => {
  const failed = await service.list({ status: 'failed', limit: 20 });
  assert.ok(failed.data.length === 20 && failed.data.every((v) => v.status === 'failed'));
  assertServedBy(await planOf(() => service.list({ status: 'failed', limit: 20 })), 'videos_status_created_id_idx');
  const cursor = failed.data.at(-1)!.id;
  assertServedBy(await planOf(() => service.list({ status: 'failed', limit: 20, after: cursor })), 'videos_status_created_id_idx');
});

test('one owner\'s videos, newest first (the public list\'s query shape): videos_owner_created_id_idx, no sort', async () => {
  const list = () =>
    prisma.video.findMany({ where: { ownerId: 'key_b' }, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: 21 });
  assert.equal((await list()).length, 21);
  assertServedBy(await planOf(list), 'videos_owner_created_id_idx');
});
