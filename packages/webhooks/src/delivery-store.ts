/** State of one delivery record. `pending` has a next attempt; the others are final. */
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed';

/** One message to one URL and the outcome of its latest attempt. */
export interface DeliveryRecord {
  id: string;
  /** `webhook-id` header value. */
  messageId: string;
  /** `null` for a per-request `webhook_url`. */
  endpointId: string | null;
  url: string;
  eventType: string;
  /** Exact JSON body sent on every attempt. */
  payload: string;
  status: DeliveryStatus;
  /** Attempts made so far. */
  attempts: number;
  nextAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastLatencyMs: number | null;
  lastResponseExcerpt: string | null;
  /** Code and message of the last failure that had no HTTP status, or why it was given up. */
  lastError: string | null;
}

/** What the worker needs to make an attempt. */
export interface AttemptTarget {
  delivery: DeliveryRecord;
  /** Secrets to sign with, newest first (several while a rotation's old secret is valid). */
  secrets: string[];
  /** `false` when the endpoint was disabled or deleted: the delivery fails without a request. */
  endpointEnabled: boolean;
}

/** The outcome of one attempt, written with {@link DeliveryStore.recordAttempt}. */
export interface AttemptUpdate {
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  lastStatusCode: number | null;
  lastLatencyMs: number | null;
  lastResponseExcerpt: string | null;
  lastError: string | null;
}

/**
 * The durable record the delivery worker drives itself from. Postgres (through Prisma) in the
 * API; anything durable works. The queue only ever carries a delivery id and an attempt number:
 * after any restart the record says what to do next.
 */
export interface DeliveryStore {
  loadForAttempt(deliveryId: string): Promise<AttemptTarget | null>;
  /**
   * Writes an attempt's outcome only if the record still has `expectedAttempts` attempts and is
   * `pending` (compare-and-set); returns whether it wrote. This makes a duplicated job harmless.
   */
  recordAttempt(deliveryId: string, expectedAttempts: number, update: AttemptUpdate): Promise<boolean>;
  /** Disables an endpoint (a receiver answered 410 Gone). */
  disableEndpoint(endpointId: string, reason: string): Promise<void>;
  /** Pending deliveries whose next attempt is due at or before `dueBefore`, oldest first. */
  listDue(dueBefore: Date, limit: number): Promise<Array<{ id: string; attempts: number; nextAttemptAt: Date | null }>>;
}

/**
 * A {@link DeliveryStore} in process memory: for unit tests and embedding; it loses everything
 * on exit, so a service uses a database-backed store.
 */
export class MemoryDeliveryStore implements DeliveryStore {
  readonly deliveries = new Map<string, DeliveryRecord>();
  readonly endpoints = new Map<string, { secrets: string[]; enabled: boolean; disabledReason: string | null }>();
  /** Secrets for deliveries without an endpoint. */
  adHocSecrets: string[] = [];

  async loadForAttempt(id: string): Promise<AttemptTarget | null> {
    const d = this.deliveries.get(id);
    if (!d) return null;
    if (d.endpointId === null) return { delivery: { ...d }, secrets: [...this.adHocSecrets], endpointEnabled: true };
    const ep = this.endpoints.get(d.endpointId);
    return { delivery: { ...d }, secrets: ep ? [...ep.secrets] : [], endpointEnabled: ep?.enabled ?? false };
  }

  async recordAttempt(id: string, expectedAttempts: number, u: AttemptUpdate): Promise<boolean> {
    const d = this.deliveries.get(id);
    if (!d || d.status !== 'pending' || d.attempts !== expectedAttempts) return false;
    Object.assign(d, u);
    return true;
  }

  async disableEndpoint(endpointId: string, reason: string): Promise<void> {
    const ep = this.endpoints.get(endpointId);
    if (ep) {
      ep.enabled = false;
      ep.disabledReason = reason;
    }
  }

  async listDue(dueBefore: Date, limit: number): Promise<Array<{ id: string; attempts: number; nextAttemptAt: Date | null }>> {
    return [...this.deliveries.values()]
      .filter((d) => d.status === 'pending' && d.nextAttemptAt !== null && d.nextAttemptAt <= dueBefore)
      .sort((a, b) => a.nextAttemptAt!.getTime() - b.nextAttemptAt!.getTime())
      .slice(0, limit)
      .map((d) => ({ id: d.id, attempts: d.attempts, nextAttemptAt: d.nextAttemptAt }));
  }
}
