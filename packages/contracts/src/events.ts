import { z } from 'zod';
import { FailureCode } from './failure-codes.js';
import type { VideoId } from './ids.js';

/**
 * Live events of one video. Each video has one Redis stream (see {@link videoEventStreamKey});
 * the worker and the API append with XADD, the API's SSE route reads it with XREAD, so any API
 * replica can serve any client. The Redis entry id is the SSE event id: monotonic per video, and
 * `Last-Event-ID` resumes right after it.
 */
export const VideoEventType = z.enum([
  'video.queued',
  'video.in_progress',
  'video.progress',
  'video.chunk',
  'video.completed',
  'video.failed',
  'video.cancelled',
]);
export type VideoEventType = z.infer<typeof VideoEventType>;

export const TERMINAL_EVENT_TYPES: ReadonlySet<VideoEventType> = new Set([
  'video.completed',
  'video.failed',
  'video.cancelled',
]);

export const ProgressData = z.object({
  /** 0..100, whole video. */
  progress: z.number().min(0).max(100),
  /** Index of the chunk being generated (0-based). */
  chunk: z.number().int().min(0),
  chunks_total: z.number().int().positive(),
  /** Denoising step within the chunk (1-based, after it finished). */
  step: z.number().int().min(0),
  steps_total: z.number().int().positive(),
  /** Estimated seconds until completion, null while unknown. */
  eta: z.number().min(0).nullable(),
});
export type ProgressData = z.infer<typeof ProgressData>;

export const ChunkData = z.object({
  index: z.number().int().min(0),
  /** Seconds of video in this chunk. */
  duration: z.number().positive(),
  frames: z.number().int().positive(),
  chunks_total: z.number().int().positive(),
});
export type ChunkData = z.infer<typeof ChunkData>;

export const FailedData = z.object({ code: FailureCode, message: z.string() });
export type FailedData = z.infer<typeof FailedData>;

const Empty = z.object({}).strict();

/** Data schema of each event type. */
export const EVENT_DATA = {
  'video.queued': z.object({ queue_position: z.number().int().min(0).nullable() }),
  'video.in_progress': z.object({ worker_id: z.string().optional() }),
  'video.progress': ProgressData,
  'video.chunk': ChunkData,
  'video.completed': z.object({ chunks_total: z.number().int().min(0), seconds: z.number().min(0) }),
  'video.failed': FailedData,
  'video.cancelled': Empty,
} as const satisfies Record<VideoEventType, z.ZodType>;

export type VideoEventData<T extends VideoEventType> = z.infer<(typeof EVENT_DATA)[T]>;

/** An event as appended to the stream (the `payload` field holds its JSON). */
export interface VideoEvent<T extends VideoEventType = VideoEventType> {
  type: T;
  video_id: VideoId;
  /** ISO timestamp of when the producer emitted it. */
  created_at: string;
  data: VideoEventData<T>;
}

/**
 * The envelope of every event, built once at module load: zod compiles a schema on its first
 * parse, and building one per call cost more than the rest of a parse (readers decode every event).
 */
const VideoEventHead = z.object({ type: VideoEventType, video_id: z.string(), created_at: z.string(), data: z.unknown() });

/**
 * Parses one stream entry's JSON payload: a SyntaxError on bad JSON, a ZodError on anything
 * off-contract (envelope first, then `EVENT_DATA[type]`). Unknown keys are dropped. Returns a new
 * object on every call.
 */
export function parseVideoEvent(json: string): VideoEvent {
  const head = VideoEventHead.parse(JSON.parse(json));
  const data = EVENT_DATA[head.type].parse(head.data);
  return { ...head, data } as VideoEvent;
}

export function isTerminalEvent(type: VideoEventType): boolean {
  return TERMINAL_EVENT_TYPES.has(type);
}
