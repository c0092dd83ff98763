import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Queue } from 'bullmq';
import OpenAI, { toFile } from 'openai';
import { GENERATION_QUEUE } from '@rehyat/contracts';
import { startStack, type Stack } from './helpers.js';

let stack: Stack;
let client: OpenAI;
let secret: string;
let queue: Queue;

before(async () => {
  stack = await startStack();
  ({ client, secret } = await stack.client('validation'));
  queue = new Queue(GENERATION_QUEUE, { connection: stack.redis, prefix: stack.config.REDIS_PREFIX });
});
after(async () => {
  await queue.close();
  await stack.close();
});

type ErrorBody = { message: string; type: string; param: string | null; code: string | null };

/** Asserts that `promise` fails with the client's typed error `Type` carrying `code` and `param`. */
async function rejectsWith(
  promise: Promise<unknown>,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  Type: new (...args: any[]) => InstanceType<typeof OpenAI.APIError>,
  code: string,
  param: string | null,
): Promise<void> {
  let body: ErrorBody | undefined;
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof Type, `expected ${Type.name}, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    body = (err as InstanceType<typeof OpenAI.APIError>).error as ErrorBody;
    assert.equal(body.code, code, body.message);
    assert.equal(body.param, param);
    assert.equal(typeof body.message, 'string');
    assert.equal(typeof body.type, 'string');
    return true;
  });
}

const create = (body: Record<string, unknown>) => client.post('/videos', { body });

describe('validation: 400 naming the parameter', () => {
  test('missing prompt', () => rejectsWith(create({ seconds: '4' }), OpenAI.BadRequestError, 'missing_required_parameter', 'prompt'));
  test('empty prompt', () => rejectsWith(create({ prompt: '   ' }), OpenAI.BadRequestError, 'invalid_value', 'prompt'));
  test('prompt longer than the manifest allows', () =>
    rejectsWith(create({ prompt: 'x'.repeat(201) }), OpenAI.BadRequestError, 'invalid_value', 'prompt'));
  test('prompt of the wrong type', () => rejectsWith(create({ prompt: 5 }), OpenAI.BadRequestError, 'invalid_value', 'prompt'));
  test('seconds above the maximum', () => rejectsWith(create({ prompt: 'p', seconds: '13' }), OpenAI.BadRequestError, 'invalid_value', 'seconds'));
  test('seconds below the minimum', () => rejectsWith(create({ prompt: 'p', seconds: 0.5 }), OpenAI.BadRequestError, 'invalid_value', 'seconds'));
  test('seconds not a number', () => rejectsWith(create({ prompt: 'p', seconds: 'four' }), OpenAI.BadRequestError, 'invalid_value', 'seconds'));
  test('teacher model: its own, shorter limit', () =>
    rejectsWith(create({ prompt: 'p', model: 'rehyat-test-teacher', seconds: 5 }), OpenAI.BadRequestError, 'invalid_value', 'seconds'));
  test('size not offered by the model', () =>
    rejectsWith(create({ prompt: 'p', size: '1280x720' }), OpenAI.BadRequestError, 'invalid_value', 'size'));
  test('seed out of range', () => rejectsWith(create({ prompt: 'p', seed: 2 ** 32 }), OpenAI.BadRequestError, 'invalid_value', 'seed'));
  test('negative seed', () => rejectsWith(create({ prompt: 'p', seed: -1 }), OpenAI.BadRequestError, 'invalid_value', 'seed'));
  test('fractional seed', () => rejectsWith(create({ prompt: 'p', seed: 1.5 }), OpenAI.BadRequestError, 'invalid_value', 'seed'));
  test('steps above max_steps', () => rejectsWith(create({ prompt: 'p', steps: 51 }), OpenAI.BadRequestError, 'invalid_value', 'steps'));
  test('steps zero', () => rejectsWith(create({ prompt: 'p', steps: 0 }), OpenAI.BadRequestError, 'invalid_value', 'steps'));
  test('negative guidance', () => rejectsWith(create({ prompt: 'p', guidance: -1 }), OpenAI.BadRequestError, 'invalid_value', 'guidance'));
  test('unknown field', () => rejectsWith(create({ prompt: 'p', colour: 'red' }), OpenAI.BadRequestError, 'unknown_parameter', 'colour'));
  test('input_reference (JSON) is unsupported', () =>
    rejectsWith(create({ prompt: 'p', input_reference: { image_url: 'https://example.com/a.png' } }), OpenAI.BadRequestError, 'unsupported_parameter', 'input_reference'));
  test('input_reference (multipart upload through videos.create) is unsupported', async () => {
    const file = await toFile(Buffer.from('\x89PNG fake'), 'ref.png', { type: 'image/png' });
    await rejectsWith(client.videos.create({ prompt: 'p', input_reference: file }), OpenAI.BadRequestError, 'unsupported_parameter', 'input_reference');
  });
  test('unknown field in multipart', async () => {
    await rejectsWith(
      client.videos.create({ prompt: 'p', colour: 'red' } as OpenAI.Videos.VideoCreateParams),
      OpenAI.BadRequestError,
      'unknown_parameter',
      'colour',
    );
  });
  test('unknown model: NotFoundError model_not_found', () =>
    rejectsWith(create({ prompt: 'p', model: 'sora-2' }), OpenAI.NotFoundError, 'model_not_found', 'model'));
  test('list: limit out of range, unknown cursor, unknown query parameter', async () => {
    await rejectsWith(client.videos.list({ limit: 0 }), OpenAI.BadRequestError, 'invalid_value', 'limit');
    await rejectsWith(client.videos.list({ limit: 101 }), OpenAI.BadRequestError, 'invalid_value', 'limit');
    await rejectsWith(client.videos.list({ after: 'video_00000000000000000000000000000000' }), OpenAI.BadRequestError, 'invalid_value', 'after');
    await rejectsWith(client.get('/videos', { query: { colour: 'red' } }), OpenAI.BadRequestError, 'unknown_parameter', 'colour');
    await rejectsWith(client.get('/videos', { query: { order: 'sideways' } }), OpenAI.BadRequestError, 'invalid_value', 'order');
  });
  test('content: unknown variant', async () => {
    const v = await client.videos.create({ prompt: 'p' });
    await rejectsWith(client.get(`/videos/${v.id}/content`, { query: { variant: 'gif' } }), OpenAI.BadRequestError, 'invalid_value', 'variant');
  });
  test('remix: unknown field and missing prompt', async () => {
    const v = await client.videos.create({ prompt: 'p' });
    await rejectsWith(client.post(`/videos/${v.id}/remix`, { body: { prompt: 'q', seed: 1 } }), OpenAI.BadRequestError, 'unknown_parameter', 'seed');
    await rejectsWith(client.post(`/videos/${v.id}/remix`, { body: {} }), OpenAI.BadRequestError, 'missing_required_parameter', 'prompt');
  });
  test('extension: missing video, unknown source', async () => {
    await rejectsWith(client.post('/videos/extensions', { body: { prompt: 'q' } }), OpenAI.BadRequestError, 'missing_required_parameter', 'video');
    await rejectsWith(
      client.post('/videos/extensions', { body: { prompt: 'q', video: { id: 'video_00000000000000000000000000000000' } } }),
      OpenAI.NotFoundError,
      'video_not_found',
      'video.id',
    );
  });
  test('malformed JSON and unsupported media types', async () => {
    const headers = { authorization: `Bearer ${secret}` };
    const bad = await fetch(`${stack.baseURL}/videos`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{"prompt":' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: ErrorBody }).error.code, 'invalid_json');
    const text = await fetch(`${stack.baseURL}/videos`, { method: 'POST', headers: { ...headers, 'content-type': 'text/plain' }, body: 'prompt' });
    assert.equal(text.status, 415);
    assert.equal(((await text.json()) as { error: ErrorBody }).error.code, 'unsupported_media_type');
  });
  test('body over MAX_BODY_BYTES: 413 payload_too_large', async () => {
    const res = await fetch(`${stack.baseURL}/videos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x'.repeat(stack.config.MAX_BODY_BYTES + 1) }),
    });
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: ErrorBody }).error.code, 'payload_too_large');
  });
  test('unknown route: 404 in OpenAI shape', () => rejectsWith(client.get('/nothing-here'), OpenAI.NotFoundError, 'not_found', null));
});

