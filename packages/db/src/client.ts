import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client.js';

/** Options of {@link createPrismaClient}. */
export interface PrismaClientOptions {
  /** `postgresql://user:password@host:port/database`. */
  databaseUrl: string;
  /**
   * Connections in the pg pool behind the client.
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
 * A Prisma client on the engine-free runtime, talking to PostgreSQL through @prisma/adapter-pg.
 * No connection is opened until the first query; close it with `$disconnect()`.
 */
export function createPrismaClient(options: PrismaClientOptions): PrismaClient {
  const adapter = new PrismaPg({
    connectionString: options.databaseUrl,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
  });
  return new PrismaClient({ adapter });
}
