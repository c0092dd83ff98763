import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/**
 * The worker's configuration: the one place that knows environment variable names. `main.ts`
 * passes `process.env` to {@link loadConfig}; everything else receives the parsed {@link Config}
 * (or a slice of it) as options. Names shared with the API mean the same thing there.
 */

/** Repository root (`apps/worker/src` and `apps/worker/dist` are both two levels below it). */
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

export const ConfigSchema = z.object({
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug', 'silent']).default('info'),
  /** Name of this worker in heartbeats and on videos; default `<host>-<pid>`. */
  WORKER_ID: z.string().min(1).default(`${hostname()}-${process.pid}`),
  /** Jobs processed at once by this process (one GPU: 1). */
  WORKER_CONCURRENCY: int(1, 1),

  DATABASE_URL: z.string().min(1).default('postgresql://postgres@127.0.0.1:5432/rehyat'),
  REDIS_URL: z.string().min(1).default('redis://127.0.0.1:6379'),
  /** Prefix of every Redis key of this deployment, BullMQ's prefix included (contracts' Keyspace). */
  REDIS_PREFIX: z.string().min(1).regex(/^[A-Za-z0-9_.:-]+$/).default('rehyat'),

  /** S3 endpoint; empty means AWS's default endpoint for `S3_REGION`. */
  S3_ENDPOINT: optionalString,
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_BUCKET: z.string().min(1).default('rehyat'),
  S3_ACCESS_KEY_ID: optionalString,
  S3_SECRET_ACCESS_KEY: optionalString,
  S3_FORCE_PATH_STYLE: bool(true),

  /** Folder holding `<version>/manifest.json` of every installed model. */
  MODELS_DIR: z.string().min(1).default(`${REPO_ROOT}models`),
  /** `ort`: onnxruntime-node with the standard-op graph; `kernels`: @rehyat/kernels with the custom-op graph. */
  PIPELINE_BACKEND: z.enum(['ort', 'kernels']).default('ort'),
  /** `cpu` or `cuda`. */
  DEVICE: z.enum(['cpu', 'cuda']).default('cpu'),
  /** CUDA device ordinal of this worker (one process per GPU). */
  DEVICE_ID: int(0),
  /** CPU threads of ONNX Runtime's intra-op pool; 0 lets it choose. */
  INTRA_OP_THREADS: int(0),
  /** Verify model file hashes at load. */
  VERIFY_MODEL_FILES: bool(true),

  /** ffmpeg and ffprobe executables. */
  FFMPEG_BIN: z.string().min(1).default('ffmpeg'),
  /** x264 constant rate factor of the segments. */
  X264_CRF: int(18).pipe(z.number().max(51)),
  X264_PRESET: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow']).default('veryfast'),

  /** Interval of the cancel-key poll (the pub/sub announcement usually arrives first). */
  CANCEL_POLL_MS: int(500, 10),
  /** Interval of the heartbeat write (its TTL is contracts' HEARTBEAT_TTL_S). */
  HEARTBEAT_INTERVAL_MS: int(5000, 100),
  /** BullMQ job lock: a worker silent for this long is considered dead and its job stalled. */
  LOCK_DURATION_MS: int(30_000, 1000),
  /** How often BullMQ looks for stalled jobs. */
  STALLED_INTERVAL_MS: int(30_000, 1000),
  /**
   * Checkpoint cadence: the recurrent state of every denoising step (~28 MiB for the release) goes
   * to S3 after chunk `i` when `(i + 1) % N === 0`, after the last chunk (extensions start from it)
   * and at a SIGTERM stop; 1 is after every chunk (the behaviour before this setting). A crashed
   * job resumes from the newest one and regenerates at most N-1 chunks, with identical bytes.
   * Why 4: on the H100 a chunk of the release (0.5 s of video) computes in ~0.18 s (16 dit_step runs
   * of ~11 ms; measured on rehyat-1, packages/pipeline/bench/results/h100.md: rehyat-1, -2 and -3
   * have the same graphs, shapes and operator counts, only the weights differ), about as long as
   * one 28 MiB PUT takes at 150-200 MB/s, so at 1 even a background upload holds the next chunk
   * up; every 4th chunk leaves ~0.7 s of compute to hide it in, and a crash costs at most 3 chunks
   * (~0.5 s of GPU time, 1.5 s of video).
   * @defaultValue `4`
   */
  CHECKPOINT_EVERY_CHUNKS: int(4, 1),
  /**
   * Upload checkpoints in the background while the next chunks compute (a snapshot is taken before
   * the generator moves on; at most one upload in flight, the next checkpoint waits for it). A
   * failed background upload fails the attempt at the next chunk boundary, as a failed synchronous
   * upload does. `false`: the chunk waits for its upload (the behaviour before this setting).
   * @defaultValue `true`
   */
  CHECKPOINT_ASYNC: bool(true),
  /** Longest wait for the current chunk on SIGTERM before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: int(10 * 60_000, 1000),
  /**
   * Longest wait for the stop after a device-fatal error (job released to BullMQ, sessions
   * released, connections closed) before the process exits 1 anyway: a broken CUDA context can
   * hang whatever touches it next. A process still alive at twice this (its main thread stuck in
   * native code, where no timer fires) is killed with SIGKILL by a watchdog thread.
   * @defaultValue `15000` (15 s)
   */
  DEVICE_FATAL_EXIT_TIMEOUT_MS: int(15_000, 100),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the configuration from an environment-like record; throws naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const result = ConfigSchema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}
