import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { buildEventBody, generateSecret, newEventId, newMessageId, secretHint, secretKey, signWebhook, verifyWebhook, WebhookVerificationError, InvalidSecretError } from '../src/index.js';

const body = buildEventBody({ id: newEventId(), type: 'video.completed', createdAt: new Date(), data: { id: 'video_0123456789abcdef0123456789abcdef', object: 'video', status: 'completed' } });

test('secrets are whsec_ base64 of 32 bytes; the hint shows only the tail', () => {
  const s = generateSecret();
  assert.match(s, /^whsec_[A-Za-z0-9+/]+=*$/);
  assert.equal(secretKey(s).length, 32);
  assert.equal(secretHint(s), `whsec_...${s.slice(-4)}`);
  assert.throws(() => secretKey('nope'), InvalidSecretError);
  assert.throws(() => secretKey('whsec_c2hvcnQ='), InvalidSecretError);
});

test('a signature verifies with the standardwebhooks package and with openai.webhooks.unwrap', async () => {
  const secret = generateSecret();
  const headers = signWebhook({ id: newMessageId(), body, secrets: [secret] });
  assert.match(headers['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/);
  const parsed = new Webhook(secret).verify(body, { ...headers }) as { type: string };
  assert.equal(parsed.type, 'video.completed');
  const client = new OpenAI({ apiKey: 'unused', webhookSecret: secret });
  const event = (await client.webhooks.unwrap(body, headers)) as unknown as { type: string; object: string; data: { id: string } };
  assert.equal(event.type, 'video.completed');
  assert.equal(event.object, 'event');
  assert.equal(event.data.id, 'video_0123456789abcdef0123456789abcdef');
  verifyWebhook(body, { ...headers }, secret);
});

test('during a rotation both the new and the old secret verify; an unrelated one does not', async () => {
  const oldSecret = generateSecret();
  const newSecret = generateSecret();
  const headers = signWebhook({ id: newMessageId(), body, secrets: [newSecret, oldSecret] });
  assert.equal(headers['webhook-signature'].split(' ').length, 2);
  for (const s of [newSecret, oldSecret]) {
    new Webhook(s).verify(body, { ...headers });
    await new OpenAI({ apiKey: 'unused' }).webhooks.unwrap(body, headers, s);
    verifyWebhook(body, { ...headers }, s);
  }
  const other = generateSecret();
  assert.throws(() => new Webhook(other).verify(body, { ...headers }));
  await assert.rejects(new OpenAI({ apiKey: 'unused' }).webhooks.unwrap(body, headers, other), OpenAI.InvalidWebhookSignatureError);
  assert.throws(() => verifyWebhook(body, { ...headers }, other), WebhookVerificationError);
});

test('a tampered body or a stale timestamp is rejected by both libraries', async () => {
  const secret = generateSecret();
  const headers = signWebhook({ id: newMessageId(), body, secrets: [secret] });
  const tampered = body.replace('completed', 'failed');
  assert.throws(() => new Webhook(secret).verify(tampered, { ...headers }));
  await assert.rejects(new OpenAI({ apiKey: 'unused' }).webhooks.unwrap(tampered, headers, secret), OpenAI.InvalidWebhookSignatureError);
  const old = signWebhook({ id: newMessageId(), body, secrets: [secret], timestampS: Math.floor(Date.now() / 1000) - 3600 });
  assert.throws(() => new Webhook(secret).verify(body, { ...old }));
  await assert.rejects(new OpenAI({ apiKey: 'unused' }).webhooks.unwrap(body, old, secret), OpenAI.InvalidWebhookSignatureError);
});
