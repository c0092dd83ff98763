import { z } from 'zod';

/** Lifecycle of a video. `queued -> in_progress -> completed | failed | cancelled`. */
export const VideoStatus = z.enum(['queued', 'in_progress', 'completed', 'failed', 'cancelled']);
export type VideoStatus = z.infer<typeof VideoStatus>;

export const TERMINAL_STATUSES: ReadonlySet<VideoStatus> = new Set(['completed', 'failed', 'cancelled']);

export function isTerminal(status: VideoStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}
