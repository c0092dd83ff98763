import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { parseRetryAfter } from './retry-schedule.js';
import { SsrfRefusedError, hostOf, type SsrfGuard } from './ssrf-guard.js';
import type { WebhookHeaders } from './signature.js';
import { isIP } from 'node:net';

/** Why an attempt got no HTTP status. */
export type AttemptErrorCode = 'timeout' | 'connection_error' | 'invalid_url' | 'blocked_address' | 'unresolvable_host';

/** What one HTTP attempt did. */
export interface AttemptResult {
  /** Any 2xx. */
  ok: boolean;
  /** HTTP status, `null` when no response came (timeout, refused connection, blocked address). */
  statusCode: number | null;
  /** Milliseconds from sending to the end of the response (or the failure). */
  latencyMs: number;
  /** First bytes of the response body as text (see `excerptBytes`). */
  responseExcerpt: string | null;
  /** The receiver's `Retry-After`, in milliseconds, when it sent one. */
  retryAfterMs: number | null;
  error: { code: AttemptErrorCode; message: string } | null;
}

export interface DeliverOptions {
  url: string;
  /** Exact JSON bytes to POST. */
  body: string;
  headers: WebhookHeaders;
  guard: SsrfGuard;
  /**
   * Deadline of the whole attempt (connect, response, excerpt), in milliseconds.
   * @defaultValue 10_000
   */
  timeoutMs?: number;
  /**
   * Bytes of the response body kept as the excerpt.
   * @defaultValue 1024
   */
  excerptBytes?: number;
  /** @defaultValue `rehyat-webhooks/0.1` */
  userAgent?: string;
}

/**
 * POSTs one signed message. Never throws: every failure is an {@link AttemptResult} with `error`.
 * Redirects are not followed (a 3xx is a failed attempt). The connection goes only to an address
 * that the SSRF guard allowed at connect time.
 */
export function deliverOnce(opts: DeliverOptions): Promise<AttemptResult> {
  const started = performance.now();
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const excerptBytes = opts.excerptBytes ?? 1024;
  const elapsed = (): number => Math.round(performance.now() - started);
  const fail = (code: AttemptErrorCode, message: string, statusCode: number | null = null): AttemptResult => ({
    ok: false,
    statusCode,
    latencyMs: elapsed(),
    responseExcerpt: null,
    retryAfterMs: null,
    error: { code, message },
  });

  let url: URL;
  try {
    url = opts.guard.parseUrl(opts.url);
    const host = hostOf(url);
    // IP literals never reach `lookup`: check them here.
    if (isIP(host)) opts.guard.assertAllowed(host, host);
  } catch (e) {
    const err = e as SsrfRefusedError;
    return Promise.resolve(fail(err.code ?? 'invalid_url', err.message));
  }

  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const finish = (r: AttemptResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const mod = url.protocol === 'https:' ? https : http;
    const payload = Buffer.from(opts.body, 'utf8');
    const req = mod.request(url, {
      method: 'POST',
      lookup: opts.guard.lookup as unknown as http.RequestOptions['lookup'],
      agent: false,
      headers: {
        'content-type': 'application/json',
        'content-length': String(payload.length),
        'user-agent': opts.userAgent ?? 'rehyat-webhooks/0.1',
        ...opts.headers,
      },
    });
    const timer = setTimeout(() => {
      finish(fail('timeout', `no complete response within ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);

    req.on('socket', (socket: Socket) => {
      // Belt and braces: whatever resolved the name, the peer must be an allowed address.
      socket.once('connect', () => {
        const peer = socket.remoteAddress;
        if (peer && opts.guard.refusal(peer) !== null) {
          finish(fail('blocked_address', `connected peer ${peer} is not an allowed address`));
          req.destroy();
        }
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof SsrfRefusedError) finish(fail(e.code, e.message));
      else finish(fail('connection_error', `${e.code ?? 'error'}: ${e.message}`));
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      const statusCode = res.statusCode ?? 0;
      const done = (): void => {
        const excerpt = Buffer.concat(chunks).subarray(0, excerptBytes).toString('utf8');
        const ok = statusCode >= 200 && statusCode < 300;
        finish({
          ok,
          statusCode,
          latencyMs: elapsed(),
          responseExcerpt: excerpt,
          retryAfterMs: parseRetryAfter(headerText(res.headers['retry-after'])),
          error: null,
        });
        res.destroy();
      };
      res.on('data', (c: Buffer) => {
        if (kept < excerptBytes) {
          chunks.push(c);
          kept += c.length;
        }
        if (kept >= excerptBytes) done();
      });
      res.on('end', done);
      res.on('error', done);
    });
    req.end(payload);
  });
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
