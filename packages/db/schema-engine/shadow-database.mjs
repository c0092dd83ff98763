// @ts-check
/**
 * Shadow databases: the scratch databases `migrate dev` and `migrate diff --from-migrations`
 * replay the migrations on, to learn the schema they produce.
 *
 * Without a configured `shadowDatabaseUrl`, each one is a new database on the main database's
 * server, `<main database>_shadow_<random hex>`, created through the server's maintenance
 * database (`postgres`; the main database when that one is missing) and dropped `WITH (FORCE)`
 * when released. `dropAll()` drops those not released yet: the engine calls it on every way out.
 *
 * With a `shadowDatabaseUrl` (prisma.config.ts `datasource.shadowDatabaseUrl`), that database is
 * used as is, emptied before each use as Prisma does (its schema is dropped and created again),
 * and never dropped. It must not be the main database.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Postgres truncates identifiers longer than this many bytes. */
const MAX_IDENTIFIER_BYTES = 63;

/** Prisma's code for "could not create the shadow database". */
const SHADOW_CREATE_FAILED = 'P3014';

/** @param {string} name */
function quoteIdent(name) {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * @param {string} url
 * @param {string} database
 */
function withDatabase(url, database) {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** @param {string} url */
function databaseOf(url) {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  return name === '' ? 'postgres' : name;
}

/** @param {string} url host:port/database, to compare two URLs */
function identity(url) {
  const parsed = new URL(url);
  return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}/${databaseOf(url)}`;
}

/**
 * An error the Prisma CLI prints with its code, as it does the native engine's.
 */
export class ShadowDatabaseError extends Error {
  /** @type {string | undefined} Prisma error code */
  code;

  /**
   * @param {string} message
   * @param {{ code?: string, cause?: unknown }} [options]
   */
  constructor(message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ShadowDatabaseError';
    if (options.code !== undefined) this.code = options.code;
  }
}

/** `_shadow_` and 12 hex characters. */
const SUFFIX_LENGTH = '_shadow_'.length + 12;

/**
 * The main database's name, shortened by whole characters so that it and the suffix fit
 * Postgres's 63-byte identifiers.
 * @param {string} mainDatabase
 */
function shadowPrefix(mainDatabase) {
  let prefix = mainDatabase;
  while (Buffer.byteLength(prefix) > MAX_IDENTIFIER_BYTES - SUFFIX_LENGTH) prefix = [...prefix].slice(0, -1).join('');
  return prefix;
}

/**
 * The name of a new shadow database of `mainDatabase`: `<main>_shadow_<12 hex>`.
 * @param {string} mainDatabase
 */
export function shadowDatabaseName(mainDatabase) {
  return `${shadowPrefix(mainDatabase)}_shadow_${randomBytes(6).toString('hex')}`;
}

/**
 * `LIKE` pattern (backslash escapes) of the shadow database names of `mainDatabase`.
 * @param {string} mainDatabase
 */
export function shadowDatabasePattern(mainDatabase) {
  return `${shadowPrefix(mainDatabase).replace(/[\\_%]/g, '\\$&')}\\_shadow\\_%`;
}

/**
 * Runs `work` on a client of the server's maintenance database (`postgres`), or of `serverUrl`
 * itself when the server has none.
 * @param {string} serverUrl any URL on the server
 * @param {(client: pg.Client) => Promise<void>} work
 */
async function onServer(serverUrl, work) {
  /** @param {string} url */
  const connect = async (url) => {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  };
  let client;
  try {
    client = await connect(withDatabase(serverUrl, 'postgres'));
  } catch (error) {
    if (/** @type {any} */ (error)?.code !== '3D000') throw error;
    client = await connect(serverUrl);
  }
  try {
    await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * @typedef {object} ShadowDatabase
 * @property {string} url where to connect
 * @property {string} name its database name
 * @property {() => Promise<void>} release drops it (a configured one is left as it is); safe to call twice
 */

/**
 * Shadow databases for one schema engine process.
 * @param {{ url: string, shadowDatabaseUrl?: string }} datasource
 */
export function createShadowDatabases(datasource) {
  /** @type {Map<string, () => Promise<void>>} databases created and not dropped yet */
  const live = new Map();

  /** @returns {Promise<ShadowDatabase>} */
  const acquireConfigured = async () => {
    const url = /** @type {string} */ (datasource.shadowDatabaseUrl);
    if (datasource.url && identity(url) === identity(datasource.url)) {
      throw new ShadowDatabaseError(
        'The shadow database you configured appears to be the same as the main database. Please specify another shadow database (datasource.shadowDatabaseUrl in prisma.config.ts).',
      );
    }
    const schema = new URL(url).searchParams.get('schema') || 'public';
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    try {
      await client.connect();
      // What the native engine does to a configured shadow database before each use.
      await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE; CREATE SCHEMA ${quoteIdent(schema)};`);
    } catch (error) {
      throw new ShadowDatabaseError(`Could not reset the shadow database at ${identity(url)}: ${/** @type {Error} */ (error).message}`, {
        code: SHADOW_CREATE_FAILED,
        cause: error,
      });
    } finally {
      await client.end().catch(() => {});
    }
    return { url, name: databaseOf(url), release: async () => {} };
  };

  /** @returns {Promise<ShadowDatabase>} */
  const acquireTemporary = async () => {
    const name = shadowDatabaseName(databaseOf(datasource.url));
    try {
      await onServer(datasource.url, async (client) => {
        await client.query(`CREATE DATABASE ${quoteIdent(name)}`);
      });
    } catch (error) {
      throw new ShadowDatabaseError(
        `Prisma Migrate could not create the shadow database. Please make sure the database user has permission to create databases, or set datasource.shadowDatabaseUrl in prisma.config.ts. Original error: ${/** @type {Error} */ (error).message}`,
        { code: SHADOW_CREATE_FAILED, cause: error },
      );
    }
    /** @type {Promise<void> | undefined} */
    let dropping;
    const release = () =>
      (dropping ??= onServer(datasource.url, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      }).finally(() => live.delete(name)));
    live.set(name, release);
    return { url: withDatabase(datasource.url, name), name, release };
  };

  return {
    /** A shadow database ready to replay migrations on. */
    acquire: () => (datasource.shadowDatabaseUrl ? acquireConfigured() : acquireTemporary()),
    /** Drops every temporary shadow database not dropped yet. */
    async dropAll() {
      await Promise.allSettled([...live.values()].map((release) => release()));
    },
  };
}
