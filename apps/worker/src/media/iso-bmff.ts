/**
 * The few ISO BMFF (MP4) box operations the segmenter needs: list top-level boxes, split a
 * fragmented MP4 into its initialisation part and its media fragments, and rewrite the two
 * per-fragment counters (`mfhd` sequence number, `tfdt` base media decode time) so that
 * separately encoded chunks concatenate into one continuous stream.
 */

export interface Box {
  type: string;
  /** Offset of the box header in the buffer. */
  start: number;
  /** Offset just past the box. */
  end: number;
  /** Offset of the payload (after the size/type header). */
  payload: number;
}

export class MediaFormatError extends Error {
  override name = 'MediaFormatError';
}

/** The boxes found between `from` and `to` (one level, no recursion). */
export function listBoxes(buf: Uint8Array, from = 0, to = buf.length): Box[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Box[] = [];
  let off = from;
  while (off < to) {
    if (to - off < 8) throw new MediaFormatError(`truncated box header at byte ${off}`);
    let size = view.getUint32(off);
    const type = String.fromCharCode(buf[off + 4]!, buf[off + 5]!, buf[off + 6]!, buf[off + 7]!);
    let header = 8;
    if (size === 1) {
      size = Number(view.getBigUint64(off + 8));
      header = 16;
    } else if (size === 0) {
      size = to - off;
    }
    if (size < header || off + size > to) throw new MediaFormatError(`box '${type}' at byte ${off} overruns its parent`);
    out.push({ type, start: off, end: off + size, payload: off + header });
    off += size;
  }
  return out;
}

function child(buf: Uint8Array, parent: Box, type: string): Box | undefined {
  return listBoxes(buf, parent.payload, parent.end).find((b) => b.type === type);
}

export interface SplitFragmentedMp4 {
  /** `ftyp` + `moov`: codec configuration, identical for every chunk of a video. */
  init: Uint8Array;
  /** `moof`/`mdat` pairs (any `styp`/`sidx`/`mfra` dropped). */
  fragments: Uint8Array;
  /** Number of `moof` boxes in `fragments`. */
  fragmentCount: number;
}

/** Splits ffmpeg's fragmented MP4 output (`empty_moov`) into init and media parts. */
export function splitFragmentedMp4(buf: Uint8Array): SplitFragmentedMp4 {
  const boxes = listBoxes(buf);
  const firstMoof = boxes.findIndex((b) => b.type === 'moof');
  if (firstMoof < 0) throw new MediaFormatError('no moof box: not a fragmented MP4');
  if (!boxes.slice(0, firstMoof).some((b) => b.type === 'moov')) throw new MediaFormatError('no moov box before the first moof');
  const init = buf.slice(0, boxes[firstMoof]!.start);
  const media = boxes.slice(firstMoof).filter((b) => b.type === 'moof' || b.type === 'mdat');
  const total = media.reduce((n, b) => n + (b.end - b.start), 0);
  const fragments = new Uint8Array(total);
  let off = 0;
  for (const b of media) {
    fragments.set(buf.subarray(b.start, b.end), off);
    off += b.end - b.start;
  }
  return { init, fragments, fragmentCount: media.filter((b) => b.type === 'moof').length };
}

export interface RebaseOptions {
  /** Added to every `tfdt` base media decode time, in track timescale units. */
  decodeTimeOffset: number;
  /** Sequence number given to the first fragment; later ones count up from it. */
  firstSequenceNumber: number;
}

/**
 * Rewrites, in place, every fragment's `mfhd.sequence_number` and `tfdt.baseMediaDecodeTime` so
 * that fragments encoded on their own (each starting at time 0) continue an earlier stream.
 * Returns the number of fragments rewritten.
 */
export function rebaseFragments(fragments: Uint8Array, opts: RebaseOptions): number {
  const view = new DataView(fragments.buffer, fragments.byteOffset, fragments.byteLength);
  let seq = opts.firstSequenceNumber;
  let count = 0;
  for (const moof of listBoxes(fragments).filter((b) => b.type === 'moof')) {
    const mfhd = child(fragments, moof, 'mfhd');
    if (!mfhd) throw new MediaFormatError('moof without mfhd');
    view.setUint32(mfhd.payload + 4, seq++);
    for (const traf of listBoxes(fragments, moof.payload, moof.end).filter((b) => b.type === 'traf')) {
      const tfdt = child(fragments, traf, 'tfdt');
      if (!tfdt) throw new MediaFormatError('traf without tfdt');
      const version = fragments[tfdt.payload]!;
      const at = tfdt.payload + 4;
      if (version === 1) {
        view.setBigUint64(at, view.getBigUint64(at) + BigInt(opts.decodeTimeOffset));
      } else {
        const t = view.getUint32(at) + opts.decodeTimeOffset;
        if (t > 0xffffffff) throw new MediaFormatError('tfdt version 0 cannot hold the rebased decode time');
        view.setUint32(at, t);
      }
    }
    count++;
  }
  return count;
}

/** Reads the first fragment's `tfdt` (for tests and diagnostics). */
export function firstDecodeTime(fragments: Uint8Array): number {
  const view = new DataView(fragments.buffer, fragments.byteOffset, fragments.byteLength);
  const moof = listBoxes(fragments).find((b) => b.type === 'moof');
  const traf = moof && child(fragments, moof, 'traf');
  const tfdt = traf && child(fragments, traf, 'tfdt');
  if (!tfdt) throw new MediaFormatError('no tfdt');
  const at = tfdt.payload + 4;
  return fragments[tfdt.payload] === 1 ? Number(view.getBigUint64(at)) : view.getUint32(at);
}
