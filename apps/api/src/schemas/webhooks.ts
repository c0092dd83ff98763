import { z } from 'zod';

/**
 * Webhook event types. `video.chunk.ready` is opt-in: only endpoints that list it receive it.
 * (The live event `video.in_progress` is delivered as `video.started`.)
 */
export const WEBHOOK_EVENT_TYPES = [
  'video.queued',
  'video.started',
  'video.chunk.ready',
  'video.completed',
  'video.failed',
  'video.cancelled',
] as const;
export const WebhookEventType = z.enum(WEBHOOK_EVENT_TYPES);
export type WebhookEventType = z.infer<typeof WebhookEventType>;

/** What an endpoint (or a per-request `webhook_url`) receives when it names no event types. */
export const DEFAULT_WEBHOOK_EVENT_TYPES: WebhookEventType[] = ['video.queued', 'video.started', 'video.completed', 'video.failed', 'video.cancelled'];

const Url = z.string().min(1).max(2048).describe('http(s) URL the events are POSTed to; private and metadata addresses are refused.');

/** `POST /v1/webhook_endpoints` (the shape of OpenAI's `client.webhooks.create`). */
export const CreateWebhookEndpointBody = z
  .strictObject({
    url: Url,
    event_types: z.array(WebhookEventType).min(1).optional().describe('Events to deliver; default: every event but `video.chunk.ready`.'),
    name: z.string().max(200).optional(),
  })
  .meta({ id: 'CreateWebhookEndpointRequest' });

/** `POST /v1/webhook_endpoints/:id`: change url, events or name; re-enables a disabled endpoint. */
export const UpdateWebhookEndpointBody = z
  .strictObject({
    url: Url.optional(),
    event_types: z.array(WebhookEventType).min(1).optional(),
    name: z.string().max(200).optional(),
  })
  .meta({ id: 'UpdateWebhookEndpointRequest' });

export const RotateSecretBody = z
  .strictObject({
    keep_old_secret_active_for_24_hours: z
      .boolean()
      .optional()
      .describe('Sign with the old secret too for 24 hours (default true), so receivers can switch without losing events.'),
  })
  .nullish()
  .meta({ id: 'RotateWebhookSecretRequest' });

export const WebhookEndpointParams = z.object({ id: z.string().min(1).describe('Webhook endpoint id, `whe_...`') });
export const WebhookDeliveryParams = z.object({
  id: z.string().min(1).describe('Webhook endpoint id, `whe_...`'),
  delivery_id: z.string().min(1).describe('Delivery id, `whd_...`'),
});

export const ListQuery = z.strictObject({
  after: z.string().optional().describe('Id of the last item of the previous page.'),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export const WebhookEndpoint = z
  .object({
    id: z.string(),
    object: z.literal('webhook_endpoint'),
    created_at: z.number().int(),
    updated_at: z.number().int(),
    name: z.string(),
    url: z.string(),
    event_types: z.array(z.string()),
    signing_secret_hint: z.string().nullable(),
    /** Ours: deliveries stop while false (a receiver answered 410, or it was disabled). */
    enabled: z.boolean(),
    disabled_reason: z.string().nullable(),
  })
  .meta({ id: 'WebhookEndpoint' });
export type WebhookEndpoint = z.infer<typeof WebhookEndpoint>;

export const WebhookEndpointWithSecret = WebhookEndpoint.extend({
  signing_secret: z.string().describe('`whsec_...`: shown only in this response.'),
}).meta({ id: 'WebhookEndpointWithSecret' });

export const WebhookEndpointList = z
  .object({
    object: z.literal('list'),
    data: z.array(WebhookEndpoint),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  })
  .meta({ id: 'WebhookEndpointList' });

export const DeletedWebhookEndpoint = z
  .object({ id: z.string(), object: z.literal('webhook_endpoint.deleted'), deleted: z.literal(true) })
  .meta({ id: 'DeletedWebhookEndpoint' });

export const WebhookDelivery = z
  .object({
    id: z.string(),
    object: z.literal('webhook_delivery'),
    endpoint_id: z.string().nullable(),
    event_id: z.string(),
    /** The `webhook-id` header of every attempt (the same for a redelivery). */
    message_id: z.string(),
    event_type: z.string(),
    video_id: z.string().nullable(),
    url: z.string(),
    status: z.enum(['pending', 'succeeded', 'failed']),
    attempts: z.number().int(),
    next_attempt_at: z.number().int().nullable(),
    last_status_code: z.number().int().nullable(),
    last_latency_ms: z.number().int().nullable(),
    last_response_excerpt: z.string().nullable(),
    last_error: z.string().nullable(),
    redelivery_of: z.string().nullable(),
    created_at: z.number().int(),
    updated_at: z.number().int(),
  })
  .meta({ id: 'WebhookDelivery' });
export type WebhookDelivery = z.infer<typeof WebhookDelivery>;

export const WebhookDeliveryList = z
  .object({
    object: z.literal('list'),
    data: z.array(WebhookDelivery),
    first_id: z.string().nullable(),
    last_id: z.string().nullable(),
    has_more: z.boolean(),
  })
  .meta({ id: 'WebhookDeliveryList' });

export const WebhookSecret = z
  .object({ object: z.literal('webhook_secret'), signing_secret: z.string() })
  .meta({ id: 'WebhookSecret' });
