import type { Redis } from 'ioredis';
import { HEARTBEAT_TTL_S, WORKER_REGISTRY_PRUNE_AFTER_S, WorkerHeartbeat, type Keyspace } from '@rehyat/contracts';
import type { PrismaClient } from '@rehyat/db';
import type { AdminWorker } from '../schemas/admin.js';

export interface ReadWorkersOptions {
  redis: Redis;
  keyspace: Keyspace;
  prisma: PrismaClient;
  /** @defaultValue `Date.now()` */
  now?: number;
  /** Called for a heartbeat key whose content is not a contract `WorkerHeartbeat`. */
  onInvalid?: (key: string, reason: string) => void;
}

const unix = (iso: string): number => Math.floor(Date.parse(iso) / 1000);

/**
 * The workers that have a heartbeat (contracts' `Keyspace.workerHeartbeat`: a hash whose field
 * `state` holds a `WorkerHeartbeat` as JSON, with a TTL of `HEARTBEAT_TTL_S` refreshed by each
 * beat), with the row of the video each is generating. Workers are found in the registry
 * (`Keyspace.workers()`, a sorted set each beat scores with its time), so the cost grows with the
 * number of workers, not with the keyspace; entries older than `WORKER_REGISTRY_PRUNE_AFTER_S`
 * are pruned on the way, and one whose hash has expired (a worker that died) is not listed.
 * A heartbeat older than `HEARTBEAT_TTL_S` (a worker whose clock is off, or a key written without
 * its TTL) is flagged `stale`. Sorted by worker id. A heartbeat hash of a worker that does not
 * write the registry (a worker from before it) is not found.
 */
export async function readWorkers(opts: ReadWorkersOptions): Promise<AdminWorker[]> {
  const { redis, keyspace, prisma } = opts;
  const now = opts.now ?? Date.now();
  const registry = keyspace.workers();
  const listed = await redis
    .multi()
    .zremrangebyscore(registry, '-inf', `(${now - WORKER_REGISTRY_PRUNE_AFTER_S * 1000}`)
    .zrange(registry, 0, -1)
    .exec();
  const [listErr, members] = listed?.[1] ?? [new Error('the registry read was aborted'), null];
  if (listErr) throw listErr;
  const keys = (members as string[]).map((id) => keyspace.workerHeartbeat(id));
  if (keys.length === 0) return [];

  const pipe = redis.pipeline();
  for (const k of keys) pipe.hget(k, 'state');
  const replies = (await pipe.exec()) ?? [];
  const beats: WorkerHeartbeat[] = [];
  keys.forEach((key, i) => {
    const [err, raw] = replies[i] ?? [new Error('no reply'), null];
    if (raw === null && !err) return; // expired: the worker stopped beating (its entry is pruned later)
    let parsed: ReturnType<typeof WorkerHeartbeat.safeParse> | null = null;
    try {
      parsed = err ? null : WorkerHeartbeat.safeParse(JSON.parse(String(raw)));
    } catch {
      parsed = null;
    }
    if (parsed?.success) beats.push(parsed.data);
    else opts.onInvalid?.(key, err ? err.message : parsed ? parsed.error.message : 'state is not JSON');
  });

  const videoIds = [...new Set(beats.map((b) => b.current_video_id).filter((id): id is string => id !== null))];
  const videos = videoIds.length
    ? await prisma.video.findMany({
        where: { id: { in: videoIds } },
        select: { id: true, model: true, status: true, progress: true, ownerId: true },
      })
    : [];
  const byId = new Map(videos.map((v) => [v.id, v]));
  return beats
    .map((b): AdminWorker => {
      const seenMs = Math.max(0, now - Date.parse(b.updated_at));
      const video = b.current_video_id === null ? undefined : byId.get(b.current_video_id);
      return {
        object: 'worker',
        id: b.worker_id,
        host: b.host,
        pid: b.pid,
        device: b.device,
        device_memory_used_bytes: b.device_memory_used_bytes,
        device_memory_total_bytes: b.device_memory_total_bytes,
        current_video_id: b.current_video_id,
        current_video: video ? { id: video.id, model: video.model, status: video.status, progress: video.progress, owner_id: video.ownerId } : null,
        chunks_per_second: b.chunks_per_second,
        started_at: unix(b.started_at),
        last_seen_at: unix(b.updated_at),
        seconds_since_seen: Math.round(seenMs / 100) / 10,
        stale: seenMs > HEARTBEAT_TTL_S * 1000,
      };
    })
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
