#!/usr/bin/env node
// @ts-check
/**
 * A schema engine for the Prisma CLI that needs no native binary: Prisma's WebAssembly schema
 * engine over @prisma/adapter-pg, behind the command line and JSON-RPC protocol the CLI speaks
 * to the native `schema-engine` binary. Point PRISMA_SCHEMA_ENGINE_BINARY at this file.
 *
 *   schema-engine --version
 *   schema-engine --datasource '{"url":"postgresql://..."}' cli can-connect-to-database|create-database|drop-database
 *   schema-engine [--datamodels <schema.prisma>]... [--datasource <json>]   (JSON-RPC 2.0, one message per line on stdin/stdout)
 *
 * Logs go to stderr as JSON lines in the native engine's shape, which the CLI reads for errors.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import { canConnectToDatabase, createDatabase, dropDatabase, EngineUserError, toUserError } from './database-admin.mjs';
import { createMigrationAdapterFactory } from './pg-adapter-factory.mjs';
import { isWasmPanic, loadSchemaEngineWasm, panicRegistry } from './wasm-engine.mjs';

/**
 * @param {'INFO' | 'ERROR' | 'DEBUG'} level
 * @param {string} message
 * @param {Record<string, unknown>} [fields]
 */
function log(level, message, fields = {}) {
  const line = { timestamp: new Date().toISOString(), level, fields: { message, ...fields }, target: 'schema_engine::logger' };
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

/**
 * @param {string[]} argv
 */
function parseArgs(argv) {
  /** @type {{ version: boolean, datamodels: string[], datasource?: { url?: string, shadowDatabaseUrl?: string }, cli?: string }} */
  const args = { version: false, datamodels: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--version' || arg === '-V') args.version = true;
    else if (arg === '--datamodels') args.datamodels.push(String(argv[++i]));
    else if (arg === '--datasource') args.datasource = JSON.parse(String(argv[++i]));
    else if (arg === '--enabled-preview-features' || arg === '--extension-types') i++;
    else if (arg === 'cli') args.cli = argv[++i];
    else throw new Error(`schema-engine: unknown argument ${arg}`);
  }
  return args;
}

/** @param {{ url?: string }} [datasource] */
function requireUrl(datasource) {
  if (!datasource?.url) {
    throw new EngineUserError('P1012', 'No datasource url: set DATABASE_URL (prisma.config.ts passes it to the schema engine).');
  }
  return datasource.url;
}

/** @param {ReturnType<typeof parseArgs>} args */
async function runCliCommand(args) {
  const url = requireUrl(args.datasource);
  // The CLI skips the first stderr line of a `cli` command before looking for the error line.
  log('INFO', `Starting schema engine CLI command ${args.cli}`);
  try {
    switch (args.cli) {
      case 'can-connect-to-database':
        await canConnectToDatabase(url);
        break;
      case 'create-database':
        log('INFO', `Database '${await createDatabase(url)}' created successfully.`);
        break;
      case 'drop-database':
        await dropDatabase(url);
        break;
      default:
        throw new EngineUserError('P1012', `schema-engine: unknown cli command ${args.cli}`);
    }
  } catch (error) {
    const user = error instanceof EngineUserError ? error : toUserError(error, url);
    log('ERROR', user.message, { error_code: user.code });
    process.exitCode = 1;
  }
}

/** @param {unknown} error */
function toRpcError(error) {
  const base = { code: 4466, message: 'An error happened. Check the data field for details.' };
  if (isWasmPanic(error)) {
    const err = /** @type {Error} */ (error);
    return { ...base, data: { is_panic: true, message: panicRegistry.get() || err.message, backtrace: err.stack ?? null } };
  }
  const err = /** @type {{ message?: string, code?: string, meta?: unknown }} */ (error ?? {});
  const message = err.message ?? String(error);
  if (typeof err.code === 'string' && err.code !== '') {
    return { ...base, data: { is_panic: false, message, error_code: err.code, meta: err.meta ?? {} } };
  }
  return { ...base, data: { is_panic: false, message, backtrace: null } };
}

/**
 * Drops the shadow databases still alive and closes the pools; set while JSON-RPC is served, so
 * that a crash cleans up too.
 * @type {() => Promise<void>}
 */
let cleanUp = async () => {};

/** The engine's message when it needs a shadow database outside the adapter factory's reach. */
const NO_SHADOW_FACTORY = 'shadow DB must be provided through an external factory';

/** @param {unknown} error */
function isMissingShadowDb(error) {
  const message = /** @type {{ message?: unknown }} */ (error ?? {}).message;
  return typeof message === 'string' && message.includes(NO_SHADOW_FACTORY);
}

/** @param {ReturnType<typeof parseArgs>} args */
async function serveJsonRpc(args) {
  const datasource = args.datasource ?? {};
  const { factory, close, takeShadowErrors } = createMigrationAdapterFactory({
    url: datasource.url ?? '',
    ...(datasource.shadowDatabaseUrl ? { shadowDatabaseUrl: datasource.shadowDatabaseUrl } : {}),
  });
  const boundFactory = bindMigrationAwareSqlAdapterFactory(/** @type {any} */ (factory));
  const wasm = await loadSchemaEngineWasm();
  const datamodels = args.datamodels.length > 0 ? args.datamodels.map((path) => [path, readFileSync(path, 'utf8')]) : undefined;
  // The engine connects while it starts. A failure there (server down, database missing) is
  // the answer to every request, as with the native engine: exiting instead would leave the
  // CLI waiting on a request nobody answers, and it then exits 0 without a word.
  /** @type {any} */
  let engine;
  /** @type {unknown} */
  let startError;
  try {
    engine = await wasm.SchemaEngine.new({ datamodels }, (/** @type {string} */ line) => log('DEBUG', line), boundFactory);
  } catch (error) {
    startError = lookupAdapterError(boundFactory, error);
    const { message } = /** @type {{ message?: string }} */ (startError ?? {});
    log('ERROR', message ?? String(startError));
  }

  /** @param {unknown} message */
  const send = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

  let nextOwnId = 1;
  /** @type {Map<number, () => void>} */
  const pendingOwn = new Map();
  /** Asks the CLI to print text on its stdout (the native engine's `print` request). */
  const print = (/** @type {string} */ content) =>
    new Promise((resolve) => {
      const id = nextOwnId++;
      pendingOwn.set(id, () => resolve(undefined));
      send({ jsonrpc: '2.0', id, method: 'print', params: { content } });
    });

  /**
   * `evaluateDataLoss` and `createMigration` take the schema the migrations produce from the
   * engine's cache of such schemas, keyed by the migration list. Only `diagnoseMigrationHistory`
   * (and `devDiagnostic`, which runs it) fill that cache, for the migrations *applied to the
   * database*, replayed on a shadow database from the adapter factory. On a miss (in `migrate
   * dev`: the database was behind when devDiagnostic ran, and the CLI applied the rest since)
   * the two take a code path that, in the wasm engine, has no shadow database, and fail with
   * "PostgreSQL shadow DB must be provided through an external factory". Then a
   * diagnoseMigrationHistory of the same list fills the cache (every migration is applied by
   * now) and the request runs again.
   * @param {'evaluateDataLoss' | 'createMigration'} method
   * @param {any} params
   */
  const withMigrationSchema = async (method, params) => {
    try {
      return await engine[method](params);
    } catch (error) {
      if (!isMissingShadowDb(error) || !params?.migrationsList) throw error;
    }
    takeShadowErrors();
    await engine.diagnoseMigrationHistory({
      migrationsList: params.migrationsList,
      optInToShadowDatabase: true,
      filters: params.filters ?? { externalTables: [], externalEnums: [] },
    });
    try {
      return await engine[method](params);
    } catch (error) {
      if (!isMissingShadowDb(error)) throw error;
      // diagnoseMigrationHistory keeps shadow database errors to itself: report the last one.
      const shadowError = takeShadowErrors().at(-1);
      if (shadowError !== undefined) throw shadowError;
      throw new Error(
        `schema-engine (wasm): ${method} could not get the schema of the migrations from a shadow database. The wasm engine replays them there only once every one of them is applied to the database: apply them first (prisma migrate deploy).`,
        { cause: error },
      );
    }
  };

  /**
   * @param {string} method
   * @param {any} params
   */
  const handle = async (method, params) => {
    if (startError !== undefined) throw startError;
    switch (method) {
      case 'getDatabaseVersion':
      case 'version':
        return engine.version(params ?? undefined);
      case 'createDatabase': {
        const url = params?.datasource?.tag === 'ConnectionString' ? params.datasource.url : requireUrl(datasource);
        return { databaseName: await createDatabase(url) };
      }
      case 'diff': {
        const { stdout, ...rest } = await engine.diff(params);
        if (stdout) await print(stdout.endsWith('\n') ? stdout.slice(0, -1) : stdout);
        return rest;
      }
      case 'debugPanic':
        return engine.debugPanic();
      case 'evaluateDataLoss':
      case 'createMigration':
        return (await withMigrationSchema(method, params)) ?? {};
      case 'applyMigrations':
      case 'dbExecute':
      case 'devDiagnostic':
      case 'diagnoseMigrationHistory':
      case 'ensureConnectionValidity':
      case 'introspect':
      case 'introspectSql':
      case 'markMigrationApplied':
      case 'markMigrationRolledBack':
      case 'reset':
      case 'schemaPush': {
        const result = await engine[method](params);
        return result ?? {};
      }
      default:
        throw new EngineUserError('P1012', `schema-engine (wasm): method ${method} is not supported`);
    }
  };

  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    /** @type {any} */
    let message;
    try {
      message = JSON.parse(line);
    } catch {
      send({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
      return;
    }
    if (message.method === undefined) {
      pendingOwn.get(message.id)?.();
      pendingOwn.delete(message.id);
      return;
    }
    queue = queue.then(async () => {
      try {
        const result = await handle(message.method, message.params);
        send({ jsonrpc: '2.0', id: message.id, result: result ?? null });
      } catch (error) {
        const lookedUp = lookupAdapterError(boundFactory, error);
        send({ jsonrpc: '2.0', id: message.id, error: toRpcError(lookedUp) });
      }
    });
  });
  // The CLI ends stdin and sends SIGTERM right away when it is done: either way, drop the
  // shadow databases and close the pools before exiting.
  /** @type {Promise<void> | undefined} */
  let closing;
  const shutdown = () =>
    (closing ??= (async () => {
      try {
        engine?.free();
      } finally {
        await close();
      }
    })());
  cleanUp = shutdown;
  for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
    process.once(signal, () => {
      void shutdown().finally(() => process.exit(0));
    });
  }
  await new Promise((resolve) => lines.once('close', resolve));
  await queue;
  await shutdown();
}

