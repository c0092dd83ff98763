import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from './generated/prisma/client.js';

/** A node-postgres connection pool (for the few hot paths that bypass Prisma, e.g. {@link insertVideos}). */
export type PgPool = pg.Pool;

/** Options of {@link createPgPool}. */
export interface PgPoolOptions {
  /** `postgresql://user:password@host:port/database`. */
  databaseUrl: string;
  /**
   * Connections in the pool.
   * @defaultValue 10
   */
  maxConnections?: number;
  /**
   * How long to wait for a connection before failing a query, in milliseconds.
   * @defaultValue 5000
   */
  connectionTimeoutMs?: number;
}

/**
 * A pg pool; no connection is opened until the first query. Idle-client errors (a restarted
 * server) are swallowed here: the next query reconnects or fails with its own error.
 */
export function createPgPool(options: PgPoolOptions): PgPool {
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
  });
  pool.on('error', () => undefined);
  return pool;
}

/** Options of {@link createPrismaClient}. */
export interface PrismaClientOptions {
  /** `postgresql://user:password@host:port/database`. */
  databaseUrl: string;
  /**
   * Connections in the pg pool behind the client (ignored with `pool`).
   * @defaultValue 10
   */
  maxConnections?: number;
  /**
   * How long to wait for a connection before failing a query, in milliseconds (ignored with `pool`).
   * @defaultValue 5000
   */
  connectionTimeoutMs?: number;
  /**
   * Run on this pool (shared with raw queries) instead of one of its own. `$disconnect()` does
   * not end it: its owner does.
   */
  pool?: PgPool;
}

/**
 * A Prisma client on the engine-free runtime, talking to PostgreSQL through @prisma/adapter-pg.
 * No connection is opened until the first query; close it with `$disconnect()`.
 */
export function createPrismaClient(options: PrismaClientOptions): PrismaClient {
  const adapter = options.pool
    ? new PrismaPg(options.pool)
    : new PrismaPg({
        connectionString: options.databaseUrl,
        max: options.maxConnections ?? 10,
        connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
      });
  return new PrismaClient({ adapter });
}
