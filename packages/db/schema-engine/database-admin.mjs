// @ts-check
/**
 * The schema engine's `cli` sub-commands the Prisma CLI runs before migrating:
 * `can-connect-to-database`, `create-database`, `drop-database`. They talk to the server through
 * its maintenance database (`postgres`), like the native engine.
 */
import pg from 'pg';

/** @param {string} name */
function quoteIdent(name) {
  return `"${name.replaceAll('"', '""')}"`;
}

/** @param {string} url */
export function databaseName(url) {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  return name === '' ? 'postgres' : name;
}

/** @param {string} url */
function hostPort(url) {
  const parsed = new URL(url);
  return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
}

/**
 * A user-facing error in the shape the Prisma CLI reads from the engine's stderr.
 */
export class EngineUserError extends Error {
  /**
   * @param {string} code Prisma error code (P1001, ...)
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * Translates a pg error into Prisma's error codes where the CLI reacts to them.
 * @param {any} error
 * @param {string} url
 */
export function toUserError(error, url) {
  const at = hostPort(url);
  if (error?.code === 'ECONNREFUSED' || error?.code === 'ENOTFOUND' || error?.code === 'EHOSTUNREACH' || error?.code === 'ETIMEDOUT') {
    return new EngineUserError('P1001', `Can't reach database server at \`${at}\`\n\nPlease make sure your database server is running at \`${at}\`.`);
  }
  if (error?.code === '3D000') {
    return new EngineUserError('P1003', `Database \`${databaseName(url)}\` does not exist on the database server at \`${at}\`.`);
  }
  if (error?.code === '28P01' || error?.code === '28000') {
    return new EngineUserError('P1000', `Authentication failed against database server at \`${at}\`: ${error.message}`);
  }
  return new EngineUserError('P1001', `Database error at \`${at}\`: ${error?.message ?? String(error)}`);
}

/** @param {string} url */
function maintenanceUrl(url) {
  const parsed = new URL(url);
  parsed.pathname = '/postgres';
  return parsed.toString();
}

/**
 * @param {string} url
 * @param {(client: pg.Client) => Promise<void>} work
 */
async function withClient(url, work) {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  try {
    await client.connect();
    await work(client);
  } catch (error) {
    throw error instanceof EngineUserError ? error : toUserError(error, url);
  } finally {
    await client.end().catch(() => {});
  }
}

/** @param {string} url */
export async function canConnectToDatabase(url) {
  await withClient(url, async (client) => {
    await client.query('SELECT 1');
  });
}

/** @param {string} url */
export async function createDatabase(url) {
  const name = databaseName(url);
  await withClient(maintenanceUrl(url), async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
  });
  return name;
}

/** @param {string} url */
export async function dropDatabase(url) {
  const name = databaseName(url);
  await withClient(maintenanceUrl(url), async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  });
}
