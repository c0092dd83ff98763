import type { VideoId } from './ids.js';

/**
 * Object-storage layout of a video. Keys are deterministic, so a retried upload overwrites the
 * same object instead of adding one.
 *
 * ```
 * videos/<id>/init.mp4                 fMP4 initialisation segment (codec config), written once
 * videos/<id>/segments/00000.m4s       one fMP4 media segment per generated chunk
 * videos/<id>/video.mp4                the whole video (faststart), written at completion
 * videos/<id>/thumbnail.webp           one frame, at completion
 * videos/<id>/spritesheet.jpg          a grid of frames, at completion
 * videos/<id>/checkpoints/00000.bin    generator state after chunk N (resume, extend)
 * ```
 */
export const storageKeys = {
  prefix: (id: VideoId) => `videos/${id}/`,
  init: (id: VideoId) => `videos/${id}/init.mp4`,
  segment: (id: VideoId, index: number) => `videos/${id}/segments/${pad(index)}.m4s`,
  video: (id: VideoId) => `videos/${id}/video.mp4`,
  thumbnail: (id: VideoId) => `videos/${id}/thumbnail.webp`,
  spritesheet: (id: VideoId) => `videos/${id}/spritesheet.jpg`,
  checkpoint: (id: VideoId, chunk: number) => `videos/${id}/checkpoints/${pad(chunk)}.bin`,
} as const;

/** Content variants of `GET /v1/videos/:id/content`, with their object and media type. */
export const CONTENT_VARIANTS = {
  video: { key: storageKeys.video, contentType: 'video/mp4' },
  thumbnail: { key: storageKeys.thumbnail, contentType: 'image/webp' },
  spritesheet: { key: storageKeys.spritesheet, contentType: 'image/jpeg' },
} as const;
export type ContentVariant = keyof typeof CONTENT_VARIANTS;

export const SEGMENT_CONTENT_TYPE = 'video/iso.segment';
export const INIT_CONTENT_TYPE = 'video/mp4';

function pad(n: number): string {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`chunk index must be a non-negative integer, got ${n}`);
  return String(n).padStart(5, '0');
}
