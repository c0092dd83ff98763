import { z } from 'zod';
import { VideoStatus } from '@rehyat/contracts';

/** A number as JSON sends it or as multipart/form-data sends it (a string); ranges are checked per model. */
const Numeric = z.union([z.number(), z.string()]);

export const VideoIdParams = z.object({
  id: z.string().min(1).describe('Video id, `video_...`'),
});

/** `POST /v1/videos`: OpenAI's fields plus ours (`seed`, `steps`, `guidance`). */
export const CreateVideoBody = z
  .strictObject({
    prompt: z.string().describe('What the video shows; at most the model\'s `max_prompt_chars`.'),
    model: z.string().min(1).optional().describe('Public model name; the default model when absent.'),
    seconds: Numeric.optional().describe('Length in seconds, e.g. "4"; within the model\'s limits.'),
    size: z.string().optional().describe('`WIDTHxHEIGHT`, one of the model\'s sizes.'),
    seed: Numeric.optional().describe('0..4294967295; random when absent. Same seed and settings give the same video.'),
    steps: Numeric.optional().describe('Denoising steps; the model\'s default when absent.'),
    guidance: Numeric.optional().describe('Classifier-free guidance scale; the model\'s default when absent.'),
    input_reference: z.unknown().optional().describe('Not supported: image-to-video is not available; always rejected.'),
    webhook_url: z
      .string()
      .max(2048)
      .optional()
      .describe('Ours: also POST this video\'s events (Standard Webhooks, signed with `GET /v1/webhooks/default/secret`) to this URL.'),
  })
  .meta({ id: 'CreateVideoRequest' });
export type CreateVideoBody = z.infer<typeof CreateVideoBody>;

/** `POST /v1/videos/:id/remix`: a new prompt, everything else from the source video. */
export const RemixVideoBody = z.strictObject({ prompt: z.string() }).meta({ id: 'RemixVideoRequest' });

/** `POST /v1/videos/extensions`: continue a completed video (as the `openai` client's `videos.extend`). */
export const ExtendVideoBody = z
  .strictObject({
    video: z.strictObject({ id: z.string().min(1) }).describe('The completed video to continue, `{ "id": "video_..." }`.'),
    prompt: z.string().describe('What happens next.'),
    seconds: Numeric.optional().describe('Length of the new part in seconds; the model\'s minimum when absent.'),
  })
  .meta({ id: 'ExtendVideoRequest' });
export type ExtendVideoBody = z.infer<typeof ExtendVideoBody>;

export const ListVideosQuery = z.strictObject({
  after: z.string().optional().describe('Id of the last video of the previous page.'),
  limit: z.coerce.number().int().min(1).max(100).default(20).describe('1..100, default 20.'),
  order: z.enum(['asc', 'desc']).default('desc').describe('By creation time; newest first by default.'),
});

export const ContentQuery = z.strictObject({
  variant: z.enum(['video', 'thumbnail', 'spritesheet']).default('video'),
});

export const VideoError = z.object({ code: z.string(), message: z.string() });

/** Ours: a failed generation attempt's error (`at`: Unix seconds); see `Video.last_error`. */
export const VideoAttemptError = z.object({ code: z.string(), message: z.string(), at: z.number().int() });

export const VideoChunk = z.object({
  index: z.number().int().min(0),
  /** Signed URL of the chunk's fMP4 media segment. */
  url: z.string(),
  /** Seconds of video in the chunk. */
  duration: z.number(),
});

export const VideoUsage = z.object({
  gpu_ms: z.number().int().min(0),
  frames: z.number().int().min(0),
  seconds: z.number().min(0),
});

export const Video = z
  .object({
    id: z.string(),
    object: z.literal('video'),
    /** Unix seconds. */
    created_at: z.number().int(),
    status: VideoStatus,
    model: z.string(),
    /** 0..100. */
    progress: z.number().min(0).max(100),
    /** Length in seconds, as a string (OpenAI's convention); for an extension, the stitched total. */
    seconds: z.string(),
    size: z.string(),
    prompt: z.string().nullable(),
    remixed_from_video_id: z.string().nullable(),
    completed_at: z.number().int().nullable(),
    expires_at: z.number().int().nullable(),
    error: VideoError.nullable(),
    // ours
    extended_from_video_id: z.string().nullable(),
    seed: z.number().int(),
    steps: z.number().int(),
    guidance: z.number(),
    /** 0 = next to run; null when not waiting in the queue. */
    queue_position: z.number().int().min(0).nullable(),
    chunks_total: z.number().int().min(0),
    chunks: z.array(VideoChunk),
    /** HLS EVENT playlist of the chunks so far (ENDLIST once completed). */
    playlist_url: z.string(),
    usage: VideoUsage,
    cancel_requested_at: z.number().int().nullable(),
    /**
     * The latest failed attempt's error, also while a retry is pending (`status` stays `queued` or
     * `in_progress`; `error` is set only once the video failed). Kept after a later attempt succeeds.
     */
    last_error: VideoAttemptError.nullable(),
  })
  .meta({ id: 'Video' });
export type Video = z.infer<typeof Video>;

export const VideoList = z
  .object({
    object: z.literal('list'),
    data: z.array(Video),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  })
  .meta({ id: 'VideoList' });

export const DeletedVideo = z
  .object({ id: z.string(), object: z.literal('video.deleted'), deleted: z.literal(true) })
  .meta({ id: 'DeletedVideo' });
