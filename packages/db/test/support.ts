import { spawn } from 'node:child_process';
import pg from 'pg';
// @ts-expect-error plain ESM script without type declarations
import { PRISMA_CLI, REPO_ROOT, prismaEnv } from '../scripts/prisma.mjs';

export const SERVER_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a node script (the Prisma CLI by default) from the repository root and captures its output. */
export function runNode(script: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: REPO_ROOT as string, env: prismaEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The Prisma CLI with our schema engine, against `databaseUrl`. */
export function runPrisma(args: string[], databaseUrl: string): Promise<RunResult> {
  return runNode(PRISMA_CLI as string, args, { DATABASE_URL: databaseUrl });
}

/** Runs one query on `url` and returns the rows. */
export async function query<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

/** Names of the shadow databases our schema engine has on the server right now. */
export async function shadowDatabases(): Promise<string[]> {
  const rows = await query<{ datname: string }>(SERVER_URL, "SELECT datname FROM pg_database WHERE datname LIKE 'prisma\\_shadow\\_%'");
  return rows.map((row) => row.datname).sort();
}
