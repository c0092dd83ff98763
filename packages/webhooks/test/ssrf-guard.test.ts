import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deliverOnce, SsrfGuard, SsrfRefusedError, signWebhook, generateSecret } from '../src/index.js';
import { startReceiver } from './receiver.js';

const strict = new SsrfGuard();

test('non-global addresses are refused, global unicast allowed', () => {
  for (const a of [
    '127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.5.5', '192.168.1.1', '169.254.169.254', '100.100.100.200', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00:ec2::254', 'fc00::1', '::ffff:127.0.0.1',
    '::ffff:169.254.169.254', '64:ff9b::a00:1', '2002:a00:1::', 'ff02::1',
  ]) {
    assert.notEqual(strict.refusal(a), null, a);
  }
  for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(strict.refusal(a), null, a);
});

test('the allowlist opens exactly the named ranges', () => {
  const g = new SsrfGuard({ allowedCidrs: ['127.0.0.0/8', '::1/128'] });
  assert.equal(g.refusal('127.0.0.1'), null);
  assert.equal(g.refusal('::1'), null);
  assert.equal(g.refusal('::ffff:127.0.0.1'), null);
  assert.notEqual(g.refusal('10.0.0.1'), null);
  assert.notEqual(g.refusal('169.254.169.254'), null);
  assert.throws(() => new SsrfGuard({ allowedCidrs: ['nonsense'] }), /invalid CIDR/);
});

test('url form: scheme, credentials', async () => {
  await assert.rejects(strict.check('ftp://example.com/x'), (e: SsrfRefusedError) => e.code === 'invalid_url');
  await assert.rejects(strict.check('http://u:p@example.com/x'), (e: SsrfRefusedError) => e.code === 'invalid_url');
  await assert.rejects(strict.check('not a url'), (e: SsrfRefusedError) => e.code === 'invalid_url');
  await assert.rejects(new SsrfGuard({ allowHttp: false }).check('http://8.8.8.8/'), (e: SsrfRefusedError) => e.code === 'invalid_url');
  await assert.rejects(strict.check('http://localhost/x'), (e: SsrfRefusedError) => e.code === 'blocked_address');
  await assert.rejects(strict.check('http://[::1]:80/x'), (e: SsrfRefusedError) => e.code === 'blocked_address');
  await assert.rejects(strict.check('http://169.254.169.254/latest/meta-data'), (e: SsrfRefusedError) => e.code === 'blocked_address');
});

test('a delivery to a refused address never reaches the receiver, by literal or by name', async () => {
  const r = await startReceiver((_n, _req, res) => res.writeHead(200).end());
  try {
    const port = new URL(r.url).port;
    const secret = generateSecret();
    for (const url of [r.url, `http://localhost:${port}/hook`]) {
      const res = await deliverOnce({ url, body: '{}', headers: signWebhook({ id: 'msg_x', body: '{}', secrets: [secret] }), guard: strict });
      assert.equal(res.ok, false);
      assert.equal(res.error?.code, 'blocked_address', url);
    }
    assert.equal(r.received.length, 0);
    // With loopback allowed, the same name resolves and connects.
    const open = new SsrfGuard({ allowedCidrs: ['127.0.0.0/8', '::1/128'] });
    const ok = await deliverOnce({ url: `http://localhost:${port}/hook`, body: '{}', headers: signWebhook({ id: 'msg_x', body: '{}', secrets: [secret] }), guard: open });
    assert.equal(ok.ok, true);
    assert.equal(r.received.length, 1);
  } finally {
    await r.close();
  }
});
