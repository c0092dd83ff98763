#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createPrismaClient } from '@rehyat/db';
import { ConfigError, hostPort, loadConfig, type Config } from '../config.js';
import { AnnounceError, cliAnnouncer } from './announce.js';

const USAGE = `usage: rehyat-limits <command>

  show [<key_id>]     limits of one key, or of every key, and the server defaults
  set <key_id> [--rpm N|default] [--max-active-videos N|default]
                      sets a key's requests per minute and concurrently active videos;
                      "default" clears the override (the server default applies); 0 = unlimited

Changes are announced on Redis (REDIS_URL, REDIS_PREFIX) and apply at once on every API
instance; set fails (exit 1) if it could not announce, and may simply be run again. Reads
DATABASE_URL, RATE_LIMIT_RPM and MAX_ACTIVE_VIDEOS (the defaults shown).`;

function fail(message: string): never {
  process.stderr.write(`rehyat-limits: ${message}\n`);
  process.exit(1);
}

/** `undefined`: leave as is; `null`: back to the default; else a non-negative integer. */
function parseLimit(value: string | undefined, name: string): number | null | undefined {
  if (value === undefined) return undefined;
  if (value === 'default') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer or "default"`);
  return n;
}

function describe(k: { id: string; name: string; rateLimitRpm: number | null; maxActiveVideos: number | null }, config: Config): string {
  const show = (v: number | null, def: number): string => (v === null ? `${def === 0 ? 'unlimited' : def} (default)` : v === 0 ? 'unlimited' : String(v));
  return `${k.id}\trpm ${show(k.rateLimitRpm, config.RATE_LIMIT_RPM)}\tmax active videos ${show(k.maxActiveVideos, config.MAX_ACTIVE_VIDEOS)}\t${k.name}`;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (!command || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const prisma = createPrismaClient({ databaseUrl: config.DATABASE_URL });
  const announcer = cliAnnouncer(config);
  const select = { id: true, name: true, rateLimitRpm: true, maxActiveVideos: true } as const;
  try {
    if (command === 'show') {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      const rows = positionals.length
        ? await prisma.apiKey.findMany({ where: { id: { in: positionals } }, select })
        : await prisma.apiKey.findMany({ where: { revokedAt: null }, select, orderBy: { createdAt: 'asc' } });
      if (positionals.length && rows.length !== positionals.length) fail(`no such key: ${positionals.filter((p) => !rows.some((r) => r.id === p)).join(', ')}`);
      for (const k of rows) process.stdout.write(`${describe(k, config)}\n`);
      if (rows.length === 0) process.stderr.write('no keys\n');
    } else if (command === 'set') {
      const { positionals, values } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { rpm: { type: 'string' }, 'max-active-videos': { type: 'string' } },
      });
      if (positionals.length !== 1) fail('set needs exactly one key id (key_...)');
      const rpm = parseLimit(values.rpm, 'rpm');
      const maxActive = parseLimit(values['max-active-videos'], 'max-active-videos');
      if (rpm === undefined && maxActive === undefined) fail('set needs --rpm and/or --max-active-videos');
      const found = await prisma.apiKey.findUnique({ where: { id: positionals[0]! }, select: { id: true } });
      if (!found) fail(`no such key: ${positionals[0]}`);
      const k = await prisma.apiKey.update({
        where: { id: positionals[0]! },
        data: { ...(rpm === undefined ? {} : { rateLimitRpm: rpm }), ...(maxActive === undefined ? {} : { maxActiveVideos: maxActive }) },
        select,
      });
      process.stdout.write(`${describe(k, config)}\n`);
      await announcer.announce(k.id);
    } else {
      fail(`unknown command "${command}"\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof AnnounceError) fail(err.message);
    const msg = err instanceof Error ? err.message : String(err);
    if (/ECONNREFUSED|connect|Can't reach/i.test(msg)) fail(`cannot reach PostgreSQL at ${hostPort(config.DATABASE_URL, 5432)}: ${msg}`);
    fail(msg);
  } finally {
    announcer.close();
    await prisma.$disconnect();
  }
}

void main();
