import type { Job } from 'bullmq';
import { UnrecoverableError, WaitingError } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  GenerateJobPayload,
  INIT_CONTENT_TYPE,
  SEGMENT_CONTENT_TYPE,
  CONTENT_VARIANTS,
  isTerminal,
  isVideoId,
  storageKeys,
  type FailureCode,
  type Keyspace,
  type VideoEventData,
  type VideoEventType,
  type VideoId,
} from '@rehyat/contracts';
import { clearCancelRequest, isCancelRequested, publishVideoEvent } from '@rehyat/events';
import { CheckpointFormatError, decodeCheckpoint, type GeneratedChunk, type Generator, type StepProgress } from '@rehyat/pipeline';
import { VideoCancelledError, watchCancel, type CancelAnnouncements } from '../cancel-watch.js';
import { InvalidJobError, classifyFailure } from '../failure.js';
import type { WorkerActivity } from '../heartbeat.js';
import type { Logger } from '../logger.js';
import { SegmentEncoder, finalizeMedia } from '../media/index.js';
import type { VideoRepository } from '../video-repository.js';
import { CheckpointWriter, checkpointDue, type CheckpointPolicy } from './checkpoint-writer.js';
import { readPriorDelivery, type PriorDelivery } from './prior-delivery.js';

/** The object-storage operations the processor uses (`@rehyat/storage`'s ObjectStorage has them). */
export interface ObjectStore {
  put(key: string, body: Uint8Array, opts: { contentType: string }): Promise<unknown>;
  getBuffer(key: string): Promise<Buffer>;
  list(prefix: string): Promise<string[]>;
}

/** Resolves a public model name (`payload.model`) to a loaded generator. */
export interface GeneratorProvider {
  /** Throws `InvalidJobError` for an unknown name, `ModelUnavailableError` for missing files. */
  get(model: string): Promise<Generator>;
}

export interface GenerateProcessorDeps {
  repo: VideoRepository;
  storage: ObjectStore;
  redis: Redis;
  keyspace: Keyspace;
  generators: GeneratorProvider;
  log: Logger;
  workerId: string;
  activity: WorkerActivity;
  /** Set when the process must stop: the job is released after the current chunk. */
  shutdown: { readonly requested: boolean };
  announcements?: CancelAnnouncements;
  media: { ffmpegBin: string; crf: number; preset: string };
  cancelPollMs: number;
  /** Checkpoint cadence and background upload (config `CHECKPOINT_EVERY_CHUNKS`, `CHECKPOINT_ASYNC`). */
  checkpoints: CheckpointPolicy;
  /** Called after a device-fatal failure was recorded; the process should exit non-zero. */
  onDeviceFatal: (err: unknown) => void;
}

/** Thrown inside the processor when SIGTERM released the job (it goes back to waiting). */
class ReleasedForShutdown extends Error {}

/**
 * The processor of `generate` jobs. Per job: validate, mark in progress, run the generator chunk
 * by chunk (each chunk: fMP4 segment -> S3, chunk row, `video.chunk` + `video.progress` events,
 * checkpoint -> S3), then finalize (MP4, thumbnail, spritesheet, completed). A job that was
 * interrupted (stalled worker, SIGTERM, retry) resumes after its last checkpoint in S3.
 */