describe('idempotency', () => {
  test('same key and body: the same video and a single job; other body: 422', async () => {
    const key = `idem-${Date.now()}`;
    const body = { prompt: 'only once', seconds: '2', seed: 3 };
    const first = await client.post<{ id: string }>('/videos', { body, headers: { 'Idempotency-Key': key } });
    const again = await client.post<{ id: string }>('/videos', { body, headers: { 'Idempotency-Key': key } });
    assert.equal(again.id, first.id);
    const jobs = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']);
    assert.equal(jobs.filter((j) => (j.data as { prompt: string }).prompt === 'only once').length, 1);

    // Multipart with the same fields is the same body (numbers and strings compare alike).
    const form = await client.videos.create({ prompt: 'only once', seconds: '2' as OpenAI.Videos.VideoSeconds, seed: 3 } as OpenAI.Videos.VideoCreateParams, {
      headers: { 'Idempotency-Key': key },
    });
    assert.equal(form.id, first.id);

    await rejectsWith(
      client.post('/videos', { body: { ...body, prompt: 'something else' }, headers: { 'Idempotency-Key': key } }),
      OpenAI.UnprocessableEntityError,
      'idempotency_key_reused',
      'Idempotency-Key',
    );
    // Keys are per API key: another key may use the same one.
    const { client: other } = await stack.client('idempotency-other');
    const theirs = await other.post<{ id: string }>('/videos', { body, headers: { 'Idempotency-Key': key } });
    assert.notEqual(theirs.id, first.id);
  });
});

