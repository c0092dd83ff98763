import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { closedPort, FIXTURE_MODELS_DIR, startStack, type Stack } from './helpers.js';

interface Readiness {
  status: string;
  message: string;
  checks: { name: string; ok: boolean; target: string; error: string | null }[];
}

describe('with every dependency up', () => {
  let stack: Stack;
  let origin: string;
  before(async () => {
    stack = await startStack();
    origin = stack.baseURL.replace(/\/v1$/, '');
  });
  after(() => stack.close());

  test('/healthz and /readyz answer 200', async () => {
    const health = await fetch(`${origin}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });
    const ready = await fetch(`${origin}/readyz`);
    const body = (await ready.json()) as Readiness;
    assert.equal(ready.status, 200, body.message);
    assert.equal(body.status, 'ready');
    assert.deepEqual(body.checks.map((c) => [c.name, c.ok]), [['database', true], ['redis', true], ['storage', true]]);
  });

  test('/openapi.json documents every route with its schemas; /docs serves Swagger UI', async () => {
    const doc = (await (await fetch(`${origin}/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, unknown> };
    };
    assert.match(doc.openapi, /^3\./);
    for (const [path, method] of [
      ['/v1/videos', 'post'],
      ['/v1/videos', 'get'],
      ['/v1/videos/{id}', 'get'],
      ['/v1/videos/{id}', 'delete'],
      ['/v1/videos/{id}/content', 'get'],
      ['/v1/videos/{id}/remix', 'post'],
      ['/v1/videos/extensions', 'post'],
      ['/v1/videos/{id}/cancel', 'post'],
      ['/readyz', 'get'],
    ] as const) {
      const op = doc.paths[path]?.[method];
      assert.ok(op, `${method.toUpperCase()} ${path} is documented`);
      assert.ok(op.responses['200'], `${method.toUpperCase()} ${path} has a 200 response schema`);
    }
    assert.ok(doc.paths['/v1/videos']!.post!.requestBody);
    assert.ok(doc.components.schemas.Video && doc.components.schemas.Error);
    const docs = await fetch(`${origin}/docs`, { redirect: 'follow' });
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
  });

  test('/metrics exposes Prometheus counters of the requests', async () => {
    await fetch(`${origin}/healthz`);
    const res = await fetch(`${origin}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    assert.match(text, /rehyat_api_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    assert.match(text, /rehyat_api_process_cpu_user_seconds_total/);
    assert.match(text, /rehyat_api_generation_jobs\{state="waiting"\} \d+/);
  });
});

describe('readiness with a dependency down', () => {
  test('Redis unreachable: 503 naming redis and its host:port', async () => {
    const port = await closedPort();
    // The webhook delivery worker subscribes to Redis while the app is built; it is not what
    // this test is about (readiness of a running API whose Redis went away).
    const stack = await startStack({ env: { REDIS_URL: `redis://127.0.0.1:${port}`, WEBHOOK_WORKER_ENABLED: 'false' } });
    try {
      const res = await fetch(`${stack.baseURL.replace(/\/v1$/, '')}/readyz`);
      const body = (await res.json()) as Readiness;
      assert.equal(res.status, 503);
      assert.equal(body.status, 'unavailable');
      assert.match(body.message, new RegExp(`redis \\(127\\.0\\.0\\.1:${port}\\) is down`));
      assert.deepEqual(body.checks.filter((c) => !c.ok).map((c) => c.name), ['redis']);
    } finally {
      await stack.close();
    }
  });

  test('Postgres unreachable: 503 naming the database and its host:port', async () => {
    const port = await closedPort();
    const stack = await startStack({ env: { DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/nothing` } });
    try {
      const res = await fetch(`${stack.baseURL.replace(/\/v1$/, '')}/readyz`);
      const body = (await res.json()) as Readiness;
      assert.equal(res.status, 503);
      assert.match(body.message, new RegExp(`database \\(127\\.0\\.0\\.1:${port}\\) is down`));
      assert.deepEqual(body.checks.filter((c) => !c.ok).map((c) => c.name), ['database']);
    } finally {
      await stack.close();
    }
  });
});

describe('boot', () => {
  const serverTs = fileURLToPath(new URL('../src/server.ts', import.meta.url));
  const tsx = fileURLToPath(new URL('../../../node_modules/.bin/tsx', import.meta.url));

  async function boot(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(tsx, ['--conditions=development', serverTs], {
      env: { PATH: process.env.PATH ?? '', MODELS_DIR: FIXTURE_MODELS_DIR, LOG_LEVEL: 'silent', PORT: '0', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    return { code, stderr };
  }

  test('exits non-zero naming host:port when Postgres or Redis is unreachable', async () => {
    const port = await closedPort();
    const s3Port = String(await closedPort());
    const pg = await boot({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/x`, S3_ENDPOINT: `http://127.0.0.1:${s3Port}` });
    assert.notEqual(pg.code, 0);
    assert.match(pg.stderr, new RegExp(`database \\(127\\.0\\.0\\.1:${port}\\) is down`));
    const redis = await boot({ REDIS_URL: `redis://127.0.0.1:${port}`, S3_ENDPOINT: `http://127.0.0.1:${s3Port}` });
    assert.notEqual(redis.code, 0);
    assert.match(redis.stderr, new RegExp(`redis \\(127\\.0\\.0\\.1:${port}\\) is down`));
  });

  test('exits non-zero on invalid configuration, naming the variable', async () => {
    const res = await boot({ PORT: 'eighty' });
    assert.notEqual(res.code, 0);
    assert.match(res.stderr, /PORT/);
  });
});
