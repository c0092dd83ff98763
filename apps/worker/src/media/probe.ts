import { runFfmpeg } from './ffmpeg.js';

export interface ProbeResult {
  codec: string;
  width: number;
  height: number;
  /** Average frame rate. */
  fps: number;
  /** Frames counted by decoding the stream. */
  frames: number;
  /** Container (format) duration in seconds. */
  duration: number;
}

/**
 * ffprobe of the first video stream of a file or playlist, counting frames by decoding them.
 * `extraArgs` go before `-i` (e.g. `['-allowed_extensions', 'ALL']` for HLS).
 */
export async function probeVideo(input: string, opts: { ffprobeBin?: string; extraArgs?: string[] } = {}): Promise<ProbeResult> {
  const out = await runFfmpeg(
    [
      '-v', 'error', ...(opts.extraArgs ?? []),
      '-count_frames', '-select_streams', 'v:0',
      '-show_entries', 'stream=codec_name,width,height,avg_frame_rate,nb_read_frames:format=duration',
      '-of', 'json', '-i', input,
    ],
    { bin: opts.ffprobeBin ?? 'ffprobe' },
  );
  const json = JSON.parse(out.toString()) as {
    streams?: { codec_name: string; width: number; height: number; avg_frame_rate: string; nb_read_frames: string }[];
    format?: { duration?: string };
  };
  const s = json.streams?.[0];
  if (!s) throw new Error(`ffprobe found no video stream in ${input}`);
  const [num, den] = s.avg_frame_rate.split('/').map(Number);
  return {
    codec: s.codec_name,
    width: s.width,
    height: s.height,
    fps: den ? num! / den : Number(num),
    frames: Number(s.nb_read_frames),
    duration: Number(json.format?.duration ?? NaN),
  };
}

/** Decodes a video (BT.709, limited range, as the encoder writes) into packed RGB24 frames. */
export async function decodeRgbFrames(input: string, opts: { ffmpegBin?: string } = {}): Promise<Buffer> {
  return runFfmpeg(['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', input, '-vf', 'scale=in_color_matrix=bt709:in_range=tv,format=rgb24', '-f', 'rawvideo', 'pipe:1'], {
    bin: opts.ffmpegBin ?? 'ffmpeg',
  });
}