describe('auth', () => {
  test('missing key: 401 missing_api_key', async () => {
    const res = await fetch(`${stack.baseURL}/videos`);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: ErrorBody };
    assert.equal(body.error.code, 'missing_api_key');
  });
  test('wrong key: AuthenticationError', async () => {
    const wrong = new OpenAI({ apiKey: 'rh_' + 'A'.repeat(43), baseURL: stack.baseURL, maxRetries: 0 });
    await rejectsWith(wrong.videos.list(), OpenAI.AuthenticationError, 'invalid_api_key', null);
    const malformed = new OpenAI({ apiKey: 'sk-not-ours', baseURL: stack.baseURL, maxRetries: 0 });
    await rejectsWith(malformed.videos.list(), OpenAI.AuthenticationError, 'invalid_api_key', null);
  });
  test('revoked key: AuthenticationError', async () => {
    const { client: doomed, keyId } = await stack.client('doomed');
    await doomed.videos.list();
    await stack.keys.revoke(keyId);
    await rejectsWith(doomed.videos.list(), OpenAI.AuthenticationError, 'invalid_api_key', null);
  });
  test("another key's video: NotFoundError everywhere", async () => {
    const mine = await client.videos.create({ prompt: 'private' });
    const { client: other } = await stack.client('other');
    await rejectsWith(other.videos.retrieve(mine.id), OpenAI.NotFoundError, 'video_not_found', 'id');
    await rejectsWith(other.videos.delete(mine.id), OpenAI.NotFoundError, 'video_not_found', 'id');
    await rejectsWith(other.videos.downloadContent(mine.id), OpenAI.NotFoundError, 'video_not_found', 'id');
    await rejectsWith(other.videos.remix(mine.id, { prompt: 'x' }), OpenAI.NotFoundError, 'video_not_found', 'id');
    await rejectsWith(other.post(`/videos/${mine.id}/cancel`), OpenAI.NotFoundError, 'video_not_found', 'id');
    const list = await other.videos.list();
    assert.ok(!list.data.some((v) => v.id === mine.id));
    assert.equal((await client.videos.retrieve(mine.id)).id, mine.id);
  });
});
