import { z } from 'zod';

/**
 * Why a video failed, as stored on the video (`error.code`) and sent in `video.failed` events.
 * Codes are never reused for another meaning.
 */
export const FailureCode = z.enum([
  /** The job payload or its parameters cannot be generated (never retried). */
  'invalid_request',
  /** The model version named by the job is not installed on the worker, or a file failed its hash. */
  'model_unavailable',
  /** The model ran and failed (numerical error, bad output shape). */
  'generation_failed',
  /** Object storage kept failing after all retries. */
  'storage_unavailable',
  /** The GPU reported a fatal error; the worker restarted and retries ran out. */
  'device_error',
  /** The job ran past its deadline. */
  'timeout',
  /** Anything else; the message says what. */
  'internal_error',
]);
export type FailureCode = z.infer<typeof FailureCode>;
