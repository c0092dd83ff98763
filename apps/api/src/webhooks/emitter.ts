import { createHash } from 'node:crypto';
import type { PgPool, PrismaClient } from '@rehyat/db';
import type { VideoEvent, VideoEventType } from '@rehyat/contracts';
import { isTerminalEvent } from '@rehyat/contracts';
import type { ActiveVideoLimiter } from '@rehyat/ratelimit';
import { buildEventBody, generateSecret, type WebhookDeliveryQueue } from '@rehyat/webhooks';
import { DEFAULT_WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../schemas/webhooks.js';
import { toVideo, type VideoViewOptions } from '../services/video-view.js';

/** Live event -> webhook event; live events without a webhook (progress) map to null. */
export const WEBHOOK_TYPE_OF: Record<VideoEventType, WebhookEventType | null> = {
  'video.queued': 'video.queued',
  'video.in_progress': 'video.started',
  'video.progress': null,
  'video.chunk': 'video.chunk.ready',
  'video.completed': 'video.completed',
  'video.failed': 'video.failed',
  'video.cancelled': 'video.cancelled',
};

const h32 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 32);

export interface EmitterDeps {
  prisma: PrismaClient;
  /** The pool behind `prisma`: the two batch reads are plain SQL (Prisma's per-call cost would dominate). */
  pg: PgPool;
  queue: WebhookDeliveryQueue;
  active: ActiveVideoLimiter;
  view: VideoViewOptions;
}

/** One entry of the all-videos feed. */
export interface FeedItem {
  event: VideoEvent;
  entryId: string;
}

/**
 * Handles one entry of the all-videos feed: releases the owner's active-video slot on a terminal
 * event, and turns the event into webhook deliveries (one per matching endpoint of the video's
 * API key, plus the video's own `webhook_url`). Idempotent per feed entry: event, message and
 * delivery ids are derived from the entry id, rows are inserted with skipDuplicates and attempt
 * jobs have deterministic ids, so handling an entry twice sends nothing twice.
 */
export async function handleFeedEvent(deps: EmitterDeps, event: VideoEvent, entryId: string): Promise<number> {
  const [result] = await handleFeedEvents(deps, [{ event, entryId }]);
  if (result instanceof Error) throw result;
  return result as number;
}

/**
 * {@link handleFeedEvent} for a batch of entries, in order, with two reads for the whole batch
 * (the videos' owners and webhook URLs; the owners' enabled endpoints) instead of two per event:
 * at creation rates nearly every entry is a `video.queued` with no webhook target, and one
 * round trip per entry would cost more than the creation itself. Returns, per entry, the number
 * of deliveries created or the error that stopped it (that entry stays pending; the others are
 * unaffected).
 */
export async function handleFeedEvents(deps: EmitterDeps, items: readonly FeedItem[]): Promise<Array<number | Error>> {
  const results: Array<number | Error> = items.map(() => 0);
  // Progress events (many per video) need nothing: no database read for them.
  const relevant = items
    .map((item, i) => ({ ...item, i, type: WEBHOOK_TYPE_OF[item.event.type] }))
    .filter((r) => r.type !== null || isTerminalEvent(r.event.type));
  if (relevant.length === 0) return results;
  const fail = (rs: typeof relevant, err: unknown) => {
    for (const r of rs) results[r.i] = err instanceof Error ? err : new Error(String(err));
  };

  // Light reads first: most events have no webhook target.
  let heads: Map<string, { ownerId: string; webhookUrl: string | null }>;
  try {
    const { rows } = await deps.pg.query<{ id: string; owner_id: string; webhook_url: string | null }>(
      'SELECT "id", "owner_id", "webhook_url" FROM "videos" WHERE "id" = ANY($1::text[])',
      [[...new Set(relevant.map((r) => r.event.video_id))]],
    );
    heads = new Map(rows.map((r) => [r.id, { ownerId: r.owner_id, webhookUrl: r.webhook_url }]));
  } catch (err) {
    fail(relevant, err);
    return results;
  }
  const typed = relevant.filter((r) => r.type !== null && heads.has(r.event.video_id));
  let endpointsByOwner = new Map<string, Array<{ id: string; url: string; eventTypes: string[] }>>();
  let endpointsError: unknown = null;
  if (typed.length > 0) {
    try {
      const { rows } = await deps.pg.query<{ id: string; url: string; owner_id: string; event_types: string[] }>(
        'SELECT "id", "url", "owner_id", "event_types" FROM "webhook_endpoints" WHERE "owner_id" = ANY($1::text[]) AND "enabled" ' +
          'ORDER BY "created_at", "id"',
        [[...new Set(typed.map((r) => heads.get(r.event.video_id)!.ownerId))]],
      );
      endpointsByOwner = new Map();
      for (const e of rows) {
        endpointsByOwner.set(e.owner_id, [...(endpointsByOwner.get(e.owner_id) ?? []), { id: e.id, url: e.url, eventTypes: e.event_types }]);
      }
    } catch (err) {
      endpointsError = err;
    }
  }

  for (const r of relevant) {
    const head = heads.get(r.event.video_id);
    if (!head) continue;
    try {
      if (isTerminalEvent(r.event.type)) await deps.active.release(head.ownerId, r.event.video_id);
      if (r.type === null) continue;
      if (endpointsError) throw endpointsError;
      const endpoints = (endpointsByOwner.get(head.ownerId) ?? []).filter((e) => e.eventTypes.includes(r.type!));
      results[r.i] = await deliver(deps, r.event, r.entryId, r.type, head, endpoints);
    } catch (err) {
      fail([r], err);
    }
  }
  return results;
}

