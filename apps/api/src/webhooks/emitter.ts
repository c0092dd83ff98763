import { createHash } from 'node:crypto';
import type { PrismaClient } from '@rehyat/db';
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
  queue: WebhookDeliveryQueue;
  active: ActiveVideoLimiter;
  view: VideoViewOptions;
}

/**
 * Handles one entry of the all-videos feed: releases the owner's active-video slot on a terminal
 * event, and turns the event into webhook deliveries (one per matching endpoint of the video's
 * API key, plus the video's own `webhook_url`). Idempotent per feed entry: event, message and
 * delivery ids are derived from the entry id, rows are inserted with skipDuplicates and attempt
 * jobs have deterministic ids, so handling an entry twice sends nothing twice.
 */
export async function handleFeedEvent(deps: EmitterDeps, event: VideoEvent, entryId: string): Promise<number> {
  const type = WEBHOOK_TYPE_OF[event.type];
  // Progress events (many per video) need nothing: no database read for them.
  if (type === null && !isTerminalEvent(event.type)) return 0;
  // Light read first: most events have no webhook target.
  const head = await deps.prisma.video.findUnique({ where: { id: event.video_id }, select: { ownerId: true, webhookUrl: true } });
  if (!head) return 0;
  if (isTerminalEvent(event.type)) await deps.active.release(head.ownerId, event.video_id);
  if (type === null) return 0;

  const endpoints = await deps.prisma.webhookEndpoint.findMany({
    where: { ownerId: head.ownerId, enabled: true, eventTypes: { has: type } },
    select: { id: true, url: true },
    orderBy: { createdAt: 'asc' },
  });
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