export function createGenerateProcessor(deps: GenerateProcessorDeps) {
  return async function processGenerate(job: Job, token?: string): Promise<void> {
    const parsed = GenerateJobPayload.safeParse(job.data);
    if (!parsed.success) {
      const rawId = (job.data as { video_id?: unknown } | undefined)?.video_id;
      const issue = parsed.error.issues[0];
      const message = `invalid job payload at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`;
      if (typeof rawId === 'string' && isVideoId(rawId)) await failVideo(deps, rawId, 'invalid_request', message);
      deps.log.error('invalid job payload', { jobId: job.id, message });
      throw new UnrecoverableError(message);
    }
    const payload = parsed.data;
    const id = payload.video_id;
    const log = deps.log.child({ videoId: id, jobId: job.id, attempt: job.attemptsMade + 1 });
    try {
      await runJob(deps, job, payload, log);
    } catch (err) {
      if (err instanceof ReleasedForShutdown) {
        await job.moveToWait(token);
        log.info('released the job for shutdown; it resumes from its last checkpoint');
        throw new WaitingError();
      }
      const f = classifyFailure(err);
      const attempts = job.opts.attempts ?? 1;
      const last = !f.retryable || job.attemptsMade + 1 >= attempts;
      log.error('generation failed', { kind: f.kind, code: f.code, retry: !last, err });
      if (last) await failVideo(deps, id, f.code, f.message).catch((e: unknown) => log.error('could not record the failure', { err: e }));
      // Attempts left: the video stays in progress, but its row shows why this attempt failed.
      else await deps.repo.recordAttemptError(id, f.code, f.message).catch((e: unknown) => log.error('could not record the attempt error', { err: e }));
      if (f.kind === 'device') deps.onDeviceFatal(err);
      if (!f.retryable) throw new UnrecoverableError(f.message);
      throw err;
    } finally {
      deps.activity.currentVideoId = null;
    }
  };
}