/** Creates the deliveries of one event to its targets (endpoints, the video's own `webhook_url`). */
async function deliver(
  deps: EmitterDeps,
  event: VideoEvent,
  entryId: string,
  type: WebhookEventType,
  head: { ownerId: string; webhookUrl: string | null },
  endpoints: Array<{ id: string; url: string }>,
): Promise<number> {
  const targets: Array<{ endpointId: string | null; url: string }> = endpoints.map((e) => ({ endpointId: e.id, url: e.url }));
  if (head.webhookUrl && DEFAULT_WEBHOOK_EVENT_TYPES.includes(type)) {
    await ensureDefaultWebhookSecret(deps.prisma, head.ownerId);
    targets.push({ endpointId: null, url: head.webhookUrl });
  }
  if (targets.length === 0) return 0;
  const row = await deps.prisma.video.findUnique({
    where: { id: event.video_id },
    include: { chunks: { select: { index: true, durationSeconds: true, frames: true } } },
  });
  if (!row) return 0;

  const eventId = `evt_${h32(`event|${entryId}`)}`;
  const queuePosition = event.type === 'video.queued' ? (event.data as { queue_position: number | null }).queue_position : null;
  const payload = buildEventBody({ id: eventId, type, createdAt: new Date(event.created_at), data: toVideo(row, queuePosition, deps.view) });
  const now = new Date();
  const rows = targets.map((t) => {
    const target = t.endpointId ?? 'webhook_url';
    return {
      id: `whd_${h32(`delivery|${entryId}|${target}`)}`,
      messageId: `msg_${h32(`message|${entryId}|${target}`)}`,
      eventId,
      ownerId: row.ownerId,
      endpointId: t.endpointId,
      url: t.url,
      videoId: row.id,
      eventType: type,
      payload,
      status: 'pending' as const,
      attempts: 0,
      nextAttemptAt: now,
    };
  });
  await deps.prisma.webhookDelivery.createMany({ data: rows, skipDuplicates: true });
  for (const r of rows) await deps.queue.schedule(r.id, 1);
  return rows.length;
}

/** The API key's secret for per-request `webhook_url`s, created on first use. */
export async function ensureDefaultWebhookSecret(prisma: PrismaClient, ownerId: string): Promise<string> {
  const existing = await prisma.apiKey.findUniqueOrThrow({ where: { id: ownerId }, select: { webhookSecret: true } });
  if (existing.webhookSecret) return existing.webhookSecret;
  await prisma.apiKey.updateMany({ where: { id: ownerId, webhookSecret: null }, data: { webhookSecret: generateSecret() } });
  const key = await prisma.apiKey.findUniqueOrThrow({ where: { id: ownerId }, select: { webhookSecret: true } });
  return key.webhookSecret!;
}
