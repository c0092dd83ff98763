import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { errorResponses } from '../errors.js';
import {
  CreateWebhookEndpointBody,
  DeletedWebhookEndpoint,
  ListQuery,
  RotateSecretBody,
  UpdateWebhookEndpointBody,
  WebhookDelivery,
  WebhookDeliveryList,
  WebhookDeliveryParams,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookEndpointParams,
  WebhookEndpointWithSecret,
  WebhookSecret,
} from '../schemas/webhooks.js';
import type { WebhookEndpointService } from '../webhooks/endpoint-service.js';

const security = [{ bearerAuth: [] }];
const tags = ['webhooks'];

/**
 * Webhook endpoints per API key (the shape of OpenAI's `client.webhooks.*`), their delivery log
 * and redelivery, and the key's secret for per-request `webhook_url`s.
 */
export async function webhookEndpointRoutes(app: FastifyInstance, opts: { service: WebhookEndpointService }): Promise<void> {
  const { service } = opts;
  const r = app.withTypeProvider<ZodTypeProvider>();
  app.addHook('onRequest', app.authenticate);

  r.post(
    '/v1/webhook_endpoints',
    {
      schema: {
        tags,
        summary: 'Create a webhook endpoint',
        description: 'Registers a URL for signed (Standard Webhooks) video events. The `signing_secret` is shown only in this response.',
        security,
        body: CreateWebhookEndpointBody,
        response: { 200: WebhookEndpointWithSecret, ...errorResponses() },
      },
    },
    async (req) => service.create(req.principal.keyId, req.body),
  );
  r.get(
    '/v1/webhook_endpoints',
    {
      schema: { tags, summary: 'List webhook endpoints', security, querystring: ListQuery, response: { 200: WebhookEndpointList, ...errorResponses() } },
    },
    async (req) => service.list(req.principal.keyId, req.query),
  );
  r.get(
    '/v1/webhook_endpoints/:id',
    {
      schema: { tags, summary: 'Retrieve a webhook endpoint', security, params: WebhookEndpointParams, response: { 200: WebhookEndpoint, ...errorResponses(404) } },
    },
    async (req) => service.get(req.principal.keyId, req.params.id),
  );
  r.post(
    '/v1/webhook_endpoints/:id',
    {
      schema: {
        tags,
        summary: 'Update a webhook endpoint',
        description: 'Changes url, event types or name, and re-enables the endpoint if it was disabled (e.g. after a 410).',
        security,
        params: WebhookEndpointParams,
        body: UpdateWebhookEndpointBody,
        response: { 200: WebhookEndpoint, ...errorResponses(404) },
      },
    },
    async (req) => service.update(req.principal.keyId, req.params.id, req.body),
  );
  r.delete(
    '/v1/webhook_endpoints/:id',
    {
      schema: { tags, summary: 'Delete a webhook endpoint', security, params: WebhookEndpointParams, response: { 200: DeletedWebhookEndpoint, ...errorResponses(404) } },
    },
    async (req) => service.delete(req.principal.keyId, req.params.id),
  );
  r.post(
    '/v1/webhook_endpoints/:id/rotate_secret',
    {
      schema: {
        tags,
        summary: 'Rotate the signing secret',
        description: 'Returns a new secret (shown once). Unless `keep_old_secret_active_for_24_hours` is false, messages carry signatures by both secrets for 24 hours.',
        security,
        params: WebhookEndpointParams,
        body: RotateSecretBody,
        response: { 200: WebhookEndpointWithSecret, ...errorResponses(404) },
      },
    },
    async (req) => service.rotateSecret(req.principal.keyId, req.params.id, req.body?.keep_old_secret_active_for_24_hours ?? true),
  );
  r.get(
    '/v1/webhook_endpoints/:id/deliveries',
    {
      schema: {
        tags,
        summary: 'List deliveries of an endpoint',
        description: 'Newest first: status, attempts, next attempt, last status code, latency and response excerpt.',
        security,
        params: WebhookEndpointParams,
        querystring: ListQuery,
        response: { 200: WebhookDeliveryList, ...errorResponses(404) },
      },
    },
    async (req) => service.deliveries(req.principal.keyId, req.params.id, req.query),
  );
  r.post(
    '/v1/webhook_endpoints/:id/deliveries/:delivery_id/redeliver',
    {
      schema: {
        tags,
        summary: 'Redeliver a message',
        description: 'Sends the same message (same `webhook-id` and body) again as a new delivery with a fresh retry schedule.',
        security,
        params: WebhookDeliveryParams,
        response: { 200: WebhookDelivery, ...errorResponses(404) },
      },
    },
    async (req) => service.redeliver(req.principal.keyId, req.params.id, req.params.delivery_id),
  );
  r.get(
    '/v1/webhooks/default/secret',
    {
      schema: {
        tags,
        summary: 'Secret of per-request webhook_url deliveries',
        description: 'Messages sent to a `webhook_url` given on video creation are signed with this key-wide secret.',
        security,
        response: { 200: WebhookSecret, ...errorResponses() },
      },
    },
    async (req) => service.defaultSecret(req.principal.keyId),
  );
}
