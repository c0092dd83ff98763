import { createHash } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  CONTENT_VARIANTS,
  CONTRACT_VERSION,
  GenerateJobPayload,
  generationJobId,
  isTerminal,
  isVideoId,
  storageKeys,
  type ContentVariant,
  type JobSource,
  type Keyspace,
  type VideoEventData,
  type VideoEventType,
  type VideoId,
} from '@rehyat/contracts';
import { Prisma, type NewVideoRow, type PgPool, type PrismaClient } from '@rehyat/db';
import { requestCancel } from '@rehyat/events';
import { ObjectNotFoundError, StorageUnavailableError, type GetResult, type ObjectStorage } from '@rehyat/storage';
import { ApiError } from '../errors.js';
import type { ModelRegistry } from '../model-registry.js';
import type { FairAssignment } from '@rehyat/ratelimit';
import { prioritizedSetKey, waitListKey } from '../plugins/queue.js';
import { CreationBatcher } from './creation-batcher.js';
import { newPooledVideoId } from './video-ids.js';
import type { ExtendVideoBody, Video } from '../schemas/videos.js';
import { checkPrompt, checkSeconds, resolveGenerationParams, resolveModel, type GenerationParams, type RawGenerationInput } from './generation-params.js';
import { toVideo, type PlaybackUrls, type VideoRowWithChunks } from './video-view.js';

/** Appends a live event to a video's stream (implemented by `@rehyat/events`). */
export interface EventPublisher {
  publish<T extends VideoEventType>(videoId: VideoId, type: T, data: VideoEventData<T>): Promise<unknown>;
}

export interface VideoServiceDeps {
  prisma: PrismaClient;
  /** The pool behind `prisma`: new videos are inserted with one raw statement per batch. */
  pg: PgPool;
  queue: Queue;
  redis: Redis;
  keyspace: Keyspace;
  storage: ObjectStorage;
  events: EventPublisher;
  models: ModelRegistry;
  urls: PlaybackUrls;
  /** Seconds a finished video stays downloadable; 0: forever. */
  retentionS: number;
  /** Seconds an Idempotency-Key is remembered. */
  idempotencyTtlS: number;
  /**
   * BullMQ priorities and queue positions of a batch of new jobs of these owners, in order (fair
   * ordering between API keys, see @rehyat/ratelimit `FairPriority.assignMany`); absent: FIFO.
   */
  assignPriorities?: (ownerIds: string[]) => Promise<FairAssignment[]>;
  /** Sizes of creation batches (metrics). */
  onCreationBatch?: (size: number) => void;
}

export interface ListOptions {
  after?: string | undefined;
  limit: number;
  order: 'asc' | 'desc';
}

/** How long the cancel flag of a running video lives; the worker checks it between steps. */
const CANCEL_FLAG_TTL_S = 24 * 3600;
const chunkSelect = { select: { index: true, durationSeconds: true, frames: true } } as const;

/**
 * Videos of one deployment: creation (with Idempotency-Key), reads scoped to the owning key,
 * cancellation through the contract's cancel signal, deletion with the stored objects.
 * Knows Prisma, BullMQ and Redis; knows nothing of HTTP except the error catalogue.
 */
export class VideoService {
  readonly #batcher: CreationBatcher;

