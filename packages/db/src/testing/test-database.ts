import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { checkDatabase } from '../check-database.js';
import { applyMigrations } from './migrations.js';

/** Where test databases are created when neither the option nor DATABASE_URL says otherwise. */
const DEFAULT_SERVER_URL = 'postgresql://postgres@127.0.0.1:5432/postgres';

/** Options of {@link createTestDatabase}. */
export interface TestDatabaseOptions {
  /**
   * Any URL on the server to create the database on; only its server part and credentials are used.
   * @defaultValue process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres'
   */
  serverUrl?: string;
  /**
   * Apply prisma/migrations to the new database.
   * @defaultValue true
   */
  migrate?: boolean;
  /**
   * Prefix of the database name; a random suffix makes it unique.
   * @defaultValue 'rehyat_test'
   */
  namePrefix?: string;
}

/** A fresh database for one test run. */
export interface TestDatabase {
  /** Connection URL of the new database. */
  url: string;
  /** Its name. */
  name: string;
  /** Drops it, closing any connection still open on it. Safe to call twice. */
  drop(): Promise<void>;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function onMaintenanceDb(serverUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Creates a uniquely named database on the server of `DATABASE_URL` (this library reads that
 * variable only here, for tests), applies every migration, and hands back its URL and `drop()`.
 * Throws `PostgreSQL is not reachable at <host:port>: <cause>` when the server is down.
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const serverUrl = options.serverUrl ?? process.env.DATABASE_URL ?? DEFAULT_SERVER_URL;
  await checkDatabase(withDatabase(serverUrl, 'postgres'));
  const name = `${options.namePrefix ?? 'rehyat_test'}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await onMaintenanceDb(serverUrl, `CREATE DATABASE ${quoteIdent(name)}`);
  const url = withDatabase(serverUrl, name);
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await onMaintenanceDb(serverUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  };
  try {
    if (options.migrate ?? true) await applyMigrations(url);
  } catch (error) {
    await drop();
    throw error;
  }
  return { url, name, drop };
}
