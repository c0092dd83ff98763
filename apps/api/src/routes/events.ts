import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { Gauge } from 'prom-client';
import { z } from 'zod';
import { FailureCode, isTerminal, isTerminalEvent, type VideoEvent, type VideoId } from '@rehyat/contracts';
import { VideoEventHub, compareStreamIds, isStreamId, normalizeStreamId, type StoredVideoEvent } from '@rehyat/events';
import { ApiError, errorResponses } from '../errors.js';
import type { SigningOptions } from '../signed-url.js';
import { authorizePlayback, type PlaybackAccess } from './playback-auth.js';

export interface EventRoutesOptions {
  signing: SigningOptions;
  /** Interval of `: heartbeat` comment lines. */
  heartbeatMs: number;
  /**
   * A client whose unsent bytes exceed this is disconnected (it resumes with `Last-Event-ID`)
   * instead of growing the process's memory. @defaultValue `1 MiB`
   */
  maxBufferedBytes?: number;
  /** `retry:` sent to EventSource clients (reconnect delay). @defaultValue `3000` */
  retryMs?: number;
}

const Params = z.object({ id: z.string().min(1).describe('Video id, `video_...`') });
const Query = z.looseObject({
  last_event_id: z.string().optional().describe('Resume after this event id (for clients that cannot send `Last-Event-ID`).'),
  expires: z.string().optional().describe('Expiry of a signed URL (with `sig`, replaces the Bearer header).'),
  sig: z.string().optional().describe('Signature of a signed URL.'),
});
const Headers = z.looseObject({
  'last-event-id': z.string().optional().describe('Resume after this event id (EventSource sends it on reconnect).'),
});

/**
 * The SSE frame of a stream entry, built once however many clients receive it (the hub hands the
 * same object to every subscriber of a video).
 */
const frames = new WeakMap<StoredVideoEvent, string>();
function frameOf(stored: StoredVideoEvent): string {
  let frame = frames.get(stored);
  if (frame === undefined) {
    frame = `id: ${stored.id}\nevent: ${stored.event.type}\ndata: ${JSON.stringify(stored.event)}\n\n`;
    frames.set(stored, frame);
  }
  return frame;
}

/** One open SSE response. Writes made in one tick leave in one syscall (cork/uncork). */
class SseConnection {
  closed = false;
  private corked = false;
  constructor(
    private readonly res: ServerResponse,
    private readonly maxBufferedBytes: number,
    private readonly onClosed: () => void,
  ) {}

  send(stored: StoredVideoEvent): void {
    this.write(frameOf(stored));
  }

  comment(text: string): void {
    this.write(`: ${text}\n\n`);
  }

  private write(chunk: string): void {
    if (this.closed) return;
    if (this.res.writableLength > this.maxBufferedBytes) {
      this.close();
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.res.cork();
      process.nextTick(() => this.flush());
    }
    this.res.write(chunk);
  }

  private flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.res.uncork();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.flush();
    if (!this.res.writableEnded) this.res.end();
    this.onClosed();
  }
}

/** The terminal event a finished video would have sent, for videos whose stream has expired. */
function terminalEventFromRow(video: PlaybackAccess['video']): VideoEvent | null {
  const base = { video_id: video.id as VideoId, created_at: new Date().toISOString() };
  switch (video.status) {
    case 'completed':
      return { ...base, type: 'video.completed', data: { chunks_total: video.chunksDone, seconds: video.durationSeconds ?? video.seconds } };
    case 'failed': {
      const code = FailureCode.safeParse(video.errorCode);
      return {
        ...base,
        type: 'video.failed',
        data: { code: code.success ? code.data : 'internal_error', message: video.errorMessage ?? video.errorCode ?? 'failed' },
      };
    }
    case 'cancelled':
      return { ...base, type: 'video.cancelled', data: {} };
    default:
      return null;
  }
}

/**
 * `GET /v1/videos/:id/events`: the video's live events as Server-Sent Events, backed by its
 * Redis stream, so any replica serves any client. Replays from `Last-Event-ID` (header, or
 * `?last_event_id=`), then tails; `id:` is the stream entry id, `event:` the type, `data:` the
 * event JSON (`{type, video_id, created_at, data}`); `: heartbeat` comments every
 * `heartbeatMs`; the response ends after the terminal event. A terminal event that is not the
 * stream's newest entry when the client connects has been superseded (an admin retry appends
 * `video.queued` after `video.failed`): it is sent like any event and the response goes on.
 *
 * All streams of the process share one {@link VideoEventHub} (one blocking Redis connection) and
 * one heartbeat timer. Disconnects free the subscription at once; `preClose` ends every stream so
 * `app.close()` does not wait for clients.
 */
