import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { INIT_CONTENT_TYPE, SEGMENT_CONTENT_TYPE, isTerminal, storageKeys } from '@rehyat/contracts';
import { ObjectNotFoundError, RangeNotSatisfiableError, StorageError, resolveRange, type ObjectStorage } from '@rehyat/storage';
import { ApiError, errorResponses } from '../errors.js';
import type { SigningOptions } from '../signed-url.js';
import { authorizePlayback } from './playback-auth.js';

export interface PlaylistRoutesOptions {
  signing: SigningOptions;
}

export const PLAYLIST_CONTENT_TYPE = 'application/vnd.apple.mpegurl';

const Params = z.object({ id: z.string().min(1).describe('Video id, `video_...`') });
const SegmentParams = Params.extend({
  index: z.coerce.number().int().min(0).max(99_999).describe('Chunk index (0-based)'),
});
const SignedQuery = z.looseObject({
  expires: z.string().optional().describe('Expiry (unix seconds) of a signed URL; with `sig`, replaces the Bearer header.'),
  sig: z.string().optional().describe('Signature of a signed URL (from `playlist_url` / `chunks[].url`).'),
});
const RangeHeaders = z.looseObject({ range: z.string().optional().describe('`bytes=start-end` (single range)') });
const security: Record<string, string[]>[] = [{ bearerAuth: [] }, { signedUrl: [] }];

export interface PlaylistChunk {
  index: number;
  durationSeconds: number;
}

/**
 * The HLS EVENT playlist of a video (fMP4): the init segment, then one `#EXTINF` per chunk of the
 * contiguous run from index 0 (a chunk after a gap is held back until the gap fills, as an EVENT
 * playlist may only ever append), and `#EXT-X-ENDLIST` once the video is terminal. URIs are
 * relative to the playlist and carry `query` (the signature).
 */
export function renderPlaylist(opts: {
  chunks: PlaylistChunk[];
  terminal: boolean;
  /** Planned duration of one chunk; fixes `#EXT-X-TARGETDURATION` before any chunk exists. */
  plannedChunkSeconds: number;
  query: string;
}): string {
  const sorted = [...opts.chunks].sort((a, b) => a.index - b.index);
  const run: PlaylistChunk[] = [];
  for (const c of sorted) {
    if (c.index !== run.length) break;
    run.push(c);
  }
  const target = Math.max(1, Math.ceil(Math.max(opts.plannedChunkSeconds, ...run.map((c) => c.durationSeconds))));
  const q = opts.query ? `?${opts.query}` : '';
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${target}`,
    '#EXT-X-PLAYLIST-TYPE:EVENT',
    '#EXT-X-MEDIA-SEQUENCE:0',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-MAP:URI="init.mp4${q}"`,
  ];
  for (const c of run) {
    lines.push(`#EXTINF:${c.durationSeconds.toFixed(3)},`, `segments/${c.index}.m4s${q}`);
  }
  if (opts.terminal) lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}

/** Streams an object to the client, honouring a single-range `Range` header. */
async function sendObject(
  reply: FastifyReply,
  storage: ObjectStorage,
  key: string,
  opts: { rangeHeader: string | undefined; size?: number; contentType: string; what: string },
): Promise<FastifyReply> {
  try {
    let range: { start: number; end: number } | undefined;
    if (opts.rangeHeader) {
      const size = opts.size ?? (await storage.head(key)).contentLength;
      const resolved = resolveRange(opts.rangeHeader, size);
      if (resolved === 'unsatisfiable') throw new RangeNotSatisfiableError(size);
      if (resolved) range = resolved;
    }
    const obj = await storage.get(key, range ? { range } : {});
    void reply
      .type(opts.contentType)
      .header('accept-ranges', 'bytes')
      .header('content-length', obj.contentLength)
      .header('cache-control', 'private, max-age=3600');
    if (obj.etag) void reply.header('etag', obj.etag);
    if (obj.range) void reply.code(206).header('content-range', `bytes ${obj.range.start}-${obj.range.end}/${obj.range.size}`);
    return reply.send(obj.body);
  } catch (err) {
    if (err instanceof ObjectNotFoundError) throw new ApiError('content_not_found', `The ${opts.what} does not exist (yet).`);
    if (err instanceof RangeNotSatisfiableError) {
      void reply.header('content-range', `bytes */${err.size}`);
      throw new ApiError('range_not_satisfiable', `The requested range is outside the ${opts.what} (${err.size} bytes).`, {
        param: 'range',
      });
    }
    if (err instanceof StorageError) throw new ApiError('service_unavailable', 'Object storage is unavailable.', { cause: err });
    throw err;
  }
}

