import { execFile } from 'node:child_process';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { HEARTBEAT_TTL_S, WorkerHeartbeat, type Keyspace } from '@rehyat/contracts';
import type { Logger } from './logger.js';

const run = promisify(execFile);

/** What the processor tells the heartbeat about the work in hand. */
export class WorkerActivity {
  currentVideoId: string | null = null;
  #chunkTimes: number[] = [];
  /** Call when a chunk was shipped. */
  chunkDone(now = Date.now()): void {
    this.#chunkTimes.push(now);
    if (this.#chunkTimes.length > 16) this.#chunkTimes.shift();
  }
  /** Chunks per second over the last (up to 16) chunks of the last minute, or null. */
  chunksPerSecond(now = Date.now()): number | null {
    const recent = this.#chunkTimes.filter((t) => now - t < 60_000);
    if (recent.length < 2) return null;
    return (recent.length - 1) / ((recent[recent.length - 1]! - recent[0]!) / 1000);
  }
}

export interface DeviceInfo {
  device: string;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
}

/** GPU name and memory through nvidia-smi for `cuda`, else `cpu` with no device memory. */
export async function readDeviceInfo(device: 'cpu' | 'cuda', deviceId: number): Promise<DeviceInfo> {
  if (device === 'cpu') return { device: 'cpu', memoryUsedBytes: null, memoryTotalBytes: null };
  try {
    const { stdout } = await run('nvidia-smi', ['-i', String(deviceId), '--query-gpu=name,memory.used,memory.total', '--format=csv,noheader,nounits'], { timeout: 5000 });
    const [name, used, total] = stdout.trim().split(',').map((s) => s.trim());
    return { device: name ?? `cuda:${deviceId}`, memoryUsedBytes: Number(used) * 2 ** 20, memoryTotalBytes: Number(total) * 2 ** 20 };
  } catch {
    return { device: `cuda:${deviceId}`, memoryUsedBytes: null, memoryTotalBytes: null };
  }
}

export interface HeartbeatOptions {
  redis: Redis;
  keyspace: Keyspace;
  workerId: string;
  intervalMs: number;
  activity: WorkerActivity;
  deviceInfo: () => Promise<DeviceInfo>;
  log: Logger;
}

/**
 * Writes contracts' `WorkerHeartbeat` (JSON in field `state` of the worker's hash, TTL
 * `HEARTBEAT_TTL_S`) now and every `intervalMs`, and in the same MULTI scores the worker id in
 * the worker registry (`Keyspace.workers()`) with the beat's time, which is how the admin API
 * finds workers. Returns a stop function that deletes the key and the registry entry.
 */
export async function startHeartbeat(opts: HeartbeatOptions): Promise<() => Promise<void>> {
  const startedAt = new Date().toISOString();
  const key = opts.keyspace.workerHeartbeat(opts.workerId);
  const registry = opts.keyspace.workers();
  const beat = async () => {
    const dev = await opts.deviceInfo();
    const now = Date.now();
    const state = WorkerHeartbeat.parse({
      worker_id: opts.workerId,
      host: hostname(),
      pid: process.pid,
      device: dev.device,
      device_memory_used_bytes: dev.memoryUsedBytes,
      device_memory_total_bytes: dev.memoryTotalBytes,
      current_video_id: opts.activity.currentVideoId,
      chunks_per_second: opts.activity.chunksPerSecond(),
      started_at: startedAt,
      updated_at: new Date(now).toISOString(),
    });
    await opts.redis
      .multi()
      .hset(key, 'state', JSON.stringify(state))
      .expire(key, HEARTBEAT_TTL_S)
      .zadd(registry, now, opts.workerId)
      .exec();
  };
  await beat();
  const timer = setInterval(() => {
    beat().catch((err: unknown) => opts.log.warn('heartbeat write failed', { err }));
  }, opts.intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await opts.redis.multi().del(key).zrem(registry, opts.workerId).exec().catch(() => undefined);
  };
}
