/**
 * `last_error` (ours): the error of the latest failed generation attempt, visible while the video
 * waits for its retry (OpenAI's `error` stays null until the video failed). The worker writes the
 * row's `last_error_*` columns (apps/worker's tests cover that); here the API shows them.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type OpenAI from 'openai';
import { startStack, type Stack } from './helpers.js';

type OurVideo = OpenAI.Videos.Video & { last_error: { code: string; message: string; at: number } | null };

let stack: Stack;
let client: OpenAI;
before(async () => {
  stack = await startStack();
  ({ client } = await stack.client('last-error'));
});
after(async () => {
  await stack.close();
});

test('a retried attempt\'s error is last_error while the video stays in progress; error only once it failed', async () => {
  const created = (await client.videos.create({ prompt: 'a red ball bounces', model: 'rehyat-test' })) as OurVideo;
  assert.equal(created.last_error, null);

  const at = new Date('2026-11-27T01:02:03.456Z');
  const message = 'S3 at http://127.0.0.1:9000 failed: connect ECONNREFUSED 127.0.0.1:9000';
  await stack.app.prisma.video.update({
    where: { id: created.id },
    data: { status: 'in_progress', lastErrorCode: 'storage_unavailable', lastErrorMessage: message, lastErrorAt: at },
  });
  const retrying = (await client.videos.retrieve(created.id)) as OurVideo;
  assert.equal(retrying.status, 'in_progress');
  assert.equal(retrying.error, null, 'not failed: OpenAI\'s error stays null');
  assert.deepEqual(retrying.last_error, { code: 'storage_unavailable', message, at: Math.floor(at.getTime() / 1000) });
  const listed = (await client.videos.list()).data.find((v) => v.id === created.id) as OurVideo;
  assert.deepEqual(listed.last_error, retrying.last_error);

  await stack.app.prisma.video.update({
    where: { id: created.id },
    data: { status: 'failed', errorCode: 'device_error', errorMessage: 'CUDA error', completedAt: at, lastErrorCode: 'device_error', lastErrorMessage: 'CUDA error' },
  });
  const failed = (await client.videos.retrieve(created.id)) as OurVideo;
  assert.deepEqual(failed.error, { code: 'device_error', message: 'CUDA error' });
  assert.deepEqual(failed.last_error, { code: 'device_error', message: 'CUDA error', at: Math.floor(at.getTime() / 1000) });
});