async function runJob(deps: GenerateProcessorDeps, job: Job, payload: GenerateJobPayload, log: Logger): Promise<void> {
  const { repo, storage, redis, keyspace } = deps;
  const id = payload.video_id;
  const video = await repo.find(id);
  if (!video) throw new InvalidJobError(`video ${id} does not exist`);
  if (isTerminal(video.status)) {
    log.info('video is already terminal; nothing to do', { status: video.status });
    return;
  }
  if (video.cancelRequestedAt || (await isCancelRequested(redis, keyspace, id))) {
    await cancelVideo(deps, id);
    return;
  }

  const generator = await deps.generators.get(payload.model);
  const info = generator.info;
  if (payload.width !== info.width || payload.height !== info.height) {
    throw new InvalidJobError(`size ${payload.width}x${payload.height} is not supported by model ${payload.model} (${info.width}x${info.height})`);
  }

  // An extension is the source video followed by new frames generated from its final state.
  let sourceCount = 0;
  if (payload.source?.kind === 'extension') {
    if (!info.resumable) throw new InvalidJobError(`model ${payload.model} cannot extend videos`);
    const last = await lastCheckpoint(storage, payload.source.video_id);
    if (last === null) throw new InvalidJobError(`source video ${payload.source.video_id} has no final state to extend from`);
    sourceCount = last + 1;
  }
  const newChunks = sourceCount > 0 ? Math.max(1, Math.ceil((payload.seconds * info.fps) / info.chunkFrames(1))) : info.plan(payload.seconds).chunks;
  const chunksTotal = sourceCount + newChunks;
  let framesTotal = 0;
  for (let i = 0; i < chunksTotal; i++) framesTotal += info.chunkFrames(i);

  // Where to start: after our own last checkpoint (resume), else after the source's (extension).
  let resumeFrom: Uint8Array | undefined;
  let resumeMode: 'resume' | 'extend' = 'resume';
  // A checkpoint whose upload was cut off can be stored incomplete (not by S3, whose PUT is atomic,
  // but by simpler stores): fall back to the one before it (none left: start over); the chunks
  // after it regenerate identically.
  for (const own of info.resumable ? await checkpointIndexes(storage, id) : []) {
    if (own < sourceCount) break;
    const buf = await storage.getBuffer(storageKeys.checkpoint(id, own));
    try {
      decodeCheckpoint(buf);
    } catch (err) {
      if (!(err instanceof CheckpointFormatError)) throw err;
      log.warn('checkpoint unreadable; resuming from the one before', { chunk: own, err: err.message });
      continue;
    }
    resumeFrom = buf;
    log.info('resuming after the last checkpoint', { chunk: own });
    break;
  }
  // What earlier attempts shipped and announced: regenerated chunks are not announced twice, and
  // neither progress nor chunks_done goes back.
  const prior = await readPriorDelivery(redis, keyspace, id, video);
  if (resumeFrom === undefined && payload.source?.kind === 'extension') {
    const src = payload.source.video_id;
    await copySourceChunks(deps, src, id, sourceCount - 1, (i) => info.chunkFrames(i) / info.fps, (i) => info.chunkFrames(i), prior);
    resumeFrom = await storage.getBuffer(storageKeys.checkpoint(src, sourceCount - 1));
    resumeMode = 'extend';
    log.info('extending', { source: src, sourceChunks: sourceCount });
  }
  await repo.markInProgress(id, { workerId: deps.workerId, chunksTotal, framesTotal });
  // Announced once: chunk rows past the source mean an earlier attempt got past this point (with a
  // checkpoint every N chunks, one that failed before its first checkpoint starts over).
  const fresh = (resumeMode === 'extend' || resumeFrom === undefined) && prior.chunksRecorded <= sourceCount;
  if (fresh) await publish(deps, id, 'video.in_progress', { worker_id: deps.workerId });
  deps.activity.currentVideoId = id;

  const controller = new AbortController();
  const stopWatch = watchCancel({
    redis,
    keyspace,
    videoId: id,
    controller,
    pollMs: deps.cancelPollMs,
    ...(deps.announcements ? { announcements: deps.announcements } : {}),
    onError: (err) => log.warn('cancel poll failed', { err }),
  });
  const encoder = new SegmentEncoder({ width: info.width, height: info.height, fps: info.fps, crf: deps.media.crf, preset: deps.media.preset, ffmpegBin: deps.media.ffmpegBin });

  // Progress events are produced synchronously by the generator; publish them in order.
  let pending: Promise<unknown> = Promise.resolve();
  let progressError: unknown;
  const queue = (fn: () => Promise<unknown>) => {
    pending = pending.then(fn).catch((err: unknown) => {
      progressError ??= err;
    });
  };
  const started = Date.now();
  let stepsDone = 0;
  let lastDbProgress = 0;
  let stepsTotal = 0;
  const onStep = (p: StepProgress) => {
    stepsTotal = p.stepsTotal;
    stepsDone++;
    const chunksTotalNow = Math.max(p.chunksTotal, chunksTotal);
    const done = p.chunk * p.stepsTotal + p.step;
    const all = chunksTotalNow * p.stepsTotal;
    const progress = Math.min(99, (done / all) * 99);
    const perStep = (Date.now() - started) / stepsDone;
    const eta = Math.max(0, ((all - done) * perStep) / 1000);
    // Steps of a chunk an earlier attempt finished again: already reported.
    if (round2(progress) <= prior.progressAnnounced) return;
    queue(() =>
      publish(deps, id, 'video.progress', {
        progress: round2(progress),
        chunk: p.chunk,
        chunks_total: chunksTotalNow,
        step: p.step,
        steps_total: p.stepsTotal,
        eta: round2(eta),
      }),
    );
    if (Date.now() - lastDbProgress > 1000 && Math.floor(progress) > prior.progressRecorded) {
      lastDbProgress = Date.now();
      queue(() => repo.setProgress(id, Math.floor(progress)));
    }
    void job.updateProgress(Math.floor(progress)).catch(() => undefined);
  };

  let computeMs = 0;
  const checkpoints = new CheckpointWriter(storage, id, deps.checkpoints.async, log);
  const it = generator.generate(
    { prompt: payload.prompt, seconds: payload.seconds, seed: payload.seed, steps: payload.steps, guidance: payload.guidance, ...(payload.shift !== undefined ? { shift: payload.shift } : {}) },
    { signal: controller.signal, onStep, ...(resumeFrom ? { resumeFrom, resumeMode } : {}) },
  );
  // Ends the generator (its finally frees the recurrent state, on the GPU with kernels+CUDA) on
  // every way out, and first thing on an error or a cancel: before the uploads, rows and events
  // that follow, so a terminal event means the device memory is free. Idempotent.
  let generatorClosed = false;
  const closeGenerator = async () => {
    if (generatorClosed) return;
    generatorClosed = true;
    await it.return(undefined).catch((err: unknown) => log.warn('the generator failed to release its state', { err }));
  };
  try {
    try {
      for (;;) {
        const t0 = Date.now();
        let next: IteratorResult<GeneratedChunk>;
        try {
          next = await it.next();
        } finally {
          computeMs += Date.now() - t0;
        }
        if (next.done) break;
        const chunk = next.value;
        // The chunk's step events and progress writes land before its chunk event and row, whose
        // progress is higher: a slow write queued earlier must not move the progress back after it.
        await pending;
        if (progressError) throw progressError;
        await shipChunk(deps, encoder, id, chunk, chunksTotal, stepsTotal, prior);
        deps.activity.chunkDone();
        // A background upload that failed meanwhile fails the attempt now (as a synchronous one would).
        checkpoints.throwIfFailed();
        const stopping = deps.shutdown.requested && chunk.index + 1 < chunksTotal;
        // After the chunk is shipped (a checkpoint in S3 means every chunk up to it is) and before
        // the generator is resumed (the snapshot is of this chunk's state).
        if (chunk.checkpoint && (stopping || checkpointDue(chunk.index, chunksTotal, deps.checkpoints.everyChunks))) {
          const t1 = Date.now();
          const body = chunk.checkpoint();
          computeMs += Date.now() - t1;
          await checkpoints.write(chunk.index, body);
        }
        if (stopping) {
          // SIGTERM: the job goes back to the queue only once the checkpoint of this boundary is in S3.
          await checkpoints.flush();
          await repo.addGpuMs(id, computeMs);
          computeMs = 0;
          throw new ReleasedForShutdown();
        }
      }
    } catch (err) {
      await closeGenerator();
      await pending;
      const dropped = await checkpoints.settle();
      if (dropped !== undefined && dropped !== err) log.warn('a background checkpoint upload also failed', { err: dropped });
      if (computeMs > 0) await repo.addGpuMs(id, computeMs).catch(() => undefined);
      computeMs = 0;
      if (controller.signal.aborted && controller.signal.reason instanceof VideoCancelledError) {
        await cancelVideo(deps, id);
        return;
      }
      throw err;
    } finally {
      stopWatch();
      await closeGenerator();
    }
    await repo.addGpuMs(id, computeMs);

    // Finalize from what is in S3 (also covers chunks shipped by an earlier attempt), while the
    // last checkpoint uploads.
    const init = await storage.getBuffer(storageKeys.init(id));
    const segments: Buffer[] = [];
    for (let i = 0; i < chunksTotal; i++) segments.push(await storage.getBuffer(storageKeys.segment(id, i)));
    const media = await finalizeMedia(init, segments, framesTotal, { ffmpegBin: deps.media.ffmpegBin });
    await storage.put(storageKeys.video(id), media.video, { contentType: CONTENT_VARIANTS.video.contentType });
    await storage.put(storageKeys.thumbnail(id), media.thumbnail, { contentType: CONTENT_VARIANTS.thumbnail.contentType });
    await storage.put(storageKeys.spritesheet(id), media.spritesheet, { contentType: CONTENT_VARIANTS.spritesheet.contentType });
    // Completed only with the final checkpoint in S3: an extension starts from it.
    await checkpoints.flush();
  } finally {
    await checkpoints.settle();
  }
  const seconds = framesTotal / info.fps;
  await repo.complete(id, { durationSeconds: seconds, framesTotal });
  await publish(deps, id, 'video.completed', { chunks_total: chunksTotal, seconds });
  log.info('video completed', { chunks: chunksTotal, frames: framesTotal });
}

