import type { PrismaClient, WebhookDelivery as DeliveryRow, WebhookEndpoint as EndpointRow } from '@rehyat/db';
import { DELIVERY_ID_PATTERN, generateSecret, newDeliveryId, newEndpointId, secretHint, type WebhookDeliveryQueue } from '@rehyat/webhooks';
import { ApiError } from '../errors.js';
import { DEFAULT_WEBHOOK_EVENT_TYPES, type WebhookDelivery, type WebhookEndpoint, type WebhookEventType } from '../schemas/webhooks.js';
import { ensureDefaultWebhookSecret } from './emitter.js';

const unix = (d: Date): number => Math.floor(d.getTime() / 1000);
/** How long the previous secret keeps signing after a rotation that keeps it. */
export const ROTATION_OVERLAP_MS = 24 * 3600 * 1000;

export function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    object: 'webhook_endpoint',
    created_at: unix(row.createdAt),
    updated_at: unix(row.updatedAt),
    name: row.name,
    url: row.url,
    event_types: row.eventTypes,
    signing_secret_hint: secretHint(row.secret),
    enabled: row.enabled,
    disabled_reason: row.disabledReason,
  };
}

export function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    object: 'webhook_delivery',
    endpoint_id: row.endpointId,
    event_id: row.eventId,
    message_id: row.messageId,
    event_type: row.eventType,
    video_id: row.videoId,
    url: row.url,
    status: row.status,
    attempts: row.attempts,
    next_attempt_at: row.nextAttemptAt ? unix(row.nextAttemptAt) : null,
    last_status_code: row.lastStatusCode,
    last_latency_ms: row.lastLatencyMs,
    last_response_excerpt: row.lastResponseExcerpt,
    last_error: row.lastError,
    redelivery_of: row.redeliveryOf,
    created_at: unix(row.createdAt),
    updated_at: unix(row.updatedAt),
  };
}

export interface WebhookEndpointServiceDeps {
  prisma: PrismaClient;
  queue: WebhookDeliveryQueue;
  /** Refuses a URL the SSRF policy does not allow (throws `invalid_webhook_url`). */
  checkUrl: (url: string, param: string) => Promise<string>;
}

interface Page<T> {
  object: 'list';
  data: T[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

function page<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const data = rows.slice(0, limit);
  return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: rows.length > limit };
}

/** Webhook endpoints and their delivery log, scoped to the owning API key. */
export class WebhookEndpointService {
  constructor(private readonly deps: WebhookEndpointServiceDeps) {}

  async create(ownerId: string, body: { url: string; event_types?: WebhookEventType[] | undefined; name?: string | undefined }) {
    const url = await this.deps.checkUrl(body.url, 'url');
    const secret = generateSecret();
    const row = await this.deps.prisma.webhookEndpoint.create({
      data: {
        id: newEndpointId(),
        ownerId,
        name: body.name ?? '',
        url,
        eventTypes: [...new Set(body.event_types ?? DEFAULT_WEBHOOK_EVENT_TYPES)],
        secret,
      },
    });
    return { ...toEndpoint(row), signing_secret: secret };
  }

  async list(ownerId: string, opts: { after?: string | undefined; limit: number }): Promise<Page<WebhookEndpoint>> {
    const cursor = opts.after ? await this.deps.prisma.webhookEndpoint.findFirst({ where: { id: opts.after, ownerId } }) : null;
    if (opts.after && !cursor) throw new ApiError('invalid_value', `Invalid value for 'after': no webhook endpoint ${opts.after}.`, { param: 'after' });
    const rows = await this.deps.prisma.webhookEndpoint.findMany({
      where: {
        ownerId,
        ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: opts.limit + 1,
    });
    const p = page(rows, opts.limit);
    return { ...p, data: p.data.map(toEndpoint) };
  }

  async #owned(ownerId: string, id: string): Promise<EndpointRow> {
    const row = await this.deps.prisma.webhookEndpoint.findFirst({ where: { id, ownerId } });
    if (!row) throw new ApiError('webhook_endpoint_not_found', `No webhook endpoint with id '${id}'.`, { param: 'id' });
    return row;
  }

