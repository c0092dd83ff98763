import { randomBytes } from 'node:crypto';

const hex = (): string => randomBytes(16).toString('hex');

/** Webhook endpoint ids look like OpenAI's: `whe_` and 32 hex characters. */
export const newEndpointId = (): string => `whe_${hex()}`;
/** One event (the body's `id`), shared by every endpoint it is sent to. */
export const newEventId = (): string => `evt_${hex()}`;
/** One message to one endpoint: the `webhook-id` header, the same on every attempt and redelivery. */
export const newMessageId = (): string => `msg_${hex()}`;
/** One delivery record (a message and its attempts); a redelivery is a new record. */
export const newDeliveryId = (): string => `whd_${hex()}`;

export const ENDPOINT_ID_PATTERN = /^whe_[0-9a-f]{32}$/;
export const DELIVERY_ID_PATTERN = /^whd_[0-9a-f]{32}$/;
