import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
// @ts-expect-error plain ESM script without type declarations
import { shadowDatabasePattern } from '../schema-engine/shadow-database.mjs';
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
export function runPrisma(args: string[], databaseUrl: string, env: Record<string, string> = {}): Promise<RunResult> {
  return runNode(PRISMA_CLI as string, args, { DATABASE_URL: databaseUrl, ...env });
}

/** Environment variables by which the Prisma CLI takes itself for CI, hence non-interactive. */
const CI_VARIABLES = /^(CI|CONTINUOUS_INTEGRATION|BUILD_NUMBER|BUILD_ID|RUN_ID|TASK_ID|GITHUB_ACTIONS|GITLAB_CI|GITEA_ACTIONS|JENKINS_URL|HUDSON|TEAMCITY_VERSION|TRAVIS|CIRCLECI|BUILDKITE|DRONE|APPVEYOR|CODEBUILD|TF_BUILD|BITBUCKET_COMMIT|SEMAPHORE|NETLIFY|RENDER|CI_NAME|NOW_BUILDER|VELA|HARNESS_BUILD_ID|CF_BUILD_ID|CM_BUILD_ID|EAS_BUILD|EARTHLY_CI|SOURCEHUT|SCREWDRIVER|STRIDER|SAILCI|PROW_JOB_ID|GOCD|GERRIT_PROJECT|LAYERCI|MAGNUM|NEVERCODE|RELEASE_BUILD_ID|BUILDER_OUTPUT|DSARI|BITRISE_IO|BUDDY_WORKSPACE_ID|CIRRUS_CI|AGOLA_GIT_REF|AC_APPCIRCLE|APPCENTER_BUILD_ID|CI_XCODE_PROJECT|XCS|bamboo_planKey)$/;

/** Whether util-linux `script` can give a command a pseudo-terminal here. */
export async function canUseTerminal(): Promise<boolean> {
  const probe = await new Promise<number>((resolve) => {
    const child = spawn('script', ['-qec', 'test -t 0', '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.once('error', () => resolve(1));
    child.once('close', (code) => resolve(code ?? 1));
    child.stdin.end();
  });
  return probe === 0;
}

/** What {@link runPrismaInTerminal} types, and when. */
export interface TerminalAnswer {
  /** Typed once the output so far matches. */
  prompt: RegExp;
  /** The keys to type, e.g. `y` for a yes/no question. */
  answer: string;
  /** More environment for the CLI. */
  env?: Record<string, string>;
}

/**
 * The Prisma CLI in a pseudo-terminal (util-linux `script`), as a developer runs it, not in CI:
 * `answer` is typed once the output matches `prompt`. The output comes back without ANSI
 * escapes; a CLI still running after two minutes (waiting on an unexpected question) is killed.
 */
export function runPrismaInTerminal(args: string[], databaseUrl: string, { prompt, answer, env: extra = {} }: TerminalAnswer): Promise<RunResult & { answered: boolean }> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(prismaEnv({ DATABASE_URL: databaseUrl, TERM: 'xterm', ...extra }) as Record<string, string | undefined>)) {
    if (value !== undefined && !CI_VARIABLES.test(name)) env[name] = value;
  }
  const quote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, PRISMA_CLI as string, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: REPO_ROOT as string, env });
    const stuck = setTimeout(() => child.kill('SIGTERM'), 120_000);
    let stdout = '';
    let stderr = '';
    let answered = false;
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (!answered && prompt.test(stdout)) {
        answered = true;
        child.stdin.write(answer);
      }
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(stuck);
      const plain = (text: string) => text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
      resolve({ code: code ?? 1, stdout: plain(stdout), stderr: plain(stderr), answered });
    });
  });
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

/** Names of the shadow databases our schema engine has made for the database `mainDatabase` and not dropped. */
export async function shadowDatabases(mainDatabase: string): Promise<string[]> {
  const rows = await query<{ datname: string }>(SERVER_URL, 'SELECT datname FROM pg_database WHERE datname LIKE $1', [shadowDatabasePattern(mainDatabase)]);
  return rows.map((row) => row.datname).sort();
}

/**
 * The shadow databases of `mainDatabase` still there once the engines are done: the CLI exits
 * right after SIGTERMing its engine, which drops them on its way out, so this polls a while
 * (up to 15 s) before answering.
 */
export async function shadowDatabasesLeft(mainDatabase: string): Promise<string[]> {
  let left = await shadowDatabases(mainDatabase);
  for (let attempt = 0; attempt < 30 && left.length > 0; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    left = await shadowDatabases(mainDatabase);
  }
  return left;
}

/** A throwaway copy of the repository's prisma/ folder with a Prisma config of its own. */
export interface TempProject {
  dir: string;
  /** Pass as `--config` to the CLI; its datasource is `DATABASE_URL` (and `SHADOW_DATABASE_URL` when set). */
  config: string;
  schema: string;
  migrations: string;
  remove(): Promise<void>;
}

/** Copies prisma/schema.prisma and prisma/migrations to a temporary folder, so tests never touch the repository's. */
export async function createTempProject(): Promise<TempProject> {
  const dir = await mkdtemp(join(tmpdir(), 'rehyat-db-project-'));
  await cp(join(REPO_ROOT as string, 'prisma'), join(dir, 'prisma'), { recursive: true });
  const config = join(dir, 'prisma.config.mjs');
  await writeFile(
    config,
    [
      '// Written by packages/db/test/support.ts: the repository\'s prisma.config.ts on a copy of prisma/.',
      'export default {',
      "  schema: new URL('./prisma/schema.prisma', import.meta.url).pathname,",
      "  migrations: { path: new URL('./prisma/migrations', import.meta.url).pathname },",
      '  datasource: {',
      '    url: process.env.DATABASE_URL,',
      '    ...(process.env.SHADOW_DATABASE_URL ? { shadowDatabaseUrl: process.env.SHADOW_DATABASE_URL } : {}),',
      '  },',
      '};',
      '',
    ].join('\n'),
  );
  return {
    dir,
    config,
    schema: join(dir, 'prisma', 'schema.prisma'),
    migrations: join(dir, 'prisma', 'migrations'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