  constructor(private readonly deps: VideoServiceDeps) {
    this.#batcher = new CreationBatcher({
      pool: deps.pg,
      queue: deps.queue,
      keyspace: deps.keyspace,
      ...(deps.assignPriorities ? { assignPriorities: deps.assignPriorities } : {}),
      ...(deps.onCreationBatch ? { onBatch: deps.onCreationBatch } : {}),
      removeRows: async (ids) => {
        await this.deps.prisma.$transaction([
          this.deps.prisma.idempotencyRecord.deleteMany({ where: { videoId: { in: ids } } }),
          this.deps.prisma.video.deleteMany({ where: { id: { in: ids } } }),
        ]);
      },
    });
  }

  /** Waits for creations in flight (call before closing the connections). */
  async close(): Promise<void> {
    await this.#batcher.drain();
  }

  // ---------------------------------------------------------------- creation

  /** `POST /v1/videos`. Returns the new video, or the one an earlier request with the same key made. */
  create(ownerId: string, input: RawGenerationInput, idempotencyKey?: string): Promise<Video> {
    return this.#createOnce(ownerId, 'create', input, idempotencyKey, () => resolveGenerationParams(this.deps.models, input), undefined, undefined);
  }

  /** `POST /v1/videos/:id/remix`: a new prompt with the source's model, seed and settings. */
  async remix(ownerId: string, sourceId: string, body: { prompt: string }, idempotencyKey?: string): Promise<Video> {
    const source = await this.#completedSource(ownerId, sourceId, 'id');
    return this.#createOnce(ownerId, `remix:${source.id}`, body, idempotencyKey, () => {
      const model = resolveModel(this.deps.models, source.model);
      const prompt = checkPrompt(model, body.prompt);
      const params = resolveGenerationParams(this.deps.models, {
        prompt,
        model: model.name,
        seconds: source.seconds,
        size: source.size,
        seed: Number(source.seed),
        steps: source.steps,
        guidance: source.guidance,
      });
      return params;
    }, { kind: 'remix', video_id: source.id as VideoId }, source.shift ?? undefined);
  }

  /** `POST /v1/videos/extensions`: continue a completed video for `seconds` more. */
  async extend(ownerId: string, body: ExtendVideoBody, idempotencyKey?: string): Promise<Video> {
    const source = await this.#completedSource(ownerId, body.video.id, 'video.id');
    return this.#createOnce(ownerId, 'extension', body, idempotencyKey, () => {
      const model = resolveModel(this.deps.models, source.model);
      const prompt = checkPrompt(model, body.prompt);
      const seconds = checkSeconds(model, body.seconds);
      return resolveGenerationParams(this.deps.models, {
        prompt,
        model: model.name,
        seconds,
        size: source.size,
        seed: Number(source.seed),
        steps: source.steps,
        guidance: source.guidance,
      });
    }, { kind: 'extension', video_id: source.id as VideoId }, source.shift ?? undefined, source.durationSeconds ?? source.seconds);
  }

  async #completedSource(ownerId: string, id: string, param: string) {
    const source = await this.#findOwned(ownerId, id, param);
    if (source.status !== 'completed') {
      throw new ApiError('video_not_completed', `The video '${id}' is ${source.status}; only a completed video can be used as a source.`, { param });
    }
    return source;
  }

  async #createOnce(
    ownerId: string,
    route: string,
    body: unknown,
    idempotencyKey: string | undefined,
    resolve: () => GenerationParams,
    source: JobSource | undefined,
    shift: number | undefined,
    sourceSeconds?: number,
  ): Promise<Video> {
    const requestHash = idempotencyKey === undefined ? null : hashRequest(route, body);
    if (idempotencyKey !== undefined) {
      const earlier = await this.#idempotentReplay(ownerId, idempotencyKey, requestHash!);
      if (earlier) return earlier;
    }
    const params = resolve();
    const id = newPooledVideoId();
    const now = new Date();
    const storedSeconds = sourceSeconds === undefined ? params.seconds : sourceSeconds + params.plan.seconds;
    const payload = GenerateJobPayload.parse({
      v: CONTRACT_VERSION,
      video_id: id,
      model: params.model.name,
      prompt: params.prompt,
      seconds: params.seconds,
      width: params.width,
      height: params.height,
      seed: params.seed,
      steps: params.steps,
      guidance: params.guidance,
      ...(shift === undefined ? {} : { shift }),
      ...(source === undefined ? {} : { source }),
      owner_id: ownerId,
      created_at: now.toISOString(),
    });

    const row: NewVideoRow = {
      id,
      ownerId,
      prompt: params.prompt,
      model: params.model.name,
      seconds: storedSeconds,
      size: params.size,
      width: params.width,
      height: params.height,
      seed: BigInt(params.seed),
      steps: params.steps,
      guidance: params.guidance,
      shift: shift ?? null,
      sourceVideoId: source?.video_id ?? null,
      sourceKind: source?.kind ?? null,
      chunksTotal: params.plan.chunks,
      createdAt: now,
      // Per-request webhook (POST /v1/videos only); the webhooks plugin checked it before.
      webhookUrl: typeof (body as { webhook_url?: unknown }).webhook_url === 'string' ? (body as { webhook_url: string }).webhook_url : null,
    };
    if (idempotencyKey !== undefined) {
      // The row and its idempotency record together, so a concurrent twin finds one or the other.
      try {
        await this.deps.prisma.$transaction([
          this.deps.prisma.video.create({ data: { ...row, status: 'queued' } }),
          this.deps.prisma.idempotencyRecord.create({
            data: {
              ownerId,
              key: idempotencyKey,
              requestHash: requestHash!,
              videoId: id,
              expiresAt: new Date(now.getTime() + this.deps.idempotencyTtlS * 1000),
            },
          }),
        ]);
      } catch (err) {
        if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002') {
          // A concurrent request with the same key won the race: answer as a replay of it.
          const earlier = await this.#idempotentReplay(ownerId, idempotencyKey, requestHash!);
          if (earlier) return earlier;
        }
        throw err;
      }
    }
    // Batched with the creations of other requests: one INSERT (unless done above), one MULTI
    // with the `video.queued` event and the job. Fails with 503 having stored and queued nothing.
    const { position } = await this.#batcher.submit({ row, payload, inserted: idempotencyKey !== undefined });
    return toVideo(newVideoView(row), position, this.#viewOpts());
  }

  async #idempotentReplay(ownerId: string, key: string, requestHash: string): Promise<Video | null> {
    const record = await this.deps.prisma.idempotencyRecord.findUnique({ where: { ownerId_key: { ownerId, key } } });
    if (!record) return null;
    if (record.expiresAt.getTime() <= Date.now()) {
      await this.deps.prisma.idempotencyRecord.deleteMany({ where: { ownerId, key, expiresAt: { lte: new Date() } } });
      return null;
    }
    if (record.requestHash !== requestHash) {
      throw new ApiError('idempotency_key_reused', 'This Idempotency-Key was already used with a different request body.', { param: 'Idempotency-Key' });
    }
    const video = await this.deps.prisma.video.findFirst({ where: { id: record.videoId, ownerId }, include: { chunks: chunkSelect } });
    if (!video) {
      throw new ApiError('idempotency_key_reused', 'This Idempotency-Key created a video that has since been deleted; use a new key.', { param: 'Idempotency-Key' });
    }
    return this.#view(video);
  }

  // ---------------------------------------------------------------- reads

  async get(ownerId: string, id: string): Promise<Video> {
    return this.#view(await this.#findOwned(ownerId, id, 'id'));
  }

  async list(ownerId: string, opts: ListOptions): Promise<{ data: Video[]; has_more: boolean }> {
    const dir = opts.order;
    let where: Prisma.VideoWhereInput = { ownerId };
    if (opts.after !== undefined) {
      const cursor = isVideoId(opts.after)
        ? await this.deps.prisma.video.findFirst({ where: { id: opts.after, ownerId }, select: { id: true, createdAt: true } })
        : null;
      if (!cursor) throw new ApiError('invalid_value', `Invalid value for 'after': no video '${opts.after}'.`, { param: 'after' });
      const cmp = dir === 'desc' ? 'lt' : 'gt';
      where = {
        ownerId,
        OR: [{ createdAt: { [cmp]: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { [cmp]: cursor.id } }],
      };
    }
    const rows = await this.deps.prisma.video.findMany({
      where,
      orderBy: [{ createdAt: dir }, { id: dir }],
      take: opts.limit + 1,
      include: { chunks: chunkSelect },
    });
    const page = rows.slice(0, opts.limit);
    const positions = await this.#queuePositions(page.filter((r: VideoRowWithChunks) => r.status === 'queued').map((r: VideoRowWithChunks) => r.id));
    return {
      data: page.map((r: VideoRowWithChunks) => toVideo(r, positions.get(r.id) ?? null, this.#viewOpts())),
      has_more: rows.length > opts.limit,
    };
  }

  /** Opens a finished video's content variant for streaming. */
  async content(ownerId: string, id: string, variant: ContentVariant): Promise<GetResult & { contentType: string }> {
    const video = await this.#findOwned(ownerId, id, 'id');
    if (video.status !== 'completed') {
      throw new ApiError('video_not_ready', `The video '${id}' is ${video.status}; content is available once it has completed.`, { param: 'id' });
    }
    const spec = CONTENT_VARIANTS[variant];
    try {
      const obj = await this.deps.storage.get(spec.key(video.id as VideoId));
      return { ...obj, contentType: spec.contentType };
    } catch (err) {
      if (err instanceof ObjectNotFoundError) {
        throw new ApiError('content_not_found', `The video '${id}' has no ${variant} content.`, { param: 'variant' });
      }
      if (err instanceof StorageUnavailableError) throw new ApiError('service_unavailable', 'Object storage is unavailable.', { cause: err });
      throw err;
    }
  }

  // ---------------------------------------------------------------- cancel, delete

  /**
   * Queued: the job is removed and the video is cancelled at once. In progress: the contract's
   * cancel flag is set and announced, the worker stops between steps and reports
   * `video.cancelled`. Finished: 409.
   */
  async cancel(ownerId: string, id: string): Promise<{ video: Video; previousStatus: string }> {
    const video = await this.#findOwned(ownerId, id, 'id');
    if (isTerminal(video.status)) {
      throw new ApiError('video_not_cancellable', `The video '${id}' is already ${video.status}.`, { param: 'id' });
    }
    const vid = video.id as VideoId;
    if (video.status === 'queued' && (await this.#removeQueuedJob(vid))) {
      const { count } = await this.deps.prisma.video.updateMany({
        where: { id: vid, status: 'queued' },
        data: { status: 'cancelled', cancelRequestedAt: new Date() },
      });
      if (count === 1) {
        await this.deps.events.publish(vid, 'video.cancelled', {});
        return { video: await this.get(ownerId, id), previousStatus: 'queued' };
      }
    }
    await this.#signalCancel(vid);
    await this.deps.prisma.video.update({ where: { id: vid }, data: { cancelRequestedAt: new Date() } });
    return { video: await this.get(ownerId, id), previousStatus: video.status };
  }

  /**
   * Deletes the video, its chunks, stored objects, event stream and, for a queued video, its job.
   * A video a worker is generating is 409 `video_in_progress` (cancel it first): deleting under
   * a running worker would leave the objects it uploads afterwards behind.
   */
  async delete(ownerId: string, id: string): Promise<{ id: string; object: 'video.deleted'; deleted: true }> {
    const video = await this.#findOwned(ownerId, id, 'id');
    const vid = video.id as VideoId;
    if (video.status === 'in_progress' || (video.status === 'queued' && !(await this.#removeQueuedJob(vid)))) {
      throw new ApiError('video_in_progress', `The video '${id}' is being generated; cancel it (POST /v1/videos/${id}/cancel) and delete it once it is cancelled.`, { param: 'id' });
    }
    await this.deps.prisma.$transaction([
      this.deps.prisma.idempotencyRecord.deleteMany({ where: { videoId: vid } }),
      this.deps.prisma.video.delete({ where: { id: vid } }),
    ]);
    try {
      await this.deps.storage.deletePrefix(storageKeys.prefix(vid));
    } catch (err) {
      throw new ApiError('service_unavailable', 'The video was deleted but object storage is unavailable; its files remain.', { cause: err });
    }
    await this.deps.redis.del(this.deps.keyspace.videoEvents(vid));
    return { id: vid, object: 'video.deleted', deleted: true };
  }

  /** Removes a waiting job; false when there is none to remove or a worker holds it. */
  async #removeQueuedJob(id: VideoId): Promise<boolean> {
    const job = await this.deps.queue.getJob(generationJobId(id));
    if (!job) return true;
    const state = await job.getState();
    if (state === 'active') return false;
    try {
      await job.remove();
      return true;
    } catch {
      return false;
    }
  }

  async #signalCancel(id: VideoId): Promise<void> {
    await requestCancel(this.deps.redis, this.deps.keyspace, id, { reason: 'cancelled through the API', ttlS: CANCEL_FLAG_TTL_S });
  }

  // ---------------------------------------------------------------- helpers

  async #findOwned(ownerId: string, id: string, param: string) {
    const row = isVideoId(id)
      ? await this.deps.prisma.video.findFirst({ where: { id, ownerId }, include: { chunks: chunkSelect } })
      : null;
    if (!row) throw new ApiError('video_not_found', `No video found with id '${id}'.`, { param });
    return row;
  }

  async #view(row: VideoRowWithChunks): Promise<Video> {
    const positions = row.status === 'queued' ? await this.#queuePositions([row.id]) : new Map<string, number>();
    return toVideo(row, positions.get(row.id) ?? null, this.#viewOpts());
  }

  #viewOpts() {
    return { urls: this.deps.urls, retentionS: this.deps.retentionS };
  }

  /**
   * 0-based places in line (0 = next to run). BullMQ hands out the wait list first (FIFO, taken
   * from the right), then the prioritized set in score order; a delayed or active job has none.
   */
  async #queuePositions(ids: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (ids.length === 0) return out;
    const wait = waitListKey(this.deps.keyspace.prefix);
    const prioritized = prioritizedSetKey(this.deps.keyspace.prefix);
    const pipe = this.deps.redis.pipeline().llen(wait);
    for (const id of ids) pipe.lpos(wait, generationJobId(id as VideoId)).zrank(prioritized, generationJobId(id as VideoId));
    const results = (await pipe.exec()) ?? [];
    const len = Number(results[0]?.[1] ?? 0);
    ids.forEach((id, i) => {
      const lpos = results[1 + 2 * i]?.[1];
      const rank = results[2 + 2 * i]?.[1];
      if (typeof lpos === 'number') out.set(id, len - 1 - lpos);
      else if (typeof rank === 'number') out.set(id, len + rank);
    });
    return out;
  }
}

