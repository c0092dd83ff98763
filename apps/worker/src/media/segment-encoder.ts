import { runFfmpeg } from './ffmpeg.js';
import { MediaFormatError, rebaseFragments, splitFragmentedMp4 } from './iso-bmff.js';

/** Frames of one chunk: `count` RGB24 images of `width x height`, row-major, packed. */
export interface RgbFrames {
  width: number;
  height: number;
  count: number;
  /** `count * height * width * 3` bytes (frame, row, column, channel). */
  data: Uint8Array;
}

export interface SegmentEncoderOptions {
  width: number;
  height: number;
  fps: number;
  /** x264 constant rate factor. @defaultValue 18 */
  crf?: number;
  /** x264 preset. @defaultValue `veryfast` */
  preset?: string;
  /** ffmpeg executable. @defaultValue `ffmpeg` */
  ffmpegBin?: string;
}

export interface EncodedSegment {
  /** The initialisation segment (`ftyp` + `moov`); byte-identical for every chunk of a video. */
  init: Uint8Array;
  /** One fMP4 media segment (`moof` + `mdat`), continuing the stream at `startFrame`. */
  segment: Uint8Array;
  frames: number;
  /** Seconds of video in the segment. */
  duration: number;
}

/**
 * Encodes chunks of RGB frames into H.264 fMP4 media segments that concatenate, after one shared
 * init segment, into a single continuous stream (and an HLS fMP4 rendition).
 *
 * Each chunk is encoded on its own, so chunk N never re-encodes chunks before it: it starts with
 * an IDR frame, has no B-frames (no composition offsets, no edit list) and a fixed GOP setting (so
 * the SPS/PPS, hence the init segment, are identical across chunks). ffmpeg writes each chunk's
 * fragment at decode time 0; the encoder then rewrites `tfdt` to the chunk's start
 * (`startFrame` in track timescale units) and `mfhd` to the chunk's sequence number. Output is
 * bit-exact for the same frames and settings.
 */
export class SegmentEncoder {
  readonly timescale: number;
  readonly ticksPerFrame: number;
  readonly #opts: Required<SegmentEncoderOptions>;

  constructor(opts: SegmentEncoderOptions) {
    if (opts.width % 2 || opts.height % 2) throw new RangeError(`H.264 4:2:0 needs even dimensions, got ${opts.width}x${opts.height}`);
    const ticks = 90_000 / opts.fps;
    if (!Number.isInteger(ticks)) throw new RangeError(`fps ${opts.fps} does not divide the 90 kHz timescale`);
    this.timescale = 90_000;
    this.ticksPerFrame = ticks;
    this.#opts = { crf: 18, preset: 'veryfast', ffmpegBin: 'ffmpeg', ...opts };
  }

  /**
   * Encodes one chunk. `startFrame` is the index of its first frame in the whole video;
   * `sequence` its 0-based chunk index (fragment sequence numbers count from `sequence * 1024 + 1`).
   */
  async encode(frames: RgbFrames, startFrame: number, sequence: number, signal?: AbortSignal): Promise<EncodedSegment> {
    const { width, height, fps, crf, preset, ffmpegBin } = this.#opts;
    if (frames.width !== width || frames.height !== height) {
      throw new RangeError(`frames are ${frames.width}x${frames.height}, encoder expects ${width}x${height}`);
    }
    if (frames.count < 1 || frames.data.byteLength !== frames.count * width * height * 3) {
      throw new RangeError(`expected ${frames.count} RGB24 frames of ${width}x${height} (${frames.count * width * height * 3} bytes), got ${frames.data.byteLength} bytes`);
    }
    const args = [
      '-hide_banner', '-loglevel', 'error', '-nostdin',
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${width}x${height}`, '-r', String(fps), '-i', 'pipe:0',
      '-vf', 'scale=out_color_matrix=bt709:out_range=tv,format=yuv420p',
      '-c:v', 'libx264', '-preset', preset, '-crf', String(crf),
      '-x264-params', 'keyint=infinite:min-keyint=1:scenecut=0:bframes=0',
      // BT.709 tags so players do not guess; values identical for every chunk (init stays the same).
      '-color_primaries', 'bt709', '-color_trc', 'bt709', '-colorspace', 'bt709',
      '-fflags', '+bitexact', '-flags:v', '+bitexact', '-map_metadata', '-1',
      '-video_track_timescale', String(this.timescale),
      '-movflags', 'frag_keyframe+empty_moov+default_base_moof+skip_trailer',
      '-f', 'mp4', 'pipe:1',
    ];
    const out = await runFfmpeg(args, { bin: ffmpegBin, stdin: frames.data, ...(signal ? { signal } : {}) });
    const split = splitFragmentedMp4(out);
    if (split.fragmentCount < 1) throw new MediaFormatError('ffmpeg produced no media fragment');
    rebaseFragments(split.fragments, {
      decodeTimeOffset: startFrame * this.ticksPerFrame,
      firstSequenceNumber: sequence * 1024 + 1,
    });
    return { init: split.init, segment: split.fragments, frames: frames.count, duration: frames.count / fps };
  }
}

/** True when two init segments are byte-identical (every chunk of a video must share one). */
export function sameInit(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
