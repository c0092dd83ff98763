import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { FailureCode, GenerateJobPayload, generationJobId, isVideoId, type Keyspace, type VideoId } from '@rehyat/contracts';
import type { Prisma, PrismaClient } from '@rehyat/db';
import { publishVideoEvent } from '@rehyat/events';
import type { ActiveVideoLimiter } from '@rehyat/ratelimit';
import { ApiError } from '../errors.js';
import { withDeadline } from './deadline.js';
import type { AdminVideo } from '../schemas/admin.js';

export interface AdminVideoServiceDeps {
  prisma: PrismaClient;
  redis: Redis;
  keyspace: Keyspace;
  /** The generation queue (`app.generationQueue`). */
  queue: Queue;
  /** Active-video slots (`app.limits.active`): a retried video takes its owner's slot again. */
  active: ActiveVideoLimiter;
  /** Longest wait for Redis before the retry answers 503 (`DEPENDENCY_TIMEOUT_MS`). */
  redisTimeoutMs: number;
}

export interface AdminListOptions {
  status?: AdminVideo['status'] | undefined;
  after?: string | undefined;
  limit: number;
}

const ownerSelect = { owner: { select: { id: true, name: true, prefix: true } } } as const;
type Row = Prisma.VideoGetPayload<{ include: typeof ownerSelect }>;

const unix = (d: Date | null): number | null => (d === null ? null : Math.floor(d.getTime() / 1000));

/** The admin view of a video row: status and timing for operators, no playback URLs. */
export function toAdminVideo(row: Row): AdminVideo {
  return {
    object: 'admin.video',
    id: row.id,
    owner: { id: row.owner.id, name: row.owner.name, prefix: row.owner.prefix },
    status: row.status,
    progress: row.progress,
    model: row.model,
    prompt: row.prompt,
    seconds: row.seconds,
    size: row.size,
    chunks_done: row.chunksDone,
    chunks_total: row.chunksTotal,
    worker_id: row.workerId,
    created_at: unix(row.createdAt)!,
    started_at: unix(row.startedAt),
    completed_at: unix(row.completedAt),
    cancel_requested_at: unix(row.cancelRequestedAt),
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? row.errorCode } : null,
    last_error: row.lastErrorCode
      ? { code: row.lastErrorCode, message: row.lastErrorMessage ?? row.lastErrorCode, at: unix(row.lastErrorAt ?? row.updatedAt)! }
      : null,
  };
}

/**
 * Videos of every owner for the admin API: the newest first with cursor pagination, and the
 * retry of a failed video. Knows Prisma, BullMQ and Redis; of HTTP only the error catalogue.
 */
export class AdminVideoService {
  constructor(private readonly deps: AdminVideoServiceDeps) {}

  async list(opts: AdminListOptions): Promise<{ data: AdminVideo[]; has_more: boolean }> {
    const { prisma } = this.deps;
    const where: Prisma.VideoWhereInput = opts.status ? { status: opts.status } : {};
    if (opts.after !== undefined) {
      const cursor = isVideoId(opts.after)
        ? await prisma.video.findUnique({ where: { id: opts.after }, select: { id: true, createdAt: true } })
        : null;
      if (!cursor) throw new ApiError('invalid_value', `Invalid value for 'after': no video '${opts.after}'.`, { param: 'after' });
      where.OR = [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }];
    }
    const rows = await prisma.video.findMany({
      where,
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: opts.limit + 1,
      include: ownerSelect,
    });
    return { data: rows.slice(0, opts.limit).map(toAdminVideo), has_more: rows.length > opts.limit };
  }

  /**
   * Runs a failed video again: its BullMQ job, still in the failed set with the payload the API
   * queued when the video was created, goes back to the queue with its attempts reset (the
   * worker resumes after the video's last checkpoint). Refused (409 `video_not_retryable`) when
   * the video is not failed, its owner asked to cancel it, or its job is gone (failed jobs are
   * kept 7 days), not failed yet, or off the current contract. In order: the row goes back to
   * `queued` (only from `failed`: concurrent retries run once), the event stream is kept and gets
   * `video.queued`, the owner's active-video slot is taken, the job is retried. If a step fails
   * the row is put back as it was, `video.failed` is published again, and the answer is 503.
   */
  async retry(id: string): Promise<AdminVideo> {
    const { prisma, redis, keyspace, queue, active, redisTimeoutMs } = this.deps;
    const inTime = <T>(work: Promise<T>) => withDeadline(work, redisTimeoutMs, 'Redis');
    const row = isVideoId(id) ? await prisma.video.findUnique({ where: { id }, include: ownerSelect }) : null;
    if (!row) throw new ApiError('video_not_found', `No video found with id '${id}'.`, { param: 'videoId' });
    const refuse = (why: string) => new ApiError('video_not_retryable', `The video '${id}' cannot be retried: ${why}.`, { param: 'videoId' });
    if (row.status !== 'failed') throw refuse(`it is ${row.status}; only a failed video can be retried`);
    if (row.cancelRequestedAt) throw refuse('its owner asked to cancel it');

    const vid = id as VideoId;
    const job = await inTime(queue.getJob(generationJobId(vid)));
    if (!job) throw refuse('its generation job is no longer kept (failed jobs are removed after 7 days); create the video again');
    const state = await inTime(job.getState());
    if (state !== 'failed') throw refuse(`its generation job is ${state}, not failed yet; try again in a moment`);
    const payload = GenerateJobPayload.safeParse(job.data);
    if (!payload.success || payload.data.video_id !== id) {
      throw refuse('its job payload does not match the current job contract; create the video again');
    }

    const { count } = await prisma.video.updateMany({
      where: { id, status: 'failed', cancelRequestedAt: null },
      data: { status: 'queued', errorCode: null, errorMessage: null, completedAt: null, expiresAt: null },
    });
    if (count === 0) throw refuse('it changed while being retried');
    try {
      await inTime(
        (async () => {
          await redis.persist(keyspace.videoEvents(vid)); // a terminal event had set it to expire
          await publishVideoEvent(redis, keyspace, vid, 'video.queued', { queue_position: null });
          await active.acquire(row.ownerId, id, Number.MAX_SAFE_INTEGER); // an admin retry is over any cap
          await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        })(),
      );
    } catch (err) {
      await this.#putBack(row);
      throw new ApiError('service_unavailable', 'The video could not be queued again; it stays failed. Try again.', { cause: err });
    }
    const after = await prisma.video.findUniqueOrThrow({ where: { id }, include: ownerSelect });
    return toAdminVideo(after);
  }

  /** Best effort: the row as it was, and its failure announced again (streams, webhooks, slot release). */
  async #putBack(row: Row): Promise<void> {
    const { prisma, redis, keyspace } = this.deps;
    await prisma.video
      .updateMany({
        where: { id: row.id, status: 'queued' },
        data: { status: 'failed', errorCode: row.errorCode, errorMessage: row.errorMessage, completedAt: row.completedAt, expiresAt: row.expiresAt },
      })
      .catch(() => undefined);
    const code = FailureCode.safeParse(row.errorCode);
    await publishVideoEvent(redis, keyspace, row.id as VideoId, 'video.failed', {
      code: code.success ? code.data : 'internal_error',
      message: row.errorMessage ?? 'failed',
    }).catch(() => undefined);
  }
}
