import { z } from 'zod';
import { GENERATION_QUEUE, VideoStatus } from '@rehyat/contracts';
import { WEBHOOK_QUEUE } from '@rehyat/webhooks';
import { VideoAttemptError, VideoError } from './videos.js';

/** The BullMQ queues the admin API knows, by their queue names. */
export const ADMIN_QUEUE_NAMES = [GENERATION_QUEUE, WEBHOOK_QUEUE] as const;
export type AdminQueueName = (typeof ADMIN_QUEUE_NAMES)[number];

export const QueueNameParams = z.object({
  name: z.enum(ADMIN_QUEUE_NAMES).describe('Queue name: `video-generation` (generation jobs) or `webhook-delivery` (webhook attempts).'),
});

export const QueueCounts = z.object({
  waiting: z.number().int().min(0),
  active: z.number().int().min(0),
  delayed: z.number().int().min(0).describe('Waiting for a retry backoff or a scheduled time.'),
  prioritized: z.number().int().min(0).describe('Waiting with a priority (fair ordering between API keys).'),
  completed: z.number().int().min(0).describe('Kept for a while after completion.'),
  failed: z.number().int().min(0).describe('Failed for good (attempts exhausted or unrecoverable); kept for a while.'),
  paused: z
    .number()
    .int()
    .min(0)
    .describe('Jobs held back by the pause (waiting + prioritized while `is_paused`, else 0; BullMQ 6 leaves them in place).'),
});

export const AdminQueue = z
  .object({
    object: z.literal('queue'),
    name: z.enum(ADMIN_QUEUE_NAMES),
    is_paused: z.boolean().describe('Paused: workers take no new jobs; running ones finish.'),
    counts: QueueCounts,
  })
  .meta({ id: 'AdminQueue' });
export type AdminQueue = z.infer<typeof AdminQueue>;

export const AdminQueueList = z
  .object({ object: z.literal('list'), data: z.array(AdminQueue) })
  .meta({ id: 'AdminQueueList' });

/** The video a worker is generating, as the database has it. */
export const AdminWorkerVideo = z.object({
  id: z.string(),
  model: z.string(),
  status: VideoStatus,
  progress: z.number().int(),
  owner_id: z.string(),
});

export const AdminWorker = z
  .object({
    object: z.literal('worker'),
    id: z.string(),
    host: z.string(),
    pid: z.number().int(),
    device: z.string().describe('GPU name (`NVIDIA H100 80GB HBM3`), `cuda:<n>` when nvidia-smi failed, or `cpu`.'),
    device_memory_used_bytes: z.number().int().nullable(),
    device_memory_total_bytes: z.number().int().nullable(),
    current_video_id: z.string().nullable().describe('The video (= BullMQ job id) the worker is generating; null when idle.'),
    current_video: AdminWorkerVideo.nullable().describe('That video\'s row (model, status, progress); null when idle or deleted.'),
    chunks_per_second: z.number().nullable(),
    /** Unix seconds. */
    started_at: z.number().int(),
    /** Unix seconds of the latest heartbeat. */
    last_seen_at: z.number().int(),
    seconds_since_seen: z.number().min(0),
    stale: z.boolean().describe('No heartbeat for more than `stale_after_s`: the worker is probably gone.'),
  })
  .meta({ id: 'AdminWorker' });
export type AdminWorker = z.infer<typeof AdminWorker>;

export const AdminWorkerList = z
  .object({
    object: z.literal('list'),
    data: z.array(AdminWorker),
    stale_after_s: z.number().int().describe('Heartbeat age after which a worker is flagged stale (contracts\' `HEARTBEAT_TTL_S`).'),
  })
  .meta({ id: 'AdminWorkerList' });

export const AdminVideosQuery = z.strictObject({
  status: VideoStatus.optional().describe('Only videos with this status.'),
  after: z.string().optional().describe('Id of the last video of the previous page.'),
  limit: z.coerce.number().int().min(1).max(100).default(20).describe('1..100, default 20.'),
});

export const AdminVideoOwner = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe('The key\'s displayed prefix, `rh_...`.'),
});

export const AdminVideo = z
  .object({
    object: z.literal('admin.video'),
    id: z.string(),
    owner: AdminVideoOwner,
    status: VideoStatus,
    progress: z.number().int(),
    model: z.string(),
    prompt: z.string(),
    seconds: z.number(),
    size: z.string(),
    chunks_done: z.number().int(),
    chunks_total: z.number().int(),
    worker_id: z.string().nullable(),
    /** Unix seconds. */
    created_at: z.number().int(),
    started_at: z.number().int().nullable(),
    completed_at: z.number().int().nullable(),
    cancel_requested_at: z.number().int().nullable(),
    error: VideoError.nullable().describe('Set once the video failed.'),
    last_error: VideoAttemptError.nullable().describe('The latest failed attempt\'s error, also while a retry is pending.'),
  })
  .meta({ id: 'AdminVideo' });
export type AdminVideo = z.infer<typeof AdminVideo>;

export const AdminVideoList = z
  .object({
    object: z.literal('list'),
    data: z.array(AdminVideo),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  })
  .meta({ id: 'AdminVideoList' });

export const AdminVideoIdParams = z.object({
  videoId: z.string().min(1).describe('Video id, `video_...` (the generation job has the same id).'),
});
