// @ts-check
/**
 * The driver adapter the WebAssembly schema engine runs on: @prisma/adapter-pg with three gaps
 * closed for migrations.
 *
 * 1. Catalog types. The engine's introspection queries return Postgres catalog types the adapter
 *    does not map (`"char"` such as pg_constraint.contype, `name[]`, `int2vector`, `regclass`...).
 *    A pg.Client subclass rewrites the reported type of those columns to text / text[] before the
 *    adapter maps them (parsing `name[]` values into arrays), and `"char"` columns then reach the
 *    engine as its Character column type, which its describer requires.
 * 2. Statement splitting. The adapter's executeScript splits scripts on every `;`, which breaks
 *    on semicolons inside strings, comments and dollar-quoted bodies. Migration scripts are sent
 *    whole through the simple-query protocol instead, as the native engine does: Postgres runs
 *    them as one implicit transaction.
 * 3. The shadow database. `migrate dev` and `migrate diff --from-migrations` replay migrations on
 *    one: `connectToShadowDb` hands the engine an adapter over a database from
 *    ./shadow-database.mjs (a temporary `<main>_shadow_<random>` on the same server, dropped
 *    WITH (FORCE) when the engine disposes of the adapter or the process ends, or the configured
 *    `shadowDatabaseUrl`, emptied first).
 */
import pg from 'pg';
import { parse as parsePgArray } from 'postgres-array';
import { PrismaPg } from '@prisma/adapter-pg';

import { ColumnTypeEnum } from '@prisma/driver-adapter-utils';
import { createShadowDatabases } from './shadow-database.mjs';

const TEXT_OID = 25;
const TEXT_ARRAY_OID = 1009;

/**
 * Catalog type oid -> the oid the adapter is shown instead, and the column type the engine must
 * finally see when the adapter's mapping of that oid is not the right one.
 * @type {Map<number, { oid: number, columnType?: number }>}
 */
const CATALOG_TYPE_REMAP = new Map([
  [18, { oid: TEXT_OID, columnType: ColumnTypeEnum.Character }], // "char" (pg_constraint.contype, ...)
  [19, { oid: TEXT_OID }], // name (mapped by recent adapters already; kept for older ones)
  [22, { oid: TEXT_OID }], // int2vector
  [30, { oid: TEXT_OID }], // oidvector
  [194, { oid: TEXT_OID }], // pg_node_tree
  [2205, { oid: TEXT_OID }], // regclass
  [2206, { oid: TEXT_OID }], // regtype
  [1003, { oid: TEXT_ARRAY_OID }], // name[]
]);

/**
 * Column types to force, keyed by the rows array of a pg result: the adapter hands that very
 * array on in its result set, which is how the override finds its way past the adapter.
 * @type {WeakMap<object, Map<number, number>>}
 */
const columnTypeOverrides = new WeakMap();

/** @param {any} result one pg result */
function remapResult(result) {
  if (!result || !Array.isArray(result.fields)) return;
  /** @type {Map<number, number>} */
  const overrides = new Map();
  result.fields.forEach((/** @type {any} */ field, /** @type {number} */ column) => {
    const remap = CATALOG_TYPE_REMAP.get(field.dataTypeID);
    if (remap === undefined) return;
    field.dataTypeID = remap.oid;
    if (remap.columnType !== undefined) overrides.set(column, remap.columnType);
    if (remap.oid !== TEXT_ARRAY_OID || !Array.isArray(result.rows)) return;
    for (const row of result.rows) {
      const key = Array.isArray(row) ? column : field.name;
      if (typeof row[key] === 'string') row[key] = parsePgArray(row[key]);
    }
  });
  if (overrides.size > 0 && Array.isArray(result.rows)) columnTypeOverrides.set(result.rows, overrides);
}

/** @param {any} result a pg result, or an array of them for multi-statement queries */
function remapCatalogTypes(result) {
  if (Array.isArray(result)) result.forEach(remapResult);
  else remapResult(result);
  return result;
}

/**
 * Applies the column type overrides recorded for this result set.
 * @param {any} resultSet the adapter's SqlResultSet
 */
