import { z } from 'zod';

/** What a worker writes to its heartbeat hash every few seconds (as JSON in field `state`). */
export const WorkerHeartbeat = z.object({
  worker_id: z.string(),
  host: z.string(),
  pid: z.number().int(),
  /** Device the worker runs on, e.g. `NVIDIA H100 80GB HBM3` or `cpu`. */
  device: z.string(),
  device_memory_used_bytes: z.number().int().min(0).nullable(),
  device_memory_total_bytes: z.number().int().min(0).nullable(),
  current_video_id: z.string().nullable(),
  chunks_per_second: z.number().min(0).nullable(),
  started_at: z.string().datetime(),
  updated_at: z.string().datetime(),
});
export type WorkerHeartbeat = z.infer<typeof WorkerHeartbeat>;

/** A heartbeat older than this marks the worker as gone. */
export const HEARTBEAT_TTL_S = 30;

/**
 * Members of the worker registry (`Keyspace.workers()`) last seen longer ago than this are
 * pruned by readers: ten heartbeat lifetimes, so clock skew between a worker and a reader of up
 * to a few minutes never drops a live worker (its next beat adds it back anyway).
 */
export const WORKER_REGISTRY_PRUNE_AFTER_S = 10 * HEARTBEAT_TTL_S;
