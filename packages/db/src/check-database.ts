import pg from 'pg';

/** The database server could not be reached (or refused the connection). */
export class DatabaseUnreachableError extends Error {
  readonly code = 'database_unreachable';
  /** `host:port` that was tried. */
  readonly address: string;

  constructor(address: string, cause: unknown) {
    const reason = describeCause(cause);
    super(`PostgreSQL is not reachable at ${address}: ${reason}`, { cause });
    this.name = 'DatabaseUnreachableError';
    this.address = address;
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof AggregateError && cause.errors.length > 0) return describeCause(cause.errors[0]);
  if (cause instanceof Error) return cause.message || (cause as { code?: string }).code || cause.name;
  return String(cause);
}

/** `host:port` of a PostgreSQL URL, with the libpq defaults filled in. */
export function databaseAddress(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
}

/** Options of {@link checkDatabase}. */
export interface CheckDatabaseOptions {
  /**
   * How long to wait for the server, in milliseconds.
   * @defaultValue 5000
   */
  timeoutMs?: number;
}

/**
 * Connects once and runs `SELECT 1`. Throws {@link DatabaseUnreachableError} with the message
 * `PostgreSQL is not reachable at <host:port>: <cause>` when the server is down, refuses the
 * login, or the database does not exist. Use it at boot and in readiness probes.
 */
export async function checkDatabase(url: string, options: CheckDatabaseOptions = {}): Promise<void> {
  const address = databaseAddress(url);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: options.timeoutMs ?? 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new DatabaseUnreachableError(address, error);
  } finally {
    await client.end().catch(() => {});
  }
}
