import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../src/testing/index.js';
import {
  canUseTerminal,
  createTempProject,
  query,
  runPrisma,
  runPrismaInTerminal,
  shadowDatabasesLeft,
  type TempProject,
} from './support.js';

/**
 * `prisma migrate dev` through the wasm schema engine, on a copy of prisma/ (the repository's is
 * never touched) and a fresh database per describe block.
 */

async function migrationDirs(project: TempProject): Promise<string[]> {
  const entries = await readdir(project.migrations, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
}

async function newMigrationSql(project: TempProject, suffix: string): Promise<string> {
  const dir = (await migrationDirs(project)).find((name) => name.endsWith(`_${suffix}`));
  assert.ok(dir, `no migration *_${suffix} in ${project.migrations}`);
  return readFile(join(project.migrations, dir, 'migration.sql'), 'utf8');
}

async function columns(url: string, table: string): Promise<string[]> {
  const rows = await query<{ column_name: string }>(url, 'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY column_name', [
    'public',
    table,
  ]);
  return rows.map((row) => row.column_name);
}

/** Edits the project's schema.prisma: `edit` must change it. */
async function editSchema(project: TempProject, edit: (source: string) => string): Promise<void> {
  const source = await readFile(project.schema, 'utf8');
  const changed = edit(source);
  assert.notEqual(changed, source, 'the schema edit changed nothing');
  await writeFile(project.schema, changed);
}

const ADD_NOTE = (source: string) => source.replace(/^( {2}revokedAt .*\n)/m, '$1  note            String?\n');
const DROP_LAST_USED = (source: string) => source.replace(/^ {2}lastUsedAt .*\n/m, '');

describe('prisma migrate dev', () => {
  let project: TempProject;
  let db: TestDatabase;
  let terminal = false;

  before(async () => {
    project = await createTempProject();
    db = await createTestDatabase({ migrate: false });
    terminal = await canUseTerminal();
  });
  after(async () => {
    await db?.drop();
    await project?.remove();
  });

  const dev = (...args: string[]) => runPrisma(['migrate', 'dev', '--config', project.config, ...args], db.url);

  it('--create-only on a database behind the migrations applies them, then writes the SQL of an additive change', async () => {
    // The database is empty: devDiagnostic replays no migration on a shadow database, so
    // evaluateDataLoss and createMigration need the whole history replayed there afterwards.
    await editSchema(project, ADD_NOTE);
    const run = await dev('--create-only', '--name', 'api_key_note');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /The following migration\(s\) have been applied/);
    assert.match(run.stdout, /created the following migration without applying it \d{14}_api_key_note/);
    assert.equal(await newMigrationSql(project, 'api_key_note'), '-- AlterTable\nALTER TABLE "api_keys" ADD COLUMN     "note" TEXT;\n');
    assert.ok(!(await columns(db.url, 'api_keys')).includes('note'), '--create-only applied the migration');
    assert.deepEqual(await shadowDatabasesLeft(db.name), []);
  });

  it('then applies it', async () => {
    const run = await dev();
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /_api_key_note/);
    assert.ok((await columns(db.url, 'api_keys')).includes('note'));
  });

  it('a destructive change with data: shows the data-loss warning and, not in a terminal, stops without writing anything', async () => {
    await query(db.url, "INSERT INTO api_keys (id, name, prefix, hash, last_used_at) VALUES ('key_dev', 'dev', 'sk-dev', 'hash-dev', now())");
    await editSchema(project, DROP_LAST_USED);
    const before = await migrationDirs(project);
    const run = await dev('--name', 'drop_last_used');
    assert.notEqual(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /Warnings for the current datasource/);
    assert.match(run.stdout, /You are about to drop the column `last_used_at` on the `api_keys` table, which still contains 1 non-null values\./);
    assert.match(run.stdout + run.stderr, /environment is non-interactive, which is not supported/);
    assert.deepEqual(await migrationDirs(project), before);
    assert.ok((await columns(db.url, 'api_keys')).includes('last_used_at'));
    assert.deepEqual(await shadowDatabasesLeft(db.name), []);
  });

  it('has no --accept-data-loss flag (Prisma 7 migrate dev asks instead; db push has the flag)', async () => {
    const run = await dev('--name', 'drop_last_used', '--accept-data-loss');
    assert.notEqual(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout + run.stderr, /unknown or unexpected option: --accept-data-loss/);
    assert.ok((await columns(db.url, 'api_keys')).includes('last_used_at'));
  });

  it('in a terminal, answering yes creates and applies the destructive migration', async (t) => {
    if (!terminal) {
      t.skip('util-linux `script` (a pseudo-terminal) is not available');
      return;
    }
    const run = await runPrismaInTerminal(['migrate', 'dev', '--config', project.config, '--name', 'drop_last_used'], db.url, {
      prompt: /Are you sure you want to create and apply this migration\?/,
      answer: 'y',
    });
    assert.ok(run.answered, `no confirmation asked:\n${run.stdout}${run.stderr}`);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /which still contains 1 non-null values/);
    assert.match(run.stdout, /have been created and applied/);
    const sql = await newMigrationSql(project, 'drop_last_used');
    assert.match(sql, /You are about to drop the column `last_used_at` on the `api_keys` table\. All the data in the column will be lost\./);
    assert.match(sql, /ALTER TABLE "api_keys" DROP COLUMN "last_used_at";/);
    assert.ok(!(await columns(db.url, 'api_keys')).includes('last_used_at'));
    const [row] = await query<{ name: string }>(db.url, "SELECT name FROM api_keys WHERE id = 'key_dev'");
    assert.equal(row?.name, 'dev');

    const status = await runPrisma(['migrate', 'status', '--config', project.config], db.url);
    assert.equal(status.code, 0, status.stdout + status.stderr);
    assert.match(status.stdout, /Database schema is up to date/);
    assert.deepEqual(await shadowDatabasesLeft(db.name), []);
  });

  it('a migration that fails on the shadow database, or on the database, leaves no shadow database behind', async () => {
    const broken = join(project.migrations, '20990101000000_broken');
    await mkdir(broken);
    await writeFile(join(broken, 'migration.sql'), 'ALTER TABLE "no_such_table" ADD COLUMN "x" TEXT;\n');
    const onShadow = await dev();
    assert.notEqual(onShadow.code, 0, onShadow.stdout + onShadow.stderr);
    assert.match(onShadow.stdout + onShadow.stderr, /Migration `20990101000000_broken` failed to apply cleanly to the shadow database/);
    assert.deepEqual(await shadowDatabasesLeft(db.name), []);
    await rm(broken, { recursive: true });

    // Replays on the (empty) shadow database, fails on the database: key_dev's name is too long.
    const check = join(project.migrations, '20990101000001_name_check');
    await mkdir(check);
    await writeFile(join(check, 'migration.sql'), 'ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_name_short" CHECK (length("name") < 2);\n');
    const onDatabase = await dev();
    assert.notEqual(onDatabase.code, 0, onDatabase.stdout + onDatabase.stderr);
    assert.match(onDatabase.stdout + onDatabase.stderr, /20990101000001_name_check/);
    assert.match(onDatabase.stdout + onDatabase.stderr, /api_keys_name_short/);
    assert.deepEqual(await shadowDatabasesLeft(db.name), []);
  });
});

