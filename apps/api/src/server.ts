import { ConfigError, loadConfig, type Config } from './config.js';
import { buildApp, storageOptions } from './app.js';
import { preflight } from './preflight.js';
import { summarize } from './plugins/health.js';
import { EMBEDDED_S3_CREDENTIALS, startEmbeddedS3, type EmbeddedS3 } from '@rehyat/storage';
import { ModelRegistryError } from './model-registry.js';

/**
 * The API process: parse config, start the embedded S3 server when no `S3_ENDPOINT` is set,
 * check Postgres, Redis and S3 and create the bucket (exit 1 naming `host:port` of what is down),
 * build the app, listen, and close everything on SIGINT/SIGTERM.
 */
async function main(): Promise<void> {
  let config: Config = loadConfig(process.env);
  let embedded: EmbeddedS3 | undefined;
  if (!config.S3_ENDPOINT) {
    embedded = await startEmbeddedS3({
      port: config.EMBEDDED_S3_PORT,
      directory: config.EMBEDDED_S3_DIR,
      buckets: [config.S3_BUCKET],
    });
    config = {
      ...config,
      S3_ENDPOINT: embedded.endpoint,
      S3_ACCESS_KEY_ID: EMBEDDED_S3_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
      S3_FORCE_PATH_STYLE: true,
    };
  }

  const checks = await preflight(config, storageOptions(config));
  if (checks.some((c) => !c.ok)) {
    process.stderr.write(`rehyat-api: cannot start: ${summarize(checks)}\n`);
    for (const c of checks.filter((x) => !x.ok)) {
      const hint = { database: 'DATABASE_URL', redis: 'REDIS_URL', storage: 'S3_ENDPOINT' }[c.name];
      process.stderr.write(`  check that ${c.name} is running at ${c.target} or set ${hint}\n`);
    }
    await embedded?.close();
    process.exit(1);
  }

  const app = await buildApp({ config });
  if (embedded) app.log.info(`no S3_ENDPOINT configured: embedded S3 server at ${embedded.endpoint} (data in ${config.EMBEDDED_S3_DIR})`);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info(`${signal}: closing`);
    await app.close();
    await embedded?.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  await app.listen({ host: config.HOST, port: config.PORT });
  app.log.info(`models: ${app.models.names().join(', ') || 'none'}; docs at ${config.PUBLIC_BASE_URL}/docs`);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof ModelRegistryError) {
    process.stderr.write(`rehyat-api: ${err.message}\n`);
  } else {
    process.stderr.write(`rehyat-api: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
});