export async function eventRoutes(app: FastifyInstance, opts: EventRoutesOptions): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const maxBuffered = opts.maxBufferedBytes ?? 1024 * 1024;
  const retryMs = opts.retryMs ?? 3000;
  const hub = new VideoEventHub({
    redis: app.redis,
    keyspace: app.keyspace,
    onError: (err) => app.log.warn({ err: err.message }, 'event hub error'),
  });
  const open = new Set<SseConnection>();

  new Gauge({
    name: 'rehyat_api_sse_connections',
    help: 'Open SSE streams of GET /v1/videos/:id/events',
    registers: [app.metrics.registry],
    collect() {
      this.set(open.size);
    },
  });
  new Gauge({
    name: 'rehyat_api_sse_videos',
    help: 'Videos whose event stream this process is tailing (one shared blocking XREAD)',
    registers: [app.metrics.registry],
    collect() {
      this.set(hub.stats().videos);
    },
  });

  const heartbeat = setInterval(() => {
    for (const conn of open) conn.comment('heartbeat');
  }, opts.heartbeatMs);
  heartbeat.unref();

  app.addHook('preClose', async () => {
    clearInterval(heartbeat);
    for (const conn of [...open]) conn.close();
  });
  app.addHook('onClose', async () => {
    await hub.close();
  });

  r.get(
    '/v1/videos/:id/events',
    {
      schema: {
        tags: ['videos'],
        summary: 'Live events of a video (Server-Sent Events)',
        description:
          'text/event-stream of `video.queued`, `video.in_progress`, `video.progress`, `video.chunk` and one terminal ' +
          '`video.completed` | `video.failed` | `video.cancelled`, after which the stream ends. Event ids are monotonic; ' +
          'reconnect with `Last-Event-ID` to resume. Comment lines (`: heartbeat`) keep idle connections open. ' +
          'A failed video retried by an admin continues in the same stream: `video.failed` followed by `video.queued` and ' +
          'the new attempt\'s events; only a terminal event with nothing after it ends the stream.',
        security: [{ bearerAuth: [] }, { signedUrl: [] }] as Record<string, string[]>[],
        params: Params,
        querystring: Query,
        headers: Headers,
        response: { 200: z.string().describe('text/event-stream'), ...errorResponses(403, 404, 503) },
      },
    },
    async (request, reply) => {
      const rawLastId = request.headers['last-event-id'] ?? request.query.last_event_id;
      const lastId = rawLastId === undefined || rawLastId === '' ? undefined : rawLastId;
      if (lastId !== undefined && !isStreamId(lastId)) {
        throw new ApiError('invalid_value', `Invalid value for 'last_event_id': '${lastId}' is not an event id (like 1732662000000-0).`, {
          param: 'last_event_id',
        });
      }
      const { video } = await authorizePlayback(app, request, opts.signing);
      try {
        await hub.start();
      } catch (err) {
        throw new ApiError('service_unavailable', 'Redis is unavailable; live events cannot be served.', { cause: err });
      }

      // The newest entry now. A terminal event older than it was followed by more (an admin retry
      // appends `video.queued` after `video.failed`): it is delivered, but does not end the
      // response; a terminal event at or after it does. A finished video: its stream may have
      // expired, or the client may already have the end.
      let newestId: string | null;
      try {
        const last = (await app.redis.xrevrange(app.keyspace.videoEvents(video.id), '+', '-', 'COUNT', 1)) as [string, string[]][];
        newestId = last[0]?.[0] ?? null;
      } catch (err) {
        throw new ApiError('service_unavailable', 'Redis is unavailable; live events cannot be served.', { cause: err });
      }
      let synthetic: VideoEvent | null = null;
      let nothingLeft = false;
      if (isTerminal(video.status)) {
        if (newestId === null) synthetic = terminalEventFromRow(video);
        else if (lastId !== undefined && compareStreamIds(newestId, normalizeStreamId(lastId)) <= 0) nothingLeft = true;
      }
      const ends = (stored: StoredVideoEvent) =>
        isTerminalEvent(stored.event.type) && (newestId === null || compareStreamIds(stored.id, newestId) >= 0);

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: ${retryMs}\n\n`);
      if (synthetic || nothingLeft) {
        if (synthetic) res.write(`event: ${synthetic.type}\ndata: ${JSON.stringify(synthetic)}\n\n`);
        res.end();
        return;
      }

      let sub: { close(): void } | null = null;
      const conn = new SseConnection(res, maxBuffered, () => {
        open.delete(conn);
        sub?.close();
      });
      open.add(conn);
      request.raw.on('close', () => conn.close());
      res.on('close', () => conn.close());
      if (conn.closed) return;
      sub = hub.subscribe(video.id as VideoId, {
        ...(lastId !== undefined ? { after: lastId } : {}),
        onEvent: (stored: StoredVideoEvent) => {
          conn.send(stored);
          if (ends(stored)) conn.close();
        },
      });
      if (conn.closed) sub.close();
    },
  );
}
