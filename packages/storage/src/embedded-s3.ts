import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { makePutObjectAtomic, type S3rverFilesystemStore } from './atomic-put.js';

const require = createRequire(import.meta.url);

/** Credentials the embedded server accepts (s3rver's built-in account). */
export const EMBEDDED_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface EmbeddedS3Options {
  /** TCP port; 0 picks a free one. @defaultValue `9000` */
  port?: number;
  /** @defaultValue `127.0.0.1` */
  address?: string;
  /** Where objects are kept on disk. @defaultValue `.data/s3` */
  directory?: string;
  /** Buckets created at start (idempotent). @defaultValue `[]` */
  buckets?: string[];
  /** Log every request to stdout. @defaultValue `false` */
  verbose?: boolean;
}

export interface EmbeddedS3 {
  /** `http://address:port`, to pass as the S3 endpoint with path-style addressing. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** The underlying Node server, set by run(). */
  httpServer?: import('node:http').Server;
  /** The filesystem store (also the Koa context's `store`, the same object). */
  store: S3rverFilesystemStore;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;

/**
 * Starts s3rver (a filesystem-backed S3 server) in this process: the object store of the quick
 * start, the tests and CI when no S3 endpoint is configured. Not for production: one process,
 * no durability guarantees, s3rver's fixed credentials ({@link EMBEDDED_S3_CREDENTIALS}). Unlike
 * plain s3rver, a PUT is atomic (an upload cut off mid-body leaves the previous object or none).
 */
export async function startEmbeddedS3(opts: EmbeddedS3Options = {}): Promise<EmbeddedS3> {
  const directory = opts.directory ?? '.data/s3';
  await mkdir(directory, { recursive: true });
  const S3rver = require('s3rver') as S3rverCtor;
  const server = new S3rver({
    address: opts.address ?? '127.0.0.1',
    port: opts.port ?? 9000,
    directory,
    silent: !opts.verbose,
    // Path-style addressing only: a vhost parser would read `127.0.0.1` as a bucket name.
    vhostBuckets: false,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name, configs: [] })),
  });
  // S3's PUT is atomic; s3rver's writes the object's file in place (see atomic-put.ts).
  makePutObjectAtomic(server.store);
  // s3rver (Koa) emits 'error' for every failed request, including ordinary 404s; they are
  // answered as S3 XML errors already, so only keep the process alive here.
  server.on('error', () => {});
  const addr = await server.run();
  const host = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  let closed = false;
  return {
    endpoint: `http://${host}:${addr.port}`,
    port: addr.port,
    async close() {
      if (closed) return;
      closed = true;
      // http.Server.close() only stops accepting: keep-alive sockets would go on serving requests
      // (and close() would wait for them), so "stopped" would not mean unreachable. Cut them.
      const closing = server.close();
      server.httpServer?.closeAllConnections();
      await closing;
    },
  };
}
