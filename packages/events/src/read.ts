import type { Redis } from 'ioredis';
import { parseVideoEvent, type Keyspace, type VideoEvent, type VideoId } from '@rehyat/contracts';
import { STREAM_START_ID, normalizeStreamId } from './event-id.js';
import { PAYLOAD_FIELD } from './publish.js';

/** One event read from a stream, with its entry id (the SSE `id:`). */
export interface StoredVideoEvent {
  id: string;
  event: VideoEvent;
}

/** A stream entry that does not follow the contract (it is skipped by readers, never delivered). */
export class InvalidStreamEntryError extends Error {
  readonly entryId: string;
  readonly streamKey: string;
  constructor(streamKey: string, entryId: string, options?: { cause?: unknown }) {
    super(`stream ${streamKey} entry ${entryId} is not a valid video event: ${(options?.cause as Error | undefined)?.message ?? 'no payload field'}`, options);
    this.name = 'InvalidStreamEntryError';
    this.entryId = entryId;
    this.streamKey = streamKey;
  }
}

export type RawEntry = [id: string, fields: string[]];

/**
 * Parses one stream entry's JSON payload: the contract's `parseVideoEvent` itself (a ZodError or
 * SyntaxError on anything off-contract; its schemas are built once). Kept under this name for the
 * readers that import it from here.
 */
export const parseStoredEvent: (json: string) => VideoEvent = parseVideoEvent;

/** Decodes one raw XREAD/XRANGE entry. */
export function decodeEntry(streamKey: string, [id, fields]: RawEntry): StoredVideoEvent | InvalidStreamEntryError {
  let payload: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === PAYLOAD_FIELD) payload = fields[i + 1];
  }
  if (payload === undefined) return new InvalidStreamEntryError(streamKey, id);
  try {
    return { id, event: parseStoredEvent(payload) };
  } catch (err) {
    return new InvalidStreamEntryError(streamKey, id, { cause: err });
  }
}

export interface ReadOptions {
  /** Return entries strictly after this id (an SSE `Last-Event-ID`). @defaultValue the stream start */
  after?: string;
  /** Block up to this long for the first new entry; without it, return at once. */
  blockMs?: number;
  /** Most entries returned. @defaultValue `500` */
  count?: number;
  /** Called for each off-contract entry, which is skipped. @defaultValue throw it */
  onInvalid?: (err: InvalidStreamEntryError) => void;
}

/**
 * Reads a video's events after `after` (XREAD). Without `blockMs` it answers at once (possibly
 * `[]`); with it, waits for the first new entry. A blocking read holds its connection: use a
 * dedicated one (or `VideoEventHub` to share one among many readers).
 */
export async function readVideoEvents(
  redis: Redis,
  keyspace: Keyspace,
  videoId: VideoId,
  opts: ReadOptions = {},
): Promise<StoredVideoEvent[]> {
  const key = keyspace.videoEvents(videoId);
  const after = opts.after === undefined ? STREAM_START_ID : normalizeStreamId(opts.after);
  const count = opts.count ?? 500;
  const reply =
    opts.blockMs === undefined
      ? await redis.xread('COUNT', count, 'STREAMS', key, after)
      : await redis.xread('COUNT', count, 'BLOCK', opts.blockMs, 'STREAMS', key, after);
  if (!reply) return [];
  const out: StoredVideoEvent[] = [];
  for (const [, entries] of reply) {
    for (const entry of entries as RawEntry[]) {
      const decoded = decodeEntry(key, entry);
      if (decoded instanceof InvalidStreamEntryError) {
        if (opts.onInvalid) opts.onInvalid(decoded);
        else throw decoded;
      } else out.push(decoded);
    }
  }
  return out;
}

/** Whether a video's event stream exists (it expires some time after the terminal event). */
export async function videoEventStreamExists(redis: Redis, keyspace: Keyspace, videoId: VideoId): Promise<boolean> {
  return (await redis.exists(keyspace.videoEvents(videoId))) === 1;
}