describe('a configured shadowDatabaseUrl', () => {
  let project: TempProject;
  let db: TestDatabase;
  let shadow: TestDatabase;

  before(async () => {
    project = await createTempProject();
    db = await createTestDatabase();
    shadow = await createTestDatabase({ migrate: false });
  });
  after(async () => {
    await db?.drop();
    await shadow?.drop();
    await project?.remove();
  });

  const diff = (shadowUrl: string) =>
    runPrisma(['migrate', 'diff', '--config', project.config, '--from-migrations', project.migrations, '--to-schema', project.schema, '--exit-code'], db.url, {
      SHADOW_DATABASE_URL: shadowUrl,
    });

  it('is emptied, replayed on and kept; no temporary shadow database is made', async () => {
    await query(shadow.url, 'CREATE TABLE "leftover" ("v" text)');
    const run = await diff(shadow.url);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /No difference detected/);
    const tables = await query<{ table_name: string }>(shadow.url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
    const names = tables.map((row) => row.table_name);
    assert.ok(!names.includes('leftover'), `not emptied: ${names.join(', ')}`);
    assert.ok(names.includes('api_keys') && names.includes('videos'), `migrations not replayed there: ${names.join(', ')}`);
    assert.deepEqual(await shadowDatabasesLeft(db.name), []);
  });

  it('is refused when it is the main database, which is left alone', async () => {
    await query(db.url, "INSERT INTO api_keys (id, name, prefix, hash) VALUES ('key_main', 'main', 'sk-main', 'hash-main')");
    const run = await diff(db.url);
    assert.notEqual(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout + run.stderr, /The shadow database you configured appears to be the same as the main database/);
    const [row] = await query<{ count: string }>(db.url, 'SELECT count(*) FROM api_keys');
    assert.equal(row?.count, '1');
  });
});
