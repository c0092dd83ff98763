#!/usr/bin/env node
// @ts-check
/**
 * Runs the pinned Prisma CLI offline: from the repository root (where prisma.config.ts is), with
 * PRISMA_SCHEMA_ENGINE_BINARY pointing at our WebAssembly schema engine
 * (packages/db/schema-engine/schema-engine.mjs) and Prisma's update check and telemetry off.
 * Usage: node packages/db/scripts/prisma.mjs <prisma arguments...>
 * After a successful `migrate dev` it also runs `generate` (Prisma 7's migrate dev no longer does),
 * so the committed client in packages/db/src/generated follows the schema.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** Repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Our schema engine, for PRISMA_SCHEMA_ENGINE_BINARY. */
export const SCHEMA_ENGINE = fileURLToPath(new URL('../schema-engine/schema-engine.mjs', import.meta.url));

/** The Prisma CLI entry point of the installed, pinned `prisma` package. */
export const PRISMA_CLI = join(dirname(require.resolve('prisma/package.json')), 'build', 'index.js');

/** Environment for a Prisma CLI child process. */
export function prismaEnv(extra = {}) {
  return {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? SCHEMA_ENGINE,
    CHECKPOINT_DISABLE: '1',
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    ...extra,
  };
}

/**
 * Runs the Prisma CLI and resolves with its exit code.
 * @param {string[]} args
 * @param {{ env?: Record<string, string>, stdio?: import('node:child_process').StdioOptions }} [options]
 * @returns {Promise<number>}
 */
export function runPrisma(args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PRISMA_CLI, ...args], {
      cwd: REPO_ROOT,
      env: prismaEnv(options.env),
      stdio: options.stdio ?? 'inherit',
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  let code = await runPrisma(args);
  if (code === 0 && args[0] === 'migrate' && args[1] === 'dev') code = await runPrisma(['generate']);
  process.exitCode = code;
}