async function shipChunk(
  deps: GenerateProcessorDeps,
  encoder: SegmentEncoder,
  id: VideoId,
  chunk: GeneratedChunk,
  chunksTotal: number,
  stepsTotal: number,
  prior: PriorDelivery,
): Promise<void> {
  const { storage, repo } = deps;
  const enc = await encoder.encode(chunk.frames, chunk.startFrame, chunk.index);
  // Order matters for resume: segment, row and events before the checkpoint (written by the caller),
  // so a checkpoint in S3 always means every chunk up to it is shipped. A chunk regenerated after a
  // crash has the same bytes; its row is upserted, but chunks_done and progress never go back and
  // a chunk an earlier attempt announced is not announced again.
  if (chunk.index === 0) await storage.put(storageKeys.init(id), enc.init, { contentType: INIT_CONTENT_TYPE });
  const key = storageKeys.segment(id, chunk.index);
  await storage.put(key, enc.segment, { contentType: SEGMENT_CONTENT_TYPE });
  const progress = Math.min(99, ((chunk.index + 1) / chunksTotal) * 99);
  await repo.recordChunk(
    id,
    { index: chunk.index, storageKey: key, frames: enc.frames, durationSeconds: enc.duration, bytes: enc.segment.byteLength },
    { chunksDone: Math.max(prior.chunksRecorded, chunk.index + 1), progress: Math.max(prior.progressRecorded, Math.floor(progress)) },
  );
  if (chunk.index > prior.chunkAnnounced) {
    await publish(deps, id, 'video.chunk', { index: chunk.index, duration: enc.duration, frames: enc.frames, chunks_total: chunksTotal });
  }
  if (stepsTotal > 0 && round2(progress) > prior.progressAnnounced) {
    await publish(deps, id, 'video.progress', {
      progress: round2(progress),
      chunk: chunk.index,
      chunks_total: chunksTotal,
      step: stepsTotal,
      steps_total: stepsTotal,
      eta: null,
    });
  }
}

