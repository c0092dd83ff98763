export { createTestDatabase, type TestDatabase, type TestDatabaseOptions } from './test-database.js';
export { applyMigrations, listMigrations, MIGRATIONS_DIR } from './migrations.js';
