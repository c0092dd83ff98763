import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, type TestDatabase } from '../src/testing/index.js';
import { runNode, runPrisma } from './support.js';

const DB_CHECK = fileURLToPath(new URL('../scripts/db-check.mjs', import.meta.url));
const SCHEMA = fileURLToPath(new URL('../../../prisma/schema.prisma', import.meta.url));

describe('db:check', () => {
  let db: TestDatabase;
  let scratch: string;

  before(async () => {
    db = await createTestDatabase({ migrate: false });
    const deploy = await runPrisma(['migrate', 'deploy'], db.url);
    assert.equal(deploy.code, 0, deploy.stdout + deploy.stderr);
    scratch = await mkdtemp(join(tmpdir(), 'rehyat-db-check-test-'));
  });
  after(async () => {
    await db?.drop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('passes on the committed schema, migrations and generated client against a migrated database', async () => {
    const check = await runNode(DB_CHECK, [], { DATABASE_URL: db.url });
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /db:check: ok/);
  });

  it('fails when the schema has a change no migration makes', async () => {
    const schema = join(scratch, 'schema.prisma');
    const source = await readFile(SCHEMA, 'utf8');
    const changed = source.replace(/(model Video \{\n)/, '$1  unmigrated String?\n');
    assert.notEqual(changed, source);
    await writeFile(schema, changed);
    const check = await runNode(DB_CHECK, ['--schema', schema, '--no-status'], { DATABASE_URL: db.url });
    assert.equal(check.code, 1, check.stdout + check.stderr);
    assert.match(check.stdout, /Changed the `videos` table/);
    assert.match(check.stderr, /db:check FAILED: schema\.prisma has changes no migration makes/);
  });

  it('passes --no-status on an unchanged copy of the schema (the failure above is the change, not the copy)', async () => {
    const schema = join(scratch, 'same.prisma');
    await copyFile(SCHEMA, schema);
    const check = await runNode(DB_CHECK, ['--schema', schema, '--no-status'], { DATABASE_URL: db.url });
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });

  it('fails when the database has pending migrations', async () => {
    const behind = await createTestDatabase({ migrate: false });
    try {
      const check = await runNode(DB_CHECK, [], { DATABASE_URL: behind.url });
      assert.equal(check.code, 1, check.stdout + check.stderr);
      assert.match(check.stderr, /db:check FAILED: migrate status failed/);
    } finally {
      await behind.drop();
    }
  });
});
