import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ModelManifest } from '@rehyat/contracts';
import { API_KEY_PATTERN, generateApiKey, hashApiKey } from '../src/api-keys.js';
import { ConfigError, hostPort, loadConfig } from '../src/config.js';
import { ApiError, ERROR_CATALOGUE } from '../src/errors.js';
import { ModelRegistry, ModelRegistryError } from '../src/model-registry.js';
import { unflattenFormFields } from '../src/routes/videos.js';
import { resolveGenerationParams } from '../src/services/generation-params.js';
import { hashRequest } from '../src/services/video-service.js';
import { formatSeconds } from '../src/services/video-view.js';
import { newPooledVideoId } from '../src/services/video-ids.js';
import { isVideoId } from '@rehyat/contracts';
import { FIXTURE_MODELS_DIR } from './helpers.js';

const registry = await ModelRegistry.load({ modelsDir: FIXTURE_MODELS_DIR });

describe('model registry', () => {
  test('reads the fixture release: student and teacher, the student is the default', () => {
    assert.deepEqual(registry.names(), ['rehyat-test', 'rehyat-test-teacher']);
    assert.equal(registry.defaultModel, 'rehyat-test');
    assert.equal(registry.get('rehyat-test')!.maxSeconds, 12);
    assert.equal(registry.get('rehyat-test-teacher')!.maxSeconds, 4);
  });
  test('a missing folder is an empty registry; an unknown DEFAULT_MODEL is an error', async () => {
    const empty = await ModelRegistry.load({ modelsDir: '/nonexistent/models' });
    assert.deepEqual(empty.names(), []);
    assert.equal(empty.defaultModel, null);
    await assert.rejects(ModelRegistry.load({ modelsDir: FIXTURE_MODELS_DIR, defaultModel: 'nope' }), ModelRegistryError);
  });
  test('two releases may not declare the same public name', () => {
    const m = registry.get('rehyat-test')!.manifest;
    assert.throws(() => new ModelRegistry([m, ModelManifest.parse({ ...m, version: 'test-2' })]), ModelRegistryError);
  });
});

describe('generation parameters', () => {
  test('defaults come from the manifest', () => {
    const p = resolveGenerationParams(registry, { prompt: '  a ball  ' });
    assert.equal(p.prompt, 'a ball');
    assert.deepEqual([p.model.name, p.size, p.width, p.height, p.seconds, p.steps, p.guidance], ['rehyat-test', '256x160', 256, 160, 4, 8, 5]);
    assert.deepEqual(p.plan, { chunks: 6, frames: 69, seconds: 69 / 16 });
  });
  test('form strings are numbers; the largest seed is accepted', () => {
    const p = resolveGenerationParams(registry, { prompt: 'p', seconds: '2', seed: String(2 ** 32 - 1), steps: '3', guidance: '0' });
    assert.deepEqual([p.seconds, p.seed, p.steps, p.guidance], [2, 2 ** 32 - 1, 3, 0]);
  });
  test('each bad parameter is named', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ prompt: '' }, 'prompt'],
      [{ prompt: 'p', seconds: '' }, 'seconds'],
      [{ prompt: 'p', seconds: 13 }, 'seconds'],
      [{ prompt: 'p', size: '1x1' }, 'size'],
      [{ prompt: 'p', seed: '1e3x' }, 'seed'],
      [{ prompt: 'p', steps: 2.5 }, 'steps'],
      [{ prompt: 'p', guidance: 51 }, 'guidance'],
      [{ prompt: 'p', model: 'x' }, 'model'],
      [{ prompt: 'p', input_reference: 'x' }, 'input_reference'],
    ];
    for (const [input, param] of cases) {
      assert.throws(
        () => resolveGenerationParams(registry, input as { prompt: string }),
        (err: unknown) => err instanceof ApiError && err.param === param,
        `expected an error naming ${param} for ${JSON.stringify(input)}`,
      );
    }
  });
});

describe('helpers', () => {
  test('pooled video ids: the contract format, all distinct across pool refills', () => {
    const ids = Array.from({ length: 1000 }, () => newPooledVideoId());
    for (const id of ids) assert.ok(isVideoId(id), id);
    assert.equal(new Set(ids).size, ids.length);
  });
  test('multipart bracket names become objects; prototype keys are dropped', () => {
    assert.deepEqual(unflattenFormFields({ prompt: 'p', 'video[id]': 'video_1', seconds: '4' }), { prompt: 'p', video: { id: 'video_1' }, seconds: '4' });
    const out = unflattenFormFields({ '__proto__[x]': '1', 'a[__proto__]': '2' });
    assert.equal(({} as Record<string, unknown>).x, undefined);
    assert.deepEqual(out, {});
  });
  test('request hash: key order and number-vs-string do not matter, values do', () => {
    assert.equal(hashRequest('create', { prompt: 'a', seconds: 4 }), hashRequest('create', { seconds: '4', prompt: 'a' }));
    assert.notEqual(hashRequest('create', { prompt: 'a' }), hashRequest('create', { prompt: 'b' }));
    assert.notEqual(hashRequest('create', { prompt: 'a' }), hashRequest('remix:video_x', { prompt: 'a' }));
  });
  test('API keys: rh_ + 43 base64url, hashed with sha256, prefix shown', () => {
    const k = generateApiKey();
    assert.match(k.secret, API_KEY_PATTERN);
    assert.equal(k.hash, hashApiKey(k.secret));
    assert.match(k.hash, /^[0-9a-f]{64}$/);
    assert.ok(k.secret.startsWith(k.prefix) && k.prefix.length === 11);
  });
  test('seconds are formatted as OpenAI strings', () => {
    assert.equal(formatSeconds(4), '4');
    assert.equal(formatSeconds(69 / 16), '4.313');
  });
  test('config: defaults, coercion, and one error naming every bad variable', () => {
    const c = loadConfig({});
    assert.equal(c.PORT, 8080);
    assert.equal(c.REDIS_PREFIX, 'rehyat');
    assert.equal(c.S3_ENDPOINT, undefined);
    assert.equal(loadConfig({ PORT: '9090', DOCS_ENABLED: 'false' }).DOCS_ENABLED, false);
    assert.throws(() => loadConfig({ PORT: 'x', PUBLIC_BASE_URL: 'not a url' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /PORT/);
      assert.match(err.message, /PUBLIC_BASE_URL/);
      return true;
    });
    assert.equal(hostPort('postgresql://u:secret@db.example:6543/x', 5432), 'db.example:6543');
    assert.equal(hostPort('redis://127.0.0.1', 6379), '127.0.0.1:6379');
  });
  test('every catalogue entry maps to a status the openai client types', () => {
    for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
      assert.ok([400, 401, 403, 404, 409, 413, 415, 416, 422, 429, 500, 503].includes(e.status), code);
      assert.deepEqual(new ApiError(code as keyof typeof ERROR_CATALOGUE).toBody().error.code, code);
    }
  });
});
