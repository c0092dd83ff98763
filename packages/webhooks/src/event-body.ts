/**
 * Body of every webhook: the shape of OpenAI's webhook events (`{id, object: "event", type,
 * created_at, data}`), so `openai.webhooks.unwrap()` returns it unchanged; `data` is the
 * resource as the API returns it (for videos, the full video object).
 */
export interface WebhookEventBody<T = unknown> {
  id: string;
  object: 'event';
  type: string;
  /** Unix seconds of the event. */
  created_at: number;
  data: T;
}

export function buildEventBody<T>(e: { id: string; type: string; createdAt: Date; data: T }): string {
  const body: WebhookEventBody<T> = {
    id: e.id,
    object: 'event',
    type: e.type,
    created_at: Math.floor(e.createdAt.getTime() / 1000),
    data: e.data,
  };
  return JSON.stringify(body);
}
