import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { hashApiKey, publishApiKeyChange } from '../src/api-keys.js';
import { buildApp } from '../src/app.js';
import { ApiKeyCache, type ApiKeyRecord } from '../src/services/api-key-cache.js';
import { REDIS_URL, startStack, type Stack } from './helpers.js';

const run = promisify(execFile);
const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));
const cliPath = (name: string) => fileURLToPath(new URL(`../src/cli/${name}.ts`, import.meta.url));

let stack: Stack;
/** A second API instance on the same database and Redis prefix (another replica). */
let replica: FastifyInstance;
let replicaURL: string;

before(async () => {
  stack = await startStack();
  replica = await buildApp({ config: stack.config });
  await replica.listen({ host: '127.0.0.1', port: 0 });
  replicaURL = `http://127.0.0.1:${(replica.server.address() as { port: number }).port}/v1`;
  await until(() => stack.app.apiKeys.cache.live && replica.apiKeys.cache.live, 'both key caches subscribed');
});
after(async () => {
  await replica?.close();
  await stack?.close();
});

async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const list = (baseURL: string, secret: string) => fetch(`${baseURL}/videos`, { headers: { authorization: `Bearer ${secret}` } });

describe('API key cache', () => {
  test('a revoked key is refused at once by every instance that had it cached', async () => {
    for (let round = 0; round < 5; round++) {
      const { keyId, secret } = await stack.client(`replicated-${round}`);
      for (const base of [stack.baseURL, replicaURL]) assert.equal((await list(base, secret)).status, 200);
      assert.ok(stack.app.apiKeys.cache.size >= 1 && replica.apiKeys.cache.size >= 1, 'both instances cached the key');
      await stack.keys.revoke(keyId); // commits, announces, waits for both instances to confirm
      for (const base of [stack.baseURL, replicaURL]) {
        const res = await list(base, secret);
        assert.equal(res.status, 401, `round ${round}`);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
      }
    }
  });

  test('an announcement resolves once every subscribed instance confirmed it', async () => {
    assert.deepEqual(await stack.app.apiKeys.announceChange('key_nothing'), { instances: 2, confirmed: 2 });
  });

  test('the keys CLI announces a revocation: a running instance refuses the key at once', async () => {
    const { keyId, secret } = await stack.client('cli-revoked');
    assert.equal((await list(replicaURL, secret)).status, 200);
    const out = await run(tsx, ['--conditions=development', cliPath('keys'), 'revoke', keyId], { env: cliEnv() });
    assert.match(out.stdout, new RegExp(`revoked ${keyId}`));
    assert.equal((await list(replicaURL, secret)).status, 401);
    assert.equal((await list(stack.baseURL, secret)).status, 401);
  });

  test('the limits CLI announces a change: the new rate limit applies at once', async () => {
    const { keyId, secret } = await stack.client('cli-limits');
    const before = await list(replicaURL, secret);
    assert.equal(before.status, 200);
    assert.equal(before.headers.get('x-ratelimit-limit-requests'), null); // RATE_LIMIT_RPM=0: unlimited
    await run(tsx, ['--conditions=development', cliPath('limits'), 'set', keyId, '--rpm', '7'], { env: cliEnv() });
    assert.equal((await list(replicaURL, secret)).headers.get('x-ratelimit-limit-requests'), '7');
    assert.equal((await list(stack.baseURL, secret)).headers.get('x-ratelimit-limit-requests'), '7');
  });

  test('while its subscription is down an instance reads every key from the database (an unannounced revocation is seen)', async () => {
    const { keyId, secret } = await stack.client('subscriber-down');
    assert.equal((await list(replicaURL, secret)).status, 200);
    const admin = new Redis(REDIS_URL);
    try {
      const clients = await admin.client('LIST');
      const name = `${stack.config.REDIS_PREFIX}:api-keys`;
      const ids = String(clients)
        .split('\n')
        .filter((l) => l.includes(` name=${name} `))
        .map((l) => /(?:^|\s)id=(\d+)/.exec(l)?.[1]);
      assert.ok(ids.length >= 2, 'both instances named their subscriber connection');
      for (const id of ids) await admin.client('KILL', 'ID', id!);
      await until(() => !replica.apiKeys.cache.live, 'the replica noticed');
      // Revoked behind the API's back (no announcement): only a database read can see it.
      await stack.app.prisma.apiKey.update({ where: { id: keyId }, data: { revokedAt: new Date() } });
      assert.equal((await list(replicaURL, secret)).status, 401);
      await until(() => stack.app.apiKeys.cache.live && replica.apiKeys.cache.live, 'both resubscribed');
      assert.equal((await list(replicaURL, secret)).status, 401);
    } finally {
      admin.disconnect();
    }
  });

  test('a lookup in flight when an announcement arrives is not cached', async () => {
    const subscriber = new Redis(REDIS_URL, { lazyConnect: true, autoResubscribe: false });
    const prefix = `keycache-${randomBytes(4).toString('hex')}`;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const row: ApiKeyRecord = { id: 'key_race', role: 'user', revokedAt: null, lastUsedAt: null, rateLimitRpm: null, maxActiveVideos: null };
    let loads = 0;
    let announced = 0;
    const cache = new ApiKeyCache({
      ttlMs: 60_000,
      prefix,
      subscriber,
      acknowledge: () => void (announced += 1),
      load: async () => {
        loads++;
        await gate;
        return row;
      },
    });
    cache.start();
    const publisher = new Redis(REDIS_URL);
    try {
      await until(() => cache.live, 'subscribed');
      const pending = cache.get(hashApiKey('x'));
      await until(() => loads === 1, 'load started');
      await publishApiKeyChange(publisher, prefix, 'key_race');
      await until(() => announced === 1, 'the announcement handled');
      release();
      assert.equal((await pending)?.id, 'key_race');
      assert.equal(cache.size, 0, 'the pre-announcement row was not cached');
      await cache.get(hashApiKey('x'));
      assert.equal(cache.size, 1);
      await cache.get(hashApiKey('x'));
      assert.equal(loads, 2, 'the second lookup was served from memory');
    } finally {
      await cache.close();
      publisher.disconnect();
    }
  });

  test('API_KEY_CACHE_TTL_MS=0: no caching, every request reads the key', async () => {
    const app = await buildApp({ config: { ...stack.config, API_KEY_CACHE_TTL_MS: 0 } });
    try {
      const key = await stack.keys.create({ name: 'uncached' });
      const auth = { authorization: `Bearer ${key.secret}` };
      assert.equal((await app.inject({ url: '/v1/videos', headers: auth })).statusCode, 200);
      assert.equal(app.apiKeys.cache.size, 0);
      await app.prisma.apiKey.update({ where: { id: key.id }, data: { revokedAt: new Date() } });
      assert.equal((await app.inject({ url: '/v1/videos', headers: auth })).statusCode, 401);
    } finally {
      await app.close();
    }
  });
});

function cliEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: stack.config.DATABASE_URL,
    REDIS_URL: stack.config.REDIS_URL,
    REDIS_PREFIX: stack.config.REDIS_PREFIX,
  };
}
