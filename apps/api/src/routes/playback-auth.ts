import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isVideoId } from '@rehyat/contracts';
import { ApiError } from '../errors.js';
import { checkSignature, signatureQuery, type SigningOptions } from '../signed-url.js';

/** The columns playback routes need. */
export const playbackVideoSelect = {
  id: true,
  ownerId: true,
  status: true,
  seconds: true,
  chunksTotal: true,
  chunksDone: true,
  durationSeconds: true,
  errorCode: true,
  errorMessage: true,
} as const;

export interface PlaybackAccess {
  video: {
    id: string;
    ownerId: string;
    status: 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled';
    seconds: number;
    chunksTotal: number;
    chunksDone: number;
    durationSeconds: number | null;
    errorCode: string | null;
    errorMessage: string | null;
  };
  via: 'bearer' | 'signature';
  /** `expires=..&sig=..` to put on URLs this response hands out (the request's own when signed). */
  signatureQuery: string;
}

/**
 * Access rule of the playback routes (playlist, init segment, media segments, events): either a
 * valid `?expires=..&sig=..` for this video (see `../signed-url.ts`), or the Bearer API key of
 * the video's owner. A present but bad signature is 403 (`invalid_signature`,
 * `signature_expired`) even if a Bearer header is sent too; another key's video is 404, as on the
 * other video routes.
 */
export async function authorizePlayback(
  app: FastifyInstance,
  request: FastifyRequest,
  signing: SigningOptions,
): Promise<PlaybackAccess> {
  const { id } = request.params as { id: string };
  const query = (request.query ?? {}) as { expires?: unknown; sig?: unknown };
  if (!isVideoId(id)) throw new ApiError('video_not_found', `No video with id '${id}'.`, { param: 'id' });
  const check = checkSignature(signing, id, query);
  switch (check) {
    case 'valid': {
      const video = await app.prisma.video.findUnique({ where: { id }, select: playbackVideoSelect });
      if (!video) throw new ApiError('video_not_found', `No video with id '${id}'.`, { param: 'id' });
      return { video, via: 'signature', signatureQuery: `expires=${String(query.expires)}&sig=${String(query.sig)}` };
    }
    case 'malformed':
      throw new ApiError('invalid_signature', 'The URL signature is malformed: send both `expires` and `sig` as issued.', {
        param: 'sig',
      });
    case 'invalid':
      throw new ApiError('invalid_signature', 'The URL signature does not match this video.', { param: 'sig' });
    case 'expired':
      throw new ApiError('signature_expired', 'The signed URL has expired; fetch the video again for fresh URLs.', {
        param: 'expires',
      });
    case 'absent':
      break;
  }
  await app.authenticate(request);
  const video = await app.prisma.video.findFirst({ where: { id, ownerId: request.principal.keyId }, select: playbackVideoSelect });
  if (!video) throw new ApiError('video_not_found', `No video with id '${id}'.`, { param: 'id' });
  return { video, via: 'bearer', signatureQuery: signatureQuery(signing, id) };
}