  async get(ownerId: string, id: string): Promise<WebhookEndpoint> {
    return toEndpoint(await this.#owned(ownerId, id));
  }

  /** Changes url, events or name; an update also re-enables a disabled endpoint. */
  async update(ownerId: string, id: string, body: { url?: string | undefined; event_types?: WebhookEventType[] | undefined; name?: string | undefined }) {
    await this.#owned(ownerId, id);
    const url = body.url === undefined ? undefined : await this.deps.checkUrl(body.url, 'url');
    const row = await this.deps.prisma.webhookEndpoint.update({
      where: { id },
      data: {
        ...(url === undefined ? {} : { url }),
        ...(body.event_types === undefined ? {} : { eventTypes: [...new Set(body.event_types)] }),
        ...(body.name === undefined ? {} : { name: body.name }),
        enabled: true,
        disabledReason: null,
      },
    });
    return toEndpoint(row);
  }

  /** Deletes the endpoint and its delivery log; pending deliveries stop. */
  async delete(ownerId: string, id: string) {
    await this.#owned(ownerId, id);
    await this.deps.prisma.webhookEndpoint.delete({ where: { id } });
    return { id, object: 'webhook_endpoint.deleted' as const, deleted: true as const };
  }

  /** A new secret, shown once; the old one keeps signing for 24 h unless told otherwise. */
  async rotateSecret(ownerId: string, id: string, keepOld = true) {
    const old = await this.#owned(ownerId, id);
    const secret = generateSecret();
    const row = await this.deps.prisma.webhookEndpoint.update({
      where: { id },
      data: {
        secret,
        previousSecret: keepOld ? old.secret : null,
        previousSecretExpiresAt: keepOld ? new Date(Date.now() + ROTATION_OVERLAP_MS) : null,
      },
    });
    return { ...toEndpoint(row), signing_secret: secret };
  }

  async deliveries(ownerId: string, id: string, opts: { after?: string | undefined; limit: number }): Promise<Page<WebhookDelivery>> {
    await this.#owned(ownerId, id);
    const cursor = opts.after ? await this.deps.prisma.webhookDelivery.findFirst({ where: { id: opts.after, endpointId: id } }) : null;
    if (opts.after && !cursor) throw new ApiError('invalid_value', `Invalid value for 'after': no delivery ${opts.after} on this endpoint.`, { param: 'after' });
    const rows = await this.deps.prisma.webhookDelivery.findMany({
      where: {
        endpointId: id,
        ...(cursor ? { OR: [{ createdAt: { lt: cursor.createdAt } }, { createdAt: cursor.createdAt, id: { lt: cursor.id } }] } : {}),
      },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: opts.limit + 1,
    });
    const p = page(rows, opts.limit);
    return { ...p, data: p.data.map(toDelivery) };
  }

  /**
   * Sends a delivery's message again as a new delivery (same `webhook-id` and body, fresh
   * attempts and schedule) to the endpoint's current URL.
   */
  async redeliver(ownerId: string, endpointId: string, deliveryId: string): Promise<WebhookDelivery> {
    const endpoint = await this.#owned(ownerId, endpointId);
    const original = DELIVERY_ID_PATTERN.test(deliveryId)
      ? await this.deps.prisma.webhookDelivery.findFirst({ where: { id: deliveryId, endpointId } })
      : null;
    if (!original) throw new ApiError('webhook_delivery_not_found', `No delivery '${deliveryId}' on webhook endpoint '${endpointId}'.`, { param: 'delivery_id' });
    const row = await this.deps.prisma.webhookDelivery.create({
      data: {
        id: newDeliveryId(),
        messageId: original.messageId,
        eventId: original.eventId,
        ownerId,
        endpointId,
        url: endpoint.url,
        videoId: original.videoId,
        eventType: original.eventType,
        payload: original.payload,
        status: 'pending',
        attempts: 0,
        nextAttemptAt: new Date(),
        redeliveryOf: original.id,
      },
    });
    await this.deps.queue.schedule(row.id, 1);
    return toDelivery(row);
  }

  /** The key's secret for per-request `webhook_url`s (created on first use). */
  async defaultSecret(ownerId: string) {
    return { object: 'webhook_secret' as const, signing_secret: await ensureDefaultWebhookSecret(this.deps.prisma, ownerId) };
  }
}
