import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/** Video ids look like OpenAI's: `video_` followed by 32 lowercase hex characters. */
export const VIDEO_ID_PATTERN = /^video_[0-9a-f]{32}$/;

export const VideoId = z.string().regex(VIDEO_ID_PATTERN, 'must be a video id (video_...)');
export type VideoId = z.infer<typeof VideoId>;

export function newVideoId(): VideoId {
  return `video_${randomBytes(16).toString('hex')}`;
}

export function isVideoId(value: string): value is VideoId {
  return VIDEO_ID_PATTERN.test(value);
}
