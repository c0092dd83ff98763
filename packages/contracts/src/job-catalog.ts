import { z } from 'zod';
import { VideoId } from './ids.js';
import { CONTRACT_VERSION } from './version.js';

/** Name of the BullMQ queue that carries generation jobs. */
export const GENERATION_QUEUE = 'video-generation';

/** What a generation job continues from, if anything. */
export const JobSource = z.object({
  /**
   * `extension`: continue the source video from its final recurrent state (only new frames are
   * generated). `remix`: a new video with the source's seed and settings and a new prompt.
   */
  kind: z.enum(['extension', 'remix']),
  video_id: VideoId,
});
export type JobSource = z.infer<typeof JobSource>;

/** Payload of a `generate` job. Only ever gains optional fields. */
export const GenerateJobPayload = z.object({
  v: z.literal(CONTRACT_VERSION),
  video_id: VideoId,
  /** Public model name, e.g. `rehyat-5` (student) or `rehyat-5-teacher`. */
  model: z.string().min(1),
  prompt: z.string().min(1),
  /** Length to generate in seconds (for an extension: the new part only). */
  seconds: z.number().positive(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  seed: z.number().int().min(0).max(2 ** 32 - 1),
  steps: z.number().int().positive(),
  guidance: z.number().min(0),
  /** Sampler time shift; the manifest's default when absent. */
  shift: z.number().positive().optional(),
  source: JobSource.optional(),
  /** Owner API key id, for accounting on the worker side. */
  owner_id: z.string().min(1),
  created_at: z.string().datetime(),
});
export type GenerateJobPayload = z.infer<typeof GenerateJobPayload>;

export interface JobDefinition<P extends z.ZodType> {
  /** Job name inside the queue. */
  name: string;
  payload: P;
  /** Attempts before a retryable failure becomes final. */
  attempts: number;
  backoff: { type: 'exponential' | 'fixed'; delay: number };
  /** Deadline of one attempt in milliseconds. */
  timeoutMs: number;
}

/** The job catalog: every job the API enqueues and a worker consumes. */
export const JOBS = {
  generate: {
    name: 'generate',
    payload: GenerateJobPayload,
    attempts: 5,
    backoff: { type: 'exponential', delay: 2_000 },
    timeoutMs: 60 * 60 * 1000,
  },
} as const satisfies Record<string, JobDefinition<z.ZodType>>;

/** The BullMQ job id of a video's generation job: one job per video, so a re-add is a no-op. */
export function generationJobId(videoId: VideoId): string {
  return videoId;
}
