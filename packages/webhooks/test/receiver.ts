import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as a test receiver saw it. */
export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

export type Reply = (n: number, req: Received, res: http.ServerResponse) => void;

/** A real HTTP server on 127.0.0.1 that records requests and answers with `reply`. */
export async function startReceiver(reply: Reply): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      reply(received.length, r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Polls `cond` every 20 ms until it holds; fails after `limitMs` (a safety net, not an assertion on time). */
export async function until(cond: () => boolean | Promise<boolean>, limitMs = 15_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}
