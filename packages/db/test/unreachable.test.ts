import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkDatabase, createPrismaClient, DatabaseUnreachableError } from '../src/index.js';
import { createTestDatabase } from '../src/testing/index.js';
import { runNode, SERVER_URL } from './support.js';

const DOWN = 'postgresql://postgres@127.0.0.1:1/rehyat';
const SCHEMA_ENGINE = fileURLToPath(new URL('../schema-engine/schema-engine.mjs', import.meta.url));

describe('PostgreSQL unreachable', () => {
  it('checkDatabase names the address and the cause', async () => {
    await assert.rejects(checkDatabase(DOWN), (error: unknown) => {
      assert.ok(error instanceof DatabaseUnreachableError);
      assert.equal(error.code, 'database_unreachable');
      assert.equal(error.address, '127.0.0.1:1');
      assert.match(error.message, /^PostgreSQL is not reachable at 127\.0\.0\.1:1: .*ECONNREFUSED/);
      return true;
    });
  });

  it('checkDatabase reports a missing database the same way', async () => {
    const url = new URL(SERVER_URL);
    url.pathname = '/rehyat_db_that_does_not_exist';
    await assert.rejects(checkDatabase(url.toString()), /PostgreSQL is not reachable at .*: database "rehyat_db_that_does_not_exist" does not exist/);
  });

  it('checkDatabase resolves when the server is up', async () => {
    await checkDatabase(SERVER_URL);
  });

  it('createTestDatabase fails with the same clear message', async () => {
    await assert.rejects(createTestDatabase({ serverUrl: DOWN }), /^DatabaseUnreachableError: PostgreSQL is not reachable at 127\.0\.0\.1:1:|PostgreSQL is not reachable at 127\.0\.0\.1:1:/);
  });

  it('a client query fails (no hang) when the server is down', async () => {
    const prisma = createPrismaClient({ databaseUrl: DOWN, connectionTimeoutMs: 2000 });
    try {
      await assert.rejects(prisma.apiKey.count());
    } finally {
      await prisma.$disconnect();
    }
  });

  it('the schema engine answers the CLI with P1001 when the server is down', async () => {
    const run = await runNode(SCHEMA_ENGINE, ['--datasource', JSON.stringify({ url: DOWN }), 'cli', 'can-connect-to-database']);
    assert.equal(run.code, 1);
    const lines = run.stderr.trim().split('\n').map((line) => JSON.parse(line) as { level: string; fields: Record<string, string> });
    const error = lines.find((line) => line.level === 'ERROR');
    assert.equal(error?.fields.error_code, 'P1001');
    assert.match(error?.fields.message ?? '', /Can't reach database server at `127\.0\.0\.1:1`/);
  });

  it('the schema engine prints the engines commit it runs', async () => {
    const run = await runNode(SCHEMA_ENGINE, ['--version']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^schema-engine-cli [0-9a-f]{40}\n$/);
  });
});
