import type { Redis } from 'ioredis';
import type { Keyspace, VideoId } from '@rehyat/contracts';
import { decodeEntry, type RawEntry } from '@rehyat/events';
import type { VideoRecord } from '../video-repository.js';

/**
 * What earlier attempts of a job already delivered, read when an attempt starts. A resumed job
 * regenerates the chunks after its newest checkpoint, and with a checkpoint every N chunks some of
 * them were shipped already: their segments are overwritten with the same bytes and their rows
 * upserted, but their `video.chunk` events (webhook `video.chunk.ready`), progress events and the
 * row's `chunks_done`/`progress` must not repeat or go back. The processor compares against this.
 */
export interface PriorDelivery {
  /** The row's `chunksDone`: chunk rows 0..n-1 exist. */
  chunksRecorded: number;
  /** The row's `progress` (0..100). */
  progressRecorded: number;
  /** Index of the newest `video.chunk` event in the video's stream; -1 when none was found. */
  chunkAnnounced: number;
  /** `progress` of the newest `video.progress` event in the stream; -1 when none was found. */
  progressAnnounced: number;
}

/**
 * How far back the stream is searched. After its newest `video.chunk` an attempt publishes at most
 * one progress event per denoising step of the next chunk (contracts' `max_steps` is 64) before it
 * stops, so the newest chunk event is far within this; one not found is taken as never published
 * (the chunk is announced again: a duplicate at worst, never a lost event).
 */
const SCAN_ENTRIES = 1000;

export async function readPriorDelivery(redis: Redis, keyspace: Keyspace, id: VideoId, video: Pick<VideoRecord, 'chunksDone' | 'progress'>): Promise<PriorDelivery> {
  const key = keyspace.videoEvents(id);
  const entries = (await redis.xrevrange(key, '+', '-', 'COUNT', SCAN_ENTRIES)) as RawEntry[];
  let chunkAnnounced = -1;
  let progressAnnounced = -1;
  for (const entry of entries) {
    const decoded = decodeEntry(key, entry);
    if (decoded instanceof Error) continue;
    const { event } = decoded;
    if (event.type === 'video.progress' && progressAnnounced < 0) progressAnnounced = (event.data as { progress: number }).progress;
    if (event.type === 'video.chunk' && chunkAnnounced < 0) chunkAnnounced = (event.data as { index: number }).index;
    if (chunkAnnounced >= 0 && progressAnnounced >= 0) break;
  }
  return { chunksRecorded: video.chunksDone, progressRecorded: video.progress, chunkAnnounced, progressAnnounced };
}
