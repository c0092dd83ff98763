import type { Video as VideoRow, Chunk as ChunkRow } from '@rehyat/db';
import type { Video } from '../schemas/videos.js';

/** Builds the public URLs of a video's playback resources (signed where the route wants it). */
export interface PlaybackUrls {
  /** Signed URL of chunk `index`'s fMP4 media segment. */
  segment(videoId: string, index: number): string;
  /** URL of the video's HLS playlist. */
  playlist(videoId: string): string;
}

/** The last-error columns may be left out (null): a row built for a video just created has none. */
type LastErrorColumns = 'lastErrorCode' | 'lastErrorMessage' | 'lastErrorAt';
export type VideoRowWithChunks = Omit<VideoRow, LastErrorColumns> &
  Partial<Pick<VideoRow, LastErrorColumns>> & { chunks: Pick<ChunkRow, 'index' | 'durationSeconds' | 'frames'>[] };

export interface VideoViewOptions {
  urls: PlaybackUrls;
  /** Seconds a finished video stays downloadable; 0: forever. */
  retentionS: number;
}

const unix = (d: Date | null): number | null => (d === null ? null : Math.floor(d.getTime() / 1000));

/** `4` -> `"4"`, `4.5` -> `"4.5"`: OpenAI sends seconds as a string. */
export function formatSeconds(seconds: number): string {
  return String(Math.round(seconds * 1000) / 1000);
}

/** The API's video object (OpenAI's fields, then ours) from a row and its chunks. */
export function toVideo(row: VideoRowWithChunks, queuePosition: number | null, opts: VideoViewOptions): Video {
  const chunks = [...row.chunks].sort((a, b) => a.index - b.index);
  const expiresAt =
    row.expiresAt ?? (row.completedAt && opts.retentionS > 0 ? new Date(row.completedAt.getTime() + opts.retentionS * 1000) : null);
  return {
    id: row.id,
    object: 'video',
    created_at: unix(row.createdAt)!,
    status: row.status,
    model: row.model,
    progress: row.progress,
    seconds: formatSeconds(row.seconds),
    size: row.size,
    prompt: row.prompt,
    remixed_from_video_id: row.sourceKind === 'remix' ? row.sourceVideoId : null,
    completed_at: unix(row.completedAt),
    expires_at: unix(expiresAt),
    error: row.errorCode ? { code: row.errorCode, message: row.errorMessage ?? row.errorCode } : null,
    extended_from_video_id: row.sourceKind === 'extension' ? row.sourceVideoId : null,
    seed: Number(row.seed),
    steps: row.steps,
    guidance: row.guidance,
    queue_position: row.status === 'queued' ? queuePosition : null,
    chunks_total: row.chunksTotal,
    chunks: chunks.map((c) => ({ index: c.index, url: opts.urls.segment(row.id, c.index), duration: c.durationSeconds })),
    playlist_url: opts.urls.playlist(row.id),
    usage: {
      gpu_ms: Number(row.gpuMs),
      frames: row.framesTotal ?? chunks.reduce((n, c) => n + c.frames, 0),
      seconds: row.durationSeconds ?? chunks.reduce((n, c) => n + c.durationSeconds, 0),
    },
    cancel_requested_at: unix(row.cancelRequestedAt),
    last_error: row.lastErrorCode
      ? { code: row.lastErrorCode, message: row.lastErrorMessage ?? row.lastErrorCode, at: unix(row.lastErrorAt ?? row.updatedAt)! }
      : null,
  };
}
