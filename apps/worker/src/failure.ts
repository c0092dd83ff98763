import type { FailureCode } from '@rehyat/contracts';

/**
 * The one place that decides what a failure means. Every error thrown while processing a job goes
 * through {@link classifyFailure}:
 *
 * | kind        | examples                                          | what happens                                       |
 * | ----------- | ------------------------------------------------- | -------------------------------------------------- |
 * | invalid     | malformed payload, unknown model name, bad size   | video failed now, `UnrecoverableError` (no retry)  |
 * | model       | model files missing/failing their hash, backend cannot load | video failed now (`model_unavailable`), no retry   |
 * | transient   | S3 unreachable, Redis/Postgres connection lost    | retried with the catalog's backoff; failed when the attempts run out |
 * | device      | CUDA errors, device out of memory                 | retried; the process exits non-zero (the supervisor restarts it) |
 * | generation  | the model produced a bad output, ffmpeg rejected frames | video failed now (`generation_failed`), no retry |
 * | internal    | anything else                                     | retried; failed with `internal_error` when the attempts run out |
 */
export type FailureKind = 'invalid' | 'model' | 'transient' | 'device' | 'generation' | 'internal';

export interface ClassifiedFailure {
  kind: FailureKind;
  code: FailureCode;
  /** Message stored on the video and sent in `video.failed` (no stack, no secrets). */
  message: string;
  /** Whether another attempt may succeed. */
  retryable: boolean;
}

/** A job that can never be generated as asked; the message names the parameter. */
export class InvalidJobError extends Error {
  override name = 'InvalidJobError';
}

/** A model output that cannot be a video (NaN, wrong shape). */
export class GenerationError extends Error {
  override name = 'GenerationError';
}

const DEVICE_PATTERN = /\bCUDA\b|cudaError|CUBLAS|cuDNN|CUDNN|device-side assert|illegal memory access|out of memory|ECC error|Xid/i;
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);
const PRISMA_TRANSIENT = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2034']);

export function classifyFailure(err: unknown): ClassifiedFailure {
  const e = (err ?? {}) as { name?: string; code?: unknown; message?: string; cause?: unknown };
  const name = e.name ?? '';
  const message = typeof e.message === 'string' && e.message ? e.message : String(err);
  const code = typeof e.code === 'string' ? e.code : '';

  if (name === 'ZodError' || name === 'InvalidJobError' || name === 'UnknownModelError') return { kind: 'invalid', code: 'invalid_request', message, retryable: false };
  if (name === 'ModelUnavailableError' || name === 'BackendError') return { kind: 'model', code: 'model_unavailable', message, retryable: false };
  if (name === 'StorageUnavailableError' || code === 'storage_unavailable') {
    return { kind: 'transient', code: 'storage_unavailable', message, retryable: true };
  }
  if (DEVICE_PATTERN.test(message)) return { kind: 'device', code: 'device_error', message, retryable: true };
  if (
    NET_CODES.has(code) ||
    PRISMA_TRANSIENT.has(code) ||
    name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|connect ECONNREFUSED|Can't reach database server/i.test(message)
  ) {
    return { kind: 'transient', code: 'internal_error', message, retryable: true };
  }
  if (name === 'GenerationError' || name === 'FfmpegError' || name === 'MediaFormatError' || name === 'CheckpointFormatError') {
    return { kind: 'generation', code: 'generation_failed', message, retryable: false };
  }
  if (e.cause !== undefined && e.cause !== err) {
    const inner = classifyFailure(e.cause);
    if (inner.kind !== 'internal') return { ...inner, message };
  }
  return { kind: 'internal', code: 'internal_error', message, retryable: true };
}
