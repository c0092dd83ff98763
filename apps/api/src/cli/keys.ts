#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createPrismaClient } from '@rehyat/db';
import { ConfigError, hostPort, loadConfig } from '../config.js';
import { ApiKeyService, type ApiKeyRole } from '../services/api-key-service.js';
import { AnnounceError, cliAnnouncer } from './announce.js';

const USAGE = `usage: rehyat-keys <command>

  create --name <name> [--role user|admin] [--rate-limit-rpm N] [--max-active-videos N]
         creates a key and prints its secret ONCE (only its hash is stored)
  list [--all]    keys (id, prefix, name, role, created, last used); --all includes revoked ones
  revoke <key_id | rh_prefix>

Reads DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/rehyat). revoke also announces
the revocation on Redis (REDIS_URL, REDIS_PREFIX), so every running API instance refuses the key
at once; it fails (exit 1) if it could not, and may simply be run again.`;

function fail(message: string): never {
  process.stderr.write(`rehyat-keys: ${message}\n`);
  process.exit(1);
}

function optionalInt(value: string | undefined, name: string): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) fail(`--${name} must be a positive integer`);
  return n;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (!command || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const prisma = createPrismaClient({ databaseUrl: config.DATABASE_URL });
  const announcer = cliAnnouncer(config);
  const keys = new ApiKeyService(prisma, { announceChange: announcer.announce });
  try {
    if (command === 'create') {
      const { values } = parseArgs({
        args: rest,
        options: {
          name: { type: 'string' },
          role: { type: 'string', default: 'user' },
          'rate-limit-rpm': { type: 'string' },
          'max-active-videos': { type: 'string' },
        },
      });
      if (!values.name) fail('create needs --name <name>');
      if (values.role !== 'user' && values.role !== 'admin') fail('--role must be user or admin');
      const key = await keys.create({
        name: values.name,
        role: values.role as ApiKeyRole,
        rateLimitRpm: optionalInt(values['rate-limit-rpm'], 'rate-limit-rpm'),
        maxActiveVideos: optionalInt(values['max-active-videos'], 'max-active-videos'),
      });
      process.stderr.write(`created ${key.id} (${key.role}) "${key.name}". The secret is shown only now:\n`);
      process.stdout.write(`${key.secret}\n`);
    } else if (command === 'list') {
      const { values } = parseArgs({ args: rest, options: { all: { type: 'boolean', default: false } } });
      const rows = await keys.list({ includeRevoked: values.all });
      for (const k of rows) {
        const state = k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active';
        const used = k.lastUsedAt ? k.lastUsedAt.toISOString() : 'never';
        process.stdout.write(`${k.id}\t${k.prefix}...\t${k.role}\t${state}\tcreated ${k.createdAt.toISOString()}\tlast used ${used}\t${k.name}\n`);
      }
      if (rows.length === 0) process.stderr.write('no keys\n');
    } else if (command === 'revoke') {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true, options: {} });
      if (positionals.length !== 1) fail('revoke needs exactly one key id (key_...) or prefix (rh_...)');
      const key = await keys.revoke(positionals[0]!);
      process.stdout.write(`revoked ${key.id} (${key.prefix}...) "${key.name}"\n`);
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