/** The row a just-inserted video reads back as (the schema's defaults), without reading it. */
function newVideoView(row: NewVideoRow): VideoRowWithChunks {
  // Spelled out rather than spread: one object shape, cheap to build on the hot path.
  return {
    id: row.id,
    ownerId: row.ownerId,
    status: 'queued',
    progress: 0,
    prompt: row.prompt,
    model: row.model,
    seconds: row.seconds,
    size: row.size,
    width: row.width,
    height: row.height,
    seed: row.seed,
    steps: row.steps,
    guidance: row.guidance,
    shift: row.shift,
    sourceVideoId: row.sourceVideoId,
    sourceKind: row.sourceKind,
    errorCode: null,
    errorMessage: null,
    chunksTotal: row.chunksTotal,
    chunksDone: 0,
    framesTotal: null,
    durationSeconds: null,
    gpuMs: 0n,
    workerId: null,
    cancelRequestedAt: null,
    createdAt: row.createdAt,
    startedAt: null,
    completedAt: null,
    expiresAt: null,
    updatedAt: row.createdAt,
    webhookUrl: row.webhookUrl,
    chunks: [],
  };
}

/** sha256 of the route and the body with sorted keys and scalars as strings (JSON `4` = form `"4"`). */
export function hashRequest(route: string, body: unknown): string {
  const canon = (v: unknown): unknown => {
    if (v === null || v === undefined) return null;
    if (Array.isArray(v)) return v.map(canon);
    if (Buffer.isBuffer(v)) return `sha256:${createHash('sha256').update(v).digest('hex')}`;
    if (typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v as object)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
      );
    }
    return String(v);
  };
  return createHash('sha256').update(JSON.stringify([route, canon(body)])).digest('hex');
}
