import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from '../errors.js';
import {
  ContentQuery,
  CreateVideoBody,
  DeletedVideo,
  ExtendVideoBody,
  ListVideosQuery,
  RemixVideoBody,
  Video,
  VideoIdParams,
  VideoList,
} from '../schemas/videos.js';
import type { VideoService } from '../services/video-service.js';

export interface VideoRoutesOptions {
  service: VideoService;
}

const IdempotencyHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .optional()
    .describe('Same key and same body: the same video is returned and no second job is queued. Same key, other body: 422.'),
});

const security = [{ bearerAuth: [] }];
/** Creation routes take JSON or form fields (the `openai` client sends multipart/form-data). */
const BODY_TYPES = ['application/json', 'multipart/form-data'];

/**
 * multipart/form-data sends nested objects as bracketed names (`video[id]`, as the `openai`
 * client encodes `{ video: { id } }`); turn them back into objects before validation.
 */
export function unflattenFormFields(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(body)) {
    const parts = /^[^[\]]+(\[[^[\]]+\])+$/.test(name) ? name.split(/[[\]]+/).filter(Boolean) : [name];
    if (parts.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) continue;
    let target = out;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) target[part] = value;
      else {
        const next = target[part];
        target = (target[part] = next !== null && typeof next === 'object' && !Buffer.isBuffer(next) ? next : {}) as Record<string, unknown>;
      }
    });
  }
  return out;
}

async function normalizeMultipart(request: FastifyRequest): Promise<void> {
  if (request.isMultipart() && request.body && typeof request.body === 'object') {
    request.body = unflattenFormFields(request.body as Record<string, unknown>);
  }
}

/** The Videos API: OpenAI's routes plus cancel. Every route needs a Bearer API key. */
export async function videoRoutes(app: FastifyInstance, opts: VideoRoutesOptions): Promise<void> {
  const { service } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();
  app.addHook('onRequest', app.authenticate);
  const idem = (request: FastifyRequest) => (request.headers['idempotency-key'] as string | undefined) || undefined;

  r.post(
    '/v1/videos',
    {
      preValidation: normalizeMultipart,
      schema: {
        consumes: BODY_TYPES,
        tags: ['videos'],
        summary: 'Create a video',
        description:
          'Queues a generation job. Accepts application/json or multipart/form-data (what the `openai` client sends). ' +
          'Prompt length, seconds, size and steps are checked against the model\'s manifest.',
        security,
        headers: IdempotencyHeaders,
        body: CreateVideoBody,
        response: { 200: Video, ...errorResponses(404, 409, 413, 415, 422, 503) },
      },
    },
    async (request) => {
      const video = await service.create(request.principal.keyId, request.body, idem(request));
      app.metrics.videosCreated.inc({ model: video.model });
      return video;
    },
  );

  r.get(
    '/v1/videos',
    {
      schema: {
        tags: ['videos'],
        summary: 'List your videos',
        description: 'Cursor pagination: pass the previous page\'s `last_id` as `after`.',
        security,
        querystring: ListVideosQuery,
        response: { 200: VideoList, ...errorResponses() },
      },
    },
    async (request) => {
      const { data, has_more } = await service.list(request.principal.keyId, request.query);
      return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more };
    },
  );

  r.get(
    '/v1/videos/:id',
    {
      schema: {
        tags: ['videos'],
        summary: 'Retrieve a video',
        security,
        params: VideoIdParams,
        response: { 200: Video, ...errorResponses(404) },
      },
    },
    async (request) => service.get(request.principal.keyId, request.params.id),
  );

  r.delete(
    '/v1/videos/:id',
    {
      schema: {
        tags: ['videos'],
        summary: 'Delete a video',
        description:
          'Deletes the video, its chunks and stored files. A queued video\'s job is removed; a video being generated is 409 ' +
          '`video_in_progress` (cancel it, then delete it).',
        security,
        params: VideoIdParams,
        response: { 200: DeletedVideo, ...errorResponses(404, 409, 503) },
      },
    },
    async (request) => service.delete(request.principal.keyId, request.params.id),
  );

  r.get(
    '/v1/videos/:id/content',
    {
      schema: {
        tags: ['videos'],
        summary: 'Download video content',
        description: 'Streams the MP4 (`variant=video`), the WebP thumbnail or the JPEG spritesheet of a completed video.',
        security,
        params: VideoIdParams,
        querystring: ContentQuery,
        response: {
          200: z.any().describe('The file (video/mp4, image/webp or image/jpeg)'),
          ...errorResponses(404, 409, 503),
        },
      },
    },
    async (request, reply) => {
      const obj = await service.content(request.principal.keyId, request.params.id, request.query.variant);
      const ext = { video: 'mp4', thumbnail: 'webp', spritesheet: 'jpg' }[request.query.variant];
      void reply
        .type(obj.contentType)
        .header('content-length', obj.contentLength)
        .header('content-disposition', `attachment; filename="${request.params.id}.${ext}"`);
      if (obj.etag) void reply.header('etag', obj.etag);
      return reply.serializer((x: unknown) => x as string).send(obj.body);
    },
  );

  r.post(
    '/v1/videos/:id/remix',
    {
      preValidation: normalizeMultipart,
      schema: {
        consumes: BODY_TYPES,
        tags: ['videos'],
        summary: 'Remix a completed video',
        description: 'A new video with a new prompt and the source\'s model, seconds, size, seed, steps and guidance.',
        security,
        headers: IdempotencyHeaders,
        params: VideoIdParams,
        body: RemixVideoBody,
        response: { 200: Video, ...errorResponses(404, 409, 422, 503) },
      },
    },
    async (request) => {
      const video = await service.remix(request.principal.keyId, request.params.id, request.body, idem(request));
      app.metrics.videosCreated.inc({ model: video.model });
      return video;
    },
  );

  r.post(
    '/v1/videos/extensions',
    {
      preValidation: normalizeMultipart,
      schema: {
        consumes: BODY_TYPES,
        tags: ['videos'],
        summary: 'Extend a completed video',
        description:
          'Continues a completed video from its final state with a new prompt (the `openai` client\'s `videos.extend`). ' +
          '`seconds` is the new part; the returned video\'s `seconds` is the stitched total.',
        security,
        headers: IdempotencyHeaders,
        body: ExtendVideoBody,
        response: { 200: Video, ...errorResponses(404, 409, 422, 503) },
      },
    },
    async (request) => {
      const video = await service.extend(request.principal.keyId, request.body, idem(request));
      app.metrics.videosCreated.inc({ model: video.model });
      return video;
    },
  );

  r.post(
    '/v1/videos/:id/cancel',
    {
      schema: {
        tags: ['videos'],
        summary: 'Cancel a video',
        description:
          'Queued: the job is removed and the video is `cancelled` at once. In progress: the worker is signalled and stops ' +
          'between denoising steps (`cancel_requested_at` is set; `video.cancelled` follows on the event stream). Finished: 409.',
        security,
        params: VideoIdParams,
        response: { 200: Video, ...errorResponses(404, 409, 503) },
      },
    },
    async (request) => {
      const { video, previousStatus } = await service.cancel(request.principal.keyId, request.params.id);
      app.metrics.videosCancelled.inc({ from: previousStatus });
      return video;
    },
  );
}
