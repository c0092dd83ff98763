import type { PrismaClient } from '@rehyat/db';
import type { AttemptTarget, AttemptUpdate, DeliveryRecord, DeliveryStore } from '@rehyat/webhooks';

/** The signing secrets of an endpoint now: the current one, and the previous one during a rotation. */
export function endpointSecrets(e: { secret: string; previousSecret: string | null; previousSecretExpiresAt: Date | null }, now = new Date()): string[] {
  const out = [e.secret];
  if (e.previousSecret && e.previousSecretExpiresAt && e.previousSecretExpiresAt > now) out.push(e.previousSecret);
  return out;
}

/**
 * The webhook delivery worker's store: `webhook_deliveries` rows in Postgres. Attempts are
 * recorded with a compare-and-set on (`status = pending`, `attempts`), so a duplicated or
 * replayed attempt job never records twice.
 */
export class PrismaDeliveryStore implements DeliveryStore {
  constructor(private readonly prisma: PrismaClient) {}

  async loadForAttempt(deliveryId: string): Promise<AttemptTarget | null> {
    const row = await this.prisma.webhookDelivery.findUnique({
      where: { id: deliveryId },
      include: {
        endpoint: { select: { secret: true, previousSecret: true, previousSecretExpiresAt: true, enabled: true } },
        owner: { select: { webhookSecret: true, revokedAt: true } },
      },
    });
    if (!row) return null;
    const delivery: DeliveryRecord = {
      id: row.id,
      messageId: row.messageId,
      endpointId: row.endpointId,
      url: row.url,
      eventType: row.eventType,
      payload: row.payload,
      status: row.status,
      attempts: row.attempts,
      nextAttemptAt: row.nextAttemptAt,
      lastStatusCode: row.lastStatusCode,
      lastLatencyMs: row.lastLatencyMs,
      lastResponseExcerpt: row.lastResponseExcerpt,
      lastError: row.lastError,
    };
    if (row.endpointId === null) {
      // A per-request `webhook_url`: signed with the API key's default webhook secret.
      const secret = row.owner.webhookSecret;
      return { delivery, secrets: secret ? [secret] : [], endpointEnabled: row.owner.revokedAt === null };
    }
    if (!row.endpoint) return { delivery, secrets: [], endpointEnabled: false };
    return { delivery, secrets: endpointSecrets(row.endpoint), endpointEnabled: row.endpoint.enabled && row.owner.revokedAt === null };
  }

  async recordAttempt(deliveryId: string, expectedAttempts: number, u: AttemptUpdate): Promise<boolean> {
    const r = await this.prisma.webhookDelivery.updateMany({
      where: { id: deliveryId, status: 'pending', attempts: expectedAttempts },
      data: {
        status: u.status,
        attempts: u.attempts,
        nextAttemptAt: u.nextAttemptAt,
        lastStatusCode: u.lastStatusCode,
        lastLatencyMs: u.lastLatencyMs,
        lastResponseExcerpt: u.lastResponseExcerpt === null ? null : u.lastResponseExcerpt.replaceAll('\u0000', ''),
        lastError: u.lastError,
      },
    });
    return r.count === 1;
  }

  async disableEndpoint(endpointId: string, reason: string): Promise<void> {
    await this.prisma.webhookEndpoint.updateMany({ where: { id: endpointId }, data: { enabled: false, disabledReason: reason } });
  }

  async listDue(dueBefore: Date, limit: number): Promise<Array<{ id: string; attempts: number; nextAttemptAt: Date | null }>> {
    return this.prisma.webhookDelivery.findMany({
      where: { status: 'pending', nextAttemptAt: { lte: dueBefore } },
      orderBy: { nextAttemptAt: 'asc' },
      take: limit,
      select: { id: true, attempts: true, nextAttemptAt: true },
    });
  }
}