/**
 * Errors thrown inside the adapter (or its factory) are kept in the bound factory's registry;
 * the engine reports them by id, as an `id` field or as `External error id#<n>` in its message
 * (after what it was doing, e.g. "Failed to connect to the shadow database"). Replace such an
 * engine error with the original one, its message prefixed with that context.
 * @param {any} boundFactory
 * @param {unknown} error
 */
function lookupAdapterError(boundFactory, error) {
  const id = /** @type {any} */ (error)?.id;
  if (typeof id === 'number') {
    const record = boundFactory.errorRegistry.consumeError(id);
    if (record?.error) return record.error;
  }
  const message = /** @type {{ message?: unknown }} */ (error ?? {}).message;
  const match = typeof message === 'string' ? /External error id#(\d+)/.exec(message) : null;
  if (match && typeof message === 'string') {
    const original = boundFactory.errorRegistry.consumeError(Number(match[1]))?.error;
    if (original !== undefined) {
      const context = message.slice(0, match.index).trim();
      const originalMessage = original instanceof Error ? original.message : String(original);
      const replaced = new Error(context ? `${context}: ${originalMessage}` : originalMessage, { cause: original });
      const code = /** @type {{ code?: unknown }} */ (original).code;
      // Prisma's own codes only (the CLI explains those); a pg SQLSTATE stays in the message.
      if (typeof code === 'string' && /^P\d{4}$/.test(code)) Object.assign(replaced, { code });
      return replaced;
    }
  }
  return error;
}

async function main() {
  process.on('uncaughtException', (error) => {
    const panic = isWasmPanic(error) ? panicRegistry.get() : '';
    log('ERROR', panic || (error instanceof Error ? (error.stack ?? error.message) : String(error)), { is_panic: isWasmPanic(error) });
    const deadline = new Promise((resolve) => setTimeout(resolve, 5000));
    void Promise.race([cleanUp().catch(() => {}), deadline]).finally(() => process.exit(101));
  });
  const args = parseArgs(process.argv.slice(2));
  if (args.version) {
    const wasm = await loadSchemaEngineWasm();
    process.stdout.write(`schema-engine-cli ${wasm.version()}\n`);
    return;
  }
  if (args.cli !== undefined) {
    await runCliCommand(args);
    return;
  }
  await serveJsonRpc(args);
}

main().catch((error) => {
  log('ERROR', error instanceof Error ? error.message : String(error), {
    ...(error instanceof EngineUserError ? { error_code: error.code } : {}),
  });
  process.exitCode = 1;
});
