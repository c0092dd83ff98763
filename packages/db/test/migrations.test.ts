import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, listMigrations, MIGRATIONS_DIR, type TestDatabase } from '../src/testing/index.js';
import { query, runPrisma, shadowDatabasesLeft } from './support.js';

/** Tables this package's tests rely on (later migrations may add more). */
const TABLES = ['api_keys', 'chunks', 'idempotency_records', 'videos'];

function assertHasTables(actual: string[]) {
  for (const table of TABLES) assert.ok(actual.includes(table), `missing table ${table} in ${actual.join(', ')}`);
}

async function tables(url: string): Promise<string[]> {
  const rows = await query<{ table_name: string }>(
    url,
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY table_name",
  );
  return rows.map((row) => row.table_name);
}

describe('migrations', () => {
  let empty: TestDatabase;

  before(async () => {
    empty = await createTestDatabase({ migrate: false });
  });
  after(async () => {
    await empty?.drop();
  });

  it('prisma migrate deploy applies every migration to a fresh database through the wasm schema engine', async () => {
    const deploy = await runPrisma(['migrate', 'deploy'], empty.url);
    assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
    assert.match(deploy.stdout, /All migrations have been successfully applied/);
    assertHasTables(await tables(empty.url));
    const applied = await query<{ migration_name: string }>(
      empty.url,
      'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name',
    );
    assert.deepEqual(
      applied.map((row) => row.migration_name),
      await listMigrations(),
    );
  });

  it('prisma migrate status reports the database up to date, then behind when a migration is missing', async () => {
    const status = await runPrisma(['migrate', 'status'], empty.url);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.match(status.stdout, /Database schema is up to date/);

    const behind = await createTestDatabase({ migrate: false });
    try {
      const pending = await runPrisma(['migrate', 'status'], behind.url);
      assert.notEqual(pending.code, 0);
      assert.match(pending.stdout + pending.stderr, /not yet been applied/);
    } finally {
      await behind.drop();
    }
  });

  it('prisma migrate diff replays the migrations on a shadow database and finds no drift', async () => {
    const diff = await runPrisma(['migrate', 'diff', '--from-migrations', 'prisma/migrations', '--to-schema', 'prisma/schema.prisma', '--exit-code'], empty.url);
    assert.equal(diff.code, 0, diff.stdout + diff.stderr);
    assert.match(diff.stdout, /No difference detected/);
  });

  it('prisma db execute runs a multi-statement script whole (semicolons in strings and dollar quotes)', async () => {
    const script = [
      'CREATE TABLE "script_probe" ("v" text NOT NULL);',
      "INSERT INTO \"script_probe\" VALUES ('a;b');",
      "DO $$ BEGIN INSERT INTO \"script_probe\" VALUES ('c;d'); END $$;",
    ].join('\n');
    const scratch = await createTestDatabase({ migrate: false });
    try {
      const { writeFile, mkdtemp, rm } = await import('node:fs/promises');
      const { join } = await import('node:path');
      const { tmpdir } = await import('node:os');
      const dir = await mkdtemp(join(tmpdir(), 'rehyat-db-script-'));
      try {
        await writeFile(join(dir, 'probe.sql'), script);
        const run = await runPrisma(['db', 'execute', '--file', join(dir, 'probe.sql')], scratch.url);
        assert.equal(run.code, 0, run.stdout + run.stderr);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      const rows = await query<{ v: string }>(scratch.url, 'SELECT v FROM script_probe ORDER BY v');
      assert.deepEqual(
        rows.map((row) => row.v),
        ['a;b', 'c;d'],
      );
    } finally {
      await scratch.drop();
    }
  });

  it('leaves no shadow database behind (<database>_shadow_<random>, made for the diff above)', async () => {
    assert.deepEqual(await shadowDatabasesLeft(empty.name), []);
  });

  it('createTestDatabase applies the same migrations by running their SQL', async () => {
    const db = await createTestDatabase();
    try {
      assertHasTables(await tables(db.url));
      const checks = await query<{ conname: string }>(db.url, "SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = 'videos'::regclass ORDER BY conname");
      assert.deepEqual(
        checks.map((row) => row.conname),
        ['videos_progress_range', 'videos_seed_range'],
      );
    } finally {
      await db.drop();
    }
    const left = await query<{ count: string }>(
      process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
      'SELECT count(*) FROM pg_database WHERE datname = $1',
      [db.name],
    );
    assert.deepEqual(left, [{ count: '0' }]);
    await db.drop();
  });

  it('every migration directory holds a migration.sql', async () => {
    for (const name of await listMigrations()) {
      const files = await readdir(`${MIGRATIONS_DIR}/${name}`);
      assert.ok(files.includes('migration.sql'), name);
    }
  });
});
