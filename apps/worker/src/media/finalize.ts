import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFfmpeg } from './ffmpeg.js';

export interface FinalizeOptions {
  /** ffmpeg executable. @defaultValue `ffmpeg` */
  ffmpegBin?: string;
  /** Width of one spritesheet tile in pixels (height keeps the aspect ratio). @defaultValue 128 */
  tileWidth?: number;
  /** Spritesheet columns. @defaultValue 5 */
  columns?: number;
  /** Most tiles in the spritesheet. @defaultValue 25 */
  maxTiles?: number;
  /** Scratch folder parent. @defaultValue `os.tmpdir()` */
  tmpDir?: string;
}

export interface FinalizedMedia {
  /** The whole video, progressive MP4 with `moov` first (faststart); the segments' bitstream, not re-encoded. */
  video: Buffer;
  /** One frame from the middle of the video, WebP. */
  thumbnail: Buffer;
  /** A grid of evenly spaced frames, JPEG. */
  spritesheet: Buffer;
  /** Tiles in the spritesheet and its grid. */
  sprite: { tiles: number; columns: number; rows: number };
}

/**
 * Builds the deliverables of a finished video from its init segment and media segments: the MP4
 * is a remux (`-c copy`) of init + segments, so it holds exactly the frames that were streamed.
 */
export async function finalizeMedia(
  init: Uint8Array,
  segments: readonly Uint8Array[],
  frames: number,
  opts: FinalizeOptions = {},
): Promise<FinalizedMedia> {
  const bin = opts.ffmpegBin ?? 'ffmpeg';
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'rehyat-final-'));
  try {
    const stream = join(dir, 'stream.mp4');
    const video = join(dir, 'video.mp4');
    await writeFile(stream, Buffer.concat([init, ...segments]));
    const quiet = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y'];
    await runFfmpeg([...quiet, '-i', stream, '-map', '0:v:0', '-c', 'copy', '-fflags', '+bitexact', '-map_metadata', '-1', '-movflags', '+faststart', video], { bin });

    const thumb = join(dir, 'thumbnail.webp');
    const middle = Math.floor(frames / 2);
    await runFfmpeg([...quiet, '-i', video, '-vf', `select=eq(n\\,${middle})`, '-frames:v', '1', '-c:v', 'libwebp', '-quality', '85', thumb], { bin });

    const columns = Math.max(1, opts.columns ?? 5);
    const tiles = Math.max(1, Math.min(opts.maxTiles ?? 25, frames));
    const rows = Math.ceil(tiles / columns);
    const cols = Math.min(columns, tiles);
    const every = frames / tiles;
    // Pick frame floor(i * every) for i = 0..tiles-1: select frames whose index crosses the next mark.
    const select = `select=lt(mod(n\\,${every.toFixed(6)})\\,1)`;
    const sprite = join(dir, 'spritesheet.jpg');
    await runFfmpeg(
      [...quiet, '-i', video, '-vf', `${select},scale=${opts.tileWidth ?? 128}:-2,tile=${cols}x${rows}`, '-frames:v', '1', '-q:v', '3', sprite],
      { bin },
    );
    return {
      video: await readFile(video),
      thumbnail: await readFile(thumb),
      spritesheet: await readFile(sprite),
      sprite: { tiles, columns: cols, rows },
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
