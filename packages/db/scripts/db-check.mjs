#!/usr/bin/env node
// @ts-check
/**
 * `npm run db:check`: fails (exit 1) when the database layer is out of step.
 *   1. drift: prisma/schema.prisma holds a change no migration in prisma/migrations makes
 *      (`migrate diff --from-migrations --to-schema --exit-code`, replayed on a shadow database);
 *   2. the committed generated client (packages/db/src/generated/prisma) is not what
 *      `npm run db:generate` makes from the schema;
 *   3. pending migrations: the database at DATABASE_URL has not applied every migration, or one
 *      failed (`migrate status`). Skip with --no-status when no database should be consulted.
 * Options: --schema <file> and --migrations <dir> check another schema or migrations directory
 * (the generated-client check then runs only for the repository's own schema).
 */
import { mkdtemp, readFile, readdir, rm, mkdir, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { REPO_ROOT, runPrisma } from './prisma.mjs';

/** prisma.config.ts's default. */
const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/rehyat';

const args = process.argv.slice(2);
/** @param {string} flag */
const option = (flag) => {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
};
const ownSchema = join(REPO_ROOT, 'prisma', 'schema.prisma');
const schema = resolve(option('--schema') ?? ownSchema);
const migrations = resolve(option('--migrations') ?? join(REPO_ROOT, 'prisma', 'migrations'));
const checkStatus = !args.includes('--no-status');

/** @type {string[]} */
const failures = [];

async function checkDrift() {
  console.log(`db:check: drift between ${relative(REPO_ROOT, schema)} and ${relative(REPO_ROOT, migrations)}`);
  // The diff only needs the server (for the shadow database), not the application database,
  // which may not exist yet: point the datasource at the server's maintenance database.
  const server = new URL(process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL);
  server.pathname = '/postgres';
  const code = await runPrisma(['migrate', 'diff', '--from-migrations', migrations, '--to-schema', schema, '--exit-code'], {
    env: { DATABASE_URL: server.toString() },
  });
  if (code === 2) failures.push('schema.prisma has changes no migration makes: run `npm run db:migrate -- --name <what>` and commit prisma/migrations');
  else if (code !== 0) failures.push(`migrate diff failed (exit ${code})`);
}

/**
 * @param {string} dir
 * @returns {Promise<string[]>}
 */
async function listFiles(dir) {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

async function checkGeneratedClient() {
  console.log('db:check: generated client is up to date');
  const generated = join(REPO_ROOT, 'packages', 'db', 'src', 'generated', 'prisma');
  // The same relative layout as the repository, so the output path and inlined schema match.
  const scratch = await mkdtemp(join(tmpdir(), 'rehyat-db-check-'));
  try {
    await mkdir(join(scratch, 'prisma'));
    await copyFile(ownSchema, join(scratch, 'prisma', 'schema.prisma'));
    const code = await runPrisma(['generate', '--schema', join(scratch, 'prisma', 'schema.prisma')], { stdio: 'ignore' });
    if (code !== 0) {
      failures.push(`prisma generate failed (exit ${code})`);
      return;
    }
    const fresh = join(scratch, 'packages', 'db', 'src', 'generated', 'prisma');
    const [want, have] = await Promise.all([listFiles(fresh), listFiles(generated).catch(() => [])]);
    const stale = want.length !== have.length || want.some((file, i) => file !== have[i]);
    let differs = stale;
    for (const file of stale ? [] : want) {
      const [a, b] = await Promise.all([readFile(join(fresh, file)), readFile(join(generated, file))]);
      if (!a.equals(b)) {
        differs = true;
        break;
      }
    }
    if (differs) failures.push('packages/db/src/generated/prisma is stale: run `npm run db:generate` and commit it');
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function checkPending() {
  console.log('db:check: every migration is applied to DATABASE_URL');
  const code = await runPrisma(['migrate', 'status']);
  if (code !== 0) failures.push('migrate status failed: the database at DATABASE_URL is missing, behind (pending migrations) or has a failed migration (see above); run `npm run db:deploy`');
}

await checkDrift();
if (schema === ownSchema) await checkGeneratedClient();
if (checkStatus) await checkPending();

if (failures.length > 0) {
  for (const failure of failures) console.error(`db:check FAILED: ${failure}`);
  process.exitCode = 1;
} else {
  console.log('db:check: ok');
}
