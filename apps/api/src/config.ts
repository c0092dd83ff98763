import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * The API's configuration: the one place that knows environment variable names. `server.ts`
 * passes `process.env` to {@link loadConfig}; everything else receives the parsed {@link Config}
 * (or a slice of it) as options. Tests build one with `loadConfig({ ...overrides })`.
 */

/** Repository root (`apps/api/src` and `apps/api/dist` are both two levels below it). */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** `a,b , c` -> `['a','b','c']`; unset or empty -> `[]`. */
const csvList = z
  .string()
  .optional()
  .transform((v) => (v ?? '').split(',').map((x) => x.trim()).filter((x) => x !== ''));

export const ConfigSchema = z.object({
  /** Interface to listen on. */
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(8080).pipe(z.number().max(65535)),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Public origin of this API, used to build `playlist_url` and signed chunk URLs. */
  PUBLIC_BASE_URL: z.url().default('http://127.0.0.1:8080'),

  DATABASE_URL: z.string().min(1).default('postgresql://postgres@127.0.0.1:5432/rehyat'),
  REDIS_URL: z.string().min(1).default('redis://127.0.0.1:6379'),
  /** Prefix of every Redis key of this deployment, BullMQ's prefix included (contracts' Keyspace). */
  REDIS_PREFIX: z.string().min(1).regex(/^[A-Za-z0-9_.:-]+$/).default('rehyat'),

  /**
   * S3 endpoint, e.g. `http://127.0.0.1:9000`. Unset: `server.ts` starts the embedded S3 server
   * (s3rver) on `EMBEDDED_S3_PORT` and uses it.
   */
  S3_ENDPOINT: optionalString,
  EMBEDDED_S3_PORT: int(9000).pipe(z.number().max(65535)),
  EMBEDDED_S3_DIR: z.string().min(1).default(`${REPO_ROOT}.data/s3`),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_BUCKET: z.string().min(1).default('rehyat'),
  /** Unset: the embedded server's credentials. */
  S3_ACCESS_KEY_ID: optionalString,
  S3_SECRET_ACCESS_KEY: optionalString,
  S3_FORCE_PATH_STYLE: bool(true),

  /** Secret for signed segment/playlist URLs (HMAC). Required in production. */
  URL_SIGNING_SECRET: z.string().min(16).default('rehyat-development-signing-secret'),
  /** Lifetime of a signed chunk URL. */
  SIGNED_URL_TTL_S: int(3600, 1),

  /** Interval of SSE heartbeat comments on `/v1/videos/:id/events` (keeps proxies from closing idle streams). */
  SSE_HEARTBEAT_MS: int(15_000, 100),

  /** Folder holding `<version>/manifest.json` of every installed model. */
  MODELS_DIR: z.string().min(1).default(`${REPO_ROOT}models`),
  /** Model used when a request names none; default: the student of the newest manifest. */
  DEFAULT_MODEL: optionalString,

  /** Largest request body accepted (JSON or multipart). */
  MAX_BODY_BYTES: int(1024 * 1024, 1024),
  /** How long finished videos stay downloadable; `expires_at` = `completed_at` + this. 0: never. */
  VIDEO_RETENTION_S: int(7 * 24 * 3600),
  /** How long an Idempotency-Key is remembered. */
  IDEMPOTENCY_TTL_S: int(24 * 3600, 1),
  /** Deadline of each dependency check in `/readyz` and at boot. */
  DEPENDENCY_TIMEOUT_MS: int(2000, 100),
  /**
   * How long an API key looked up once is trusted from memory. Revocations and limit changes made
   * with the keys/limits CLIs are announced through Redis and apply at once on every instance;
   * this bounds only changes made behind their back (e.g. SQL). 0: read the database on every request.
   */
  API_KEY_CACHE_TTL_MS: int(60_000),
  /** Serve `/docs` (Swagger UI). `/openapi.json` is always served. */
  DOCS_ENABLED: bool(true),

  // Rate limits and quotas (@rehyat/ratelimit). Per-key overrides: `npm run limits -w @rehyat/api`.
  /** Requests per minute per API key (GCRA in Redis, shared by all API instances). 0: unlimited. */
  RATE_LIMIT_RPM: int(120),
  /** Videos queued or in progress at once per API key. 0: unlimited. */
  MAX_ACTIVE_VIDEOS: int(8),
  /** New videos are refused (503 `queue_full`) while this many generation jobs wait to start. 0: no cap. */
  QUEUE_MAX_QUEUED: int(1000),
  /** Order generation jobs fairly between API keys (BullMQ priorities, round-robin-like) instead of FIFO. */
  FAIR_QUEUE: bool(true),

  // Webhooks (@rehyat/webhooks).
  /** Run the webhook delivery worker and the event-feed consumer in this process. */
  WEBHOOK_WORKER_ENABLED: bool(true),
  /** Delivery attempts in flight at once in this process. */
  WEBHOOK_WORKER_CONCURRENCY: int(16, 1),
  /** Deadline of one delivery attempt (connect, response). */
  WEBHOOK_TIMEOUT_MS: int(10_000, 100),
  /** Comma-separated CIDRs webhooks may target although not public, e.g. `127.0.0.0/8,::1/128`. */
  WEBHOOK_ALLOWED_CIDRS: csvList,
  /** Accept `http:` webhook URLs (else `https:` only). */
  WEBHOOK_ALLOW_HTTP: bool(true),
  /** Delays between delivery attempts in ms, comma-separated. Unset: the Standard Webhooks schedule stretched to about 72 h. */
  WEBHOOK_RETRY_SCHEDULE_MS: csvList.transform((xs) => xs.map(Number)).pipe(z.array(z.number().int().min(0))),
  /** Relative jitter of each retry delay. */
  WEBHOOK_RETRY_JITTER: z.coerce.number().min(0).max(1).default(0.2),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the configuration from an environment-like record. Throws a {@link ConfigError} naming
 * every invalid variable.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const result = ConfigSchema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** `host:port` of a redis:// or postgresql:// URL, for messages (never prints credentials). */
export function hostPort(url: string, defaultPort: number): string {
  try {
    const u = new URL(url);
    return `${u.hostname || '127.0.0.1'}:${u.port || defaultPort}`;
  } catch {
    return '(unparseable URL)';
  }
}
