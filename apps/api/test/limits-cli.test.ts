import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { createPrismaClient, type PrismaClient } from '@rehyat/db';
import { createTestDatabase, type TestDatabase } from '@rehyat/db/testing';
import { ApiKeyService } from '../src/services/api-key-service.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../src/cli/limits.ts', import.meta.url));
const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));

let db: TestDatabase;
let prisma: PrismaClient;
before(async () => {
  db = await createTestDatabase();
  prisma = createPrismaClient({ databaseUrl: db.url });
});
after(async () => {
  await prisma.$disconnect();
  await db.drop();
});

const limits = (args: string[]) =>
  run(tsx, ['--conditions=development', cli, ...args], { env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, RATE_LIMIT_RPM: '100', MAX_ACTIVE_VIDEOS: '3' } });

test('limits CLI: set, show, back to default; bad input is refused', async () => {
  const key = await new ApiKeyService(prisma).create({ name: 'cli' });
  let out = await limits(['show', key.id]);
  assert.match(out.stdout, /rpm 100 \(default\)\tmax active videos 3 \(default\)/);
  out = await limits(['set', key.id, '--rpm', '30', '--max-active-videos', '0']);
  assert.match(out.stdout, /rpm 30\tmax active videos unlimited/);
  const row = await prisma.apiKey.findUniqueOrThrow({ where: { id: key.id } });
  assert.equal(row.rateLimitRpm, 30);
  assert.equal(row.maxActiveVideos, 0);
  await limits(['set', key.id, '--rpm', 'default']);
  assert.equal((await prisma.apiKey.findUniqueOrThrow({ where: { id: key.id } })).rateLimitRpm, null);
  await assert.rejects(limits(['set', key.id, '--rpm=-1']), /non-negative integer/);
  await assert.rejects(limits(['set', key.id, '--rpm', 'lots']), /non-negative integer/);
  await assert.rejects(limits(['set', 'key_missing', '--rpm', '5']), /no such key/);
  await assert.rejects(limits(['set', key.id]), /needs --rpm/);
});
