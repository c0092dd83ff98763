export * from './generated/prisma/client.js';
export { createPgPool, createPrismaClient, type PgPool, type PgPoolOptions, type PrismaClientOptions } from './client.js';
export { insertVideos, type NewVideoRow } from './video-insert.js';
export { checkDatabase, databaseAddress, DatabaseUnreachableError, type CheckDatabaseOptions } from './check-database.js';