/**
 * HLS playback of a video while it generates: `playlist.m3u8` (EVENT playlist from the Chunk
 * rows), `init.mp4` and `segments/:index.m4s` streamed from S3. Bearer of the owner or a signed URL.
 */
export async function playlistRoutes(app: FastifyInstance, opts: PlaylistRoutesOptions): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { signing } = opts;

  r.get(
    '/v1/videos/:id/playlist.m3u8',
    {
      schema: {
        tags: ['playback'],
        summary: 'HLS playlist of a video',
        description:
          'An HLS EVENT playlist (fMP4) of the chunks generated so far; `#EXT-X-ENDLIST` once the video has finished. ' +
          'Segment URIs are relative and carry a signature, so a player needs no Authorization header.',
        security,
        params: Params,
        querystring: SignedQuery,
        response: { 200: z.string().describe(PLAYLIST_CONTENT_TYPE), ...errorResponses(403, 404, 503) },
      },
    },
    async (request, reply) => {
      const access = await authorizePlayback(app, request, signing);
      const { video } = access;
      const chunks = await app.prisma.chunk.findMany({
        where: { videoId: video.id },
        orderBy: { index: 'asc' },
        select: { index: true, durationSeconds: true },
      });
      const body = renderPlaylist({
        chunks,
        terminal: isTerminal(video.status),
        plannedChunkSeconds: video.chunksTotal > 0 ? video.seconds / video.chunksTotal : 1,
        query: access.signatureQuery,
      });
      return reply.type(PLAYLIST_CONTENT_TYPE).header('cache-control', 'no-cache').send(body);
    },
  );

  r.get(
    '/v1/videos/:id/init.mp4',
    {
      schema: {
        tags: ['playback'],
        summary: 'fMP4 initialisation segment',
        security,
        params: Params,
        querystring: SignedQuery,
        headers: RangeHeaders,
        response: { 200: z.any().describe(INIT_CONTENT_TYPE), 206: z.any(), ...errorResponses(403, 404, 416, 503) },
      },
    },
    async (request, reply) => {
      const { video } = await authorizePlayback(app, request, signing);
      return sendObject(reply, app.storage, storageKeys.init(video.id), {
        rangeHeader: request.headers.range,
        contentType: INIT_CONTENT_TYPE,
        what: 'init segment',
      });
    },
  );

  r.get(
    '/v1/videos/:id/segments/:index.m4s',
    {
      schema: {
        tags: ['playback'],
        summary: 'fMP4 media segment of one chunk',
        security,
        params: SegmentParams,
        querystring: SignedQuery,
        headers: RangeHeaders,
        response: { 200: z.any().describe(SEGMENT_CONTENT_TYPE), 206: z.any(), ...errorResponses(403, 404, 416, 503) },
      },
    },
    async (request, reply) => {
      const { video } = await authorizePlayback(app, request, signing);
      const chunk = await app.prisma.chunk.findUnique({
        where: { videoId_index: { videoId: video.id, index: request.params.index } },
        select: { storageKey: true, bytes: true },
      });
      if (!chunk) throw new ApiError('content_not_found', `Chunk ${request.params.index} of '${video.id}' does not exist (yet).`, { param: 'index' });
      return sendObject(reply, app.storage, chunk.storageKey, {
        rangeHeader: request.headers.range,
        size: chunk.bytes,
        contentType: SEGMENT_CONTENT_TYPE,
        what: `segment ${request.params.index}`,
      });
    },
  );
}
