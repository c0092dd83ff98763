// Prisma CLI configuration (Prisma 7 reads the datasource from here, not from schema.prisma).
// The CLI's schema engine is our WebAssembly shim: the root db:* scripts set
// PRISMA_SCHEMA_ENGINE_BINARY=packages/db/schema-engine/schema-engine.mjs (see packages/db/README.md).
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    url: process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/rehyat',
  },
});