function applyColumnTypeOverrides(resultSet) {
  const overrides = resultSet && columnTypeOverrides.get(resultSet.rows);
  if (overrides) for (const [column, type] of overrides) resultSet.columnTypes[column] = type;
  return resultSet;
}

/**
 * A queryable (adapter or transaction) whose queryRaw results carry the column type overrides.
 * @param {any} queryable
 */
function withCatalogColumnTypes(queryable) {
  const wrapped = Object.create(queryable);
  wrapped.queryRaw = async (/** @type {any} */ query) => applyColumnTypeOverrides(await queryable.queryRaw(query));
  return wrapped;
}

/** pg client whose results report catalog types as text. */
export class CatalogTypesClient extends pg.Client {
  /**
   * @param {any} config
   * @param {any} [values]
   * @param {any} [callback]
   * @returns {any}
   */
  query(config, values, callback) {
    if (config && typeof config.submit === 'function') return super.query(config, values, callback);
    if (typeof values === 'function') {
      callback = values;
      values = undefined;
    }
    const mapped = /** @type {Promise<any>} */ (super.query(config, values)).then(remapCatalogTypes);
    if (typeof callback !== 'function') return mapped;
    mapped.then(
      (result) => callback(null, result),
      (error) => callback(error),
    );
    return undefined;
  }
}

/**
 * The adapter with `executeScript` sending the script whole, and catalog column types fixed up.
 * @param {any} adapter a PrismaPgAdapter
 */
function withWholeScripts(adapter) {
  const wrapped = withCatalogColumnTypes(adapter);
  wrapped.startTransaction = async (/** @type {any} */ isolationLevel) =>
    withCatalogColumnTypes(await adapter.startTransaction(isolationLevel));
  wrapped.executeScript = async (/** @type {string} */ script) => {
    try {
      await adapter.underlyingDriver().query(script);
    } catch (error) {
      adapter.onError(error);
    }
  };
  return wrapped;
}

/**
 * A SqlMigrationAwareDriverAdapterFactory over @prisma/adapter-pg.
 * @param {{ url: string, shadowDatabaseUrl?: string }} datasource
 */
export function createMigrationAdapterFactory(datasource) {
  /** @type {Set<pg.Pool>} */
  const pools = new Set();
  const shadows = createShadowDatabases(datasource);
  /** @type {unknown[]} errors of connectToShadowDb, oldest first (the engine may swallow them) */
  const shadowErrors = [];

  /** @param {pg.PoolConfig} config */
  const pool = (config) => {
    const created = new pg.Pool({ max: 4, ...config, Client: CatalogTypesClient });
    created.on('error', () => {});
    pools.add(created);
    return created;
  };

  /**
   * @param {string} url
   * @param {() => Promise<void>} [afterDispose]
   */
  const connectTo = async (url, afterDispose = async () => {}) => {
    const owned = pool({ connectionString: url });
    const adapter = await new PrismaPg(owned).connect();
    const dispose = adapter.dispose.bind(adapter);
    const wrapped = withWholeScripts(adapter);
    wrapped.dispose = async () => {
      try {
        await dispose();
        pools.delete(owned);
        await owned.end();
      } finally {
        await afterDispose();
      }
    };
    return wrapped;
  };

  const factory = {
    provider: /** @type {const} */ ('postgres'),
    adapterName: '@prisma/adapter-pg',
    connect: () => connectTo(datasource.url),
    async connectToShadowDb() {
      try {
        const shadow = await shadows.acquire();
        try {
          return await connectTo(shadow.url, shadow.release);
        } catch (error) {
          await shadow.release();
          throw error;
        }
      } catch (error) {
        shadowErrors.push(error);
        throw error;
      }
    },
  };

  /** Closes every pool, then drops the shadow databases still alive. */
  const close = async () => {
    await Promise.allSettled([...pools].map((p) => p.end()));
    pools.clear();
    await shadows.dropAll();
  };

  return {
    factory,
    close,
    /** The errors connectToShadowDb threw so far, and forgets them. */
    takeShadowErrors: () => shadowErrors.splice(0),
  };
}
