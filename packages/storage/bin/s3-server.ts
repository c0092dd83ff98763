#!/usr/bin/env -S npx tsx --conditions=development
/**
 * Runs the embedded S3 server (s3rver) in the foreground until SIGINT/SIGTERM.
 *
 *   npx tsx --conditions=development packages/storage/bin/s3-server.ts \
 *     [--port 9000] [--address 127.0.0.1] [--directory .data/s3] [--bucket rehyat ...]
 *
 * Prints one line `s3 ready <endpoint>` once it accepts connections (scripts wait for it), and
 * exits non-zero with a clear message when the port is taken.
 */
import { parseArgs } from 'node:util';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3 } from '../src/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9000' },
    address: { type: 'string', default: '127.0.0.1' },
    directory: { type: 'string', default: '.data/s3' },
    bucket: { type: 'string', multiple: true, default: ['rehyat'] },
    verbose: { type: 'boolean', default: false },
  },
  strict: true,
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`s3-server: --port must be an integer 0..65535, got ${values.port}`);
  process.exit(2);
}

try {
  const server = await startEmbeddedS3({
    port,
    address: values.address,
    directory: values.directory,
    buckets: values.bucket,
    verbose: values.verbose,
  });
  console.log(
    `s3 ready ${server.endpoint} directory=${values.directory} buckets=${values.bucket.join(',')} ` +
      `access_key=${EMBEDDED_S3_CREDENTIALS.accessKeyId} secret_key=${EMBEDDED_S3_CREDENTIALS.secretAccessKey}`,
  );
  const stop = (signal: string) => {
    console.log(`s3-server: ${signal}, closing`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('s3-server: close failed', err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'EADDRINUSE') {
    console.error(`s3-server: port ${port} on ${values.address} is already in use (another S3 server running?)`);
  } else {
    console.error('s3-server: failed to start:', e.message);
  }
  process.exit(1);
}
