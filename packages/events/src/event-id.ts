/**
 * Redis stream entry ids (`<ms>-<seq>`) are the SSE event ids. They are monotonic per stream, so
 * they order events and `Last-Event-ID` resumes right after one.
 */
const STREAM_ID = /^(\d{1,16})(?:-(\d{1,16}))?$/;

/** The id before every entry: reading "after" it replays a stream from its start. */
export const STREAM_START_ID = '0-0';

/** Whether `value` is a valid stream entry id (`123-4`, or `123`, meaning `123-0`). */
export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

/** Normalises `123` to `123-0`; throws a RangeError for anything that is not a stream id. */
export function normalizeStreamId(value: string): string {
  const m = STREAM_ID.exec(value);
  if (!m) throw new RangeError(`not a stream entry id: ${JSON.stringify(value)}`);
  return `${BigInt(m[1] ?? '0')}-${BigInt(m[2] ?? '0')}`;
}

/** Orders two stream ids: negative if a < b, 0 if equal, positive if a > b. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const dm = BigInt(am) - BigInt(bm);
  if (dm !== 0n) return dm < 0n ? -1 : 1;
  const ds = BigInt(as) - BigInt(bs);
  return ds === 0n ? 0 : ds < 0n ? -1 : 1;
}
