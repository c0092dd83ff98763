export * from './generated/prisma/client.js';
export { createPrismaClient, type PrismaClientOptions } from './client.js';
export { checkDatabase, databaseAddress, DatabaseUnreachableError, type CheckDatabaseOptions } from './check-database.js';
