import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** `prisma/migrations` at the repository root (same depth from src/testing and dist/testing). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../../prisma/migrations/', import.meta.url));

/** Migration directory names in the order Prisma applies them. */
export async function listMigrations(dir: string = MIGRATIONS_DIR): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => a.localeCompare(b));
}

/**
 * Runs every `migration.sql` in order on the database at `url`, each as one simple-query script
 * (Postgres runs it as one implicit transaction, as `prisma migrate deploy` does). It does not
 * write Prisma's `_prisma_migrations` table: it is for throwaway test databases.
 */
export async function applyMigrations(url: string, dir: string = MIGRATIONS_DIR): Promise<string[]> {
  const names = await listMigrations(dir);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const name of names) {
      const script = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      try {
        await client.query(script);
      } catch (error) {
        throw new Error(`migration ${name} failed: ${(error as Error).message}`, { cause: error });
      }
    }
  } finally {
    await client.end();
  }
  return names;
}
