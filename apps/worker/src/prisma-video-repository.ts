import type { FailureCode } from '@rehyat/contracts';
import type { PrismaClient } from '@rehyat/db';
import type { ChunkRecord, VideoRecord, VideoRepository } from './video-repository.js';

/**
 * {@link VideoRepository} on Postgres through `@rehyat/db`. Status changes never leave a terminal
 * state: a video completed, failed or cancelled stays so (the `status not in terminal` filter).
 */
export class PrismaVideoRepository implements VideoRepository {
  constructor(private readonly db: PrismaClient) {}

  async find(id: string): Promise<VideoRecord | null> {
    return this.db.video.findUnique({
      where: { id },
      select: { id: true, status: true, chunksTotal: true, chunksDone: true, progress: true, cancelRequestedAt: true },
    });
  }

  async markInProgress(id: string, opts: { workerId: string; chunksTotal: number; framesTotal: number }): Promise<void> {
    const now = new Date();
    await this.db.video.updateMany({
      where: { id, status: { in: ['queued', 'in_progress'] } },
      data: { status: 'in_progress', workerId: opts.workerId, chunksTotal: opts.chunksTotal, framesTotal: opts.framesTotal },
    });
    await this.db.video.updateMany({ where: { id, startedAt: null }, data: { startedAt: now } });
  }

  async recordChunk(id: string, chunk: ChunkRecord, opts: { chunksDone: number; progress: number }): Promise<void> {
    await this.db.$transaction([
      this.db.chunk.upsert({
        where: { videoId_index: { videoId: id, index: chunk.index } },
        create: { videoId: id, ...chunk },
        update: { storageKey: chunk.storageKey, frames: chunk.frames, durationSeconds: chunk.durationSeconds, bytes: chunk.bytes },
      }),
      this.db.video.updateMany({
        where: { id, status: 'in_progress' },
        data: { chunksDone: opts.chunksDone, progress: opts.progress },
      }),
    ]);
  }

  async setProgress(id: string, progress: number): Promise<void> {
    // Never backwards (a late write after a chunk's own, higher progress).
    await this.db.video.updateMany({ where: { id, status: 'in_progress', progress: { lt: progress } }, data: { progress } });
  }

  async addGpuMs(id: string, ms: number): Promise<void> {
    if (ms <= 0) return;
    await this.db.video.update({ where: { id }, data: { gpuMs: { increment: BigInt(Math.round(ms)) } } });
  }

  async complete(id: string, opts: { durationSeconds: number; framesTotal: number }): Promise<void> {
    await this.db.video.updateMany({
      where: { id, status: { in: ['queued', 'in_progress'] } },
      data: { status: 'completed', progress: 100, durationSeconds: opts.durationSeconds, framesTotal: opts.framesTotal, completedAt: new Date() },
    });
  }

  async fail(id: string, code: FailureCode, message: string): Promise<void> {
    const now = new Date();
    const text = message.slice(0, 2000);
    await this.db.video.updateMany({
      where: { id, status: { in: ['queued', 'in_progress'] } },
      data: { status: 'failed', errorCode: code, errorMessage: text, completedAt: now, lastErrorCode: code, lastErrorMessage: text, lastErrorAt: now },
    });
  }

  async recordAttemptError(id: string, code: FailureCode, message: string): Promise<void> {
    await this.db.video.updateMany({
      where: { id, status: { in: ['queued', 'in_progress'] } },
      data: { lastErrorCode: code, lastErrorMessage: message.slice(0, 2000), lastErrorAt: new Date() },
    });
  }

  async cancel(id: string): Promise<void> {
    await this.db.video.updateMany({
      where: { id, status: { in: ['queued', 'in_progress'] } },
      data: { status: 'cancelled', completedAt: new Date() },
    });
  }
}