/** Index of the newest checkpoint of a video in S3, or null. */
export async function lastCheckpoint(storage: ObjectStore, id: VideoId): Promise<number | null> {
  return (await checkpointIndexes(storage, id))[0] ?? null;
}

/** Indexes of a video's checkpoints in S3, newest first. */
async function checkpointIndexes(storage: ObjectStore, id: VideoId): Promise<number[]> {
  const prefix = storageKeys.checkpoint(id, 0).replace(/00000\.bin$/, '');
  const found: number[] = [];
  for (const key of await storage.list(prefix)) {
    const m = /(\d{5})\.bin$/.exec(key);
    if (m) found.push(Number(m[1]));
  }
  return found.sort((a, b) => b - a);
}

/**
 * An extension is the source video followed by the new frames: copies the source's init and
 * segments 0..last (same bytes; their timestamps already fit) and records their chunk rows.
 */
async function copySourceChunks(
  deps: GenerateProcessorDeps,
  src: VideoId,
  dst: VideoId,
  last: number,
  duration: (i: number) => number,
  frames: (i: number) => number,
  prior: PriorDelivery,
): Promise<number> {
  const { storage, repo } = deps;
  await storage.put(storageKeys.init(dst), await storage.getBuffer(storageKeys.init(src)), { contentType: INIT_CONTENT_TYPE });
  for (let i = 0; i <= last; i++) {
    const body = await storage.getBuffer(storageKeys.segment(src, i));
    const key = storageKeys.segment(dst, i);
    await storage.put(key, body, { contentType: SEGMENT_CONTENT_TYPE });
    await repo.recordChunk(dst, { index: i, storageKey: key, frames: frames(i), durationSeconds: duration(i), bytes: body.byteLength }, { chunksDone: Math.max(prior.chunksRecorded, i + 1), progress: prior.progressRecorded });
  }
  return last + 1;
}

async function cancelVideo(deps: GenerateProcessorDeps, id: VideoId): Promise<void> {
  await deps.repo.cancel(id);
  await publish(deps, id, 'video.cancelled', {});
  await clearCancelRequest(deps.redis, deps.keyspace, id);
  deps.log.info('video cancelled', { videoId: id });
}

async function failVideo(deps: GenerateProcessorDeps, id: VideoId, code: FailureCode, message: string): Promise<void> {
  await deps.repo.fail(id, code, message);
  await publish(deps, id, 'video.failed', { code, message });
}

function publish<T extends VideoEventType>(deps: GenerateProcessorDeps, id: VideoId, type: T, data: VideoEventData<T>): Promise<string> {
  return publishVideoEvent(deps.redis, deps.keyspace, id, type, data);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
