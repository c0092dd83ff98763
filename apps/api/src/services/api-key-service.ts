import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '@rehyat/db';
import { generateApiKey } from '../api-keys.js';

export type ApiKeyRole = 'user' | 'admin';

export interface CreateApiKeyOptions {
  name: string;
  /** @defaultValue `user`; `admin` is reserved for the dashboard. */
  role?: ApiKeyRole;
  rateLimitRpm?: number | null;
  maxActiveVideos?: number | null;
}

export interface ApiKeySummary {
  id: string;
  name: string;
  prefix: string;
  role: ApiKeyRole;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

const summarySelect = { id: true, name: true, prefix: true, role: true, createdAt: true, lastUsedAt: true, revokedAt: true } as const;

export interface ApiKeyServiceOptions {
  /**
   * Announces a changed key to every API instance (`publishApiKeyChange`), so their key caches
   * drop it at once. Without it a revocation reaches running instances only after their
   * `API_KEY_CACHE_TTL_MS`.
   */
  announceChange?: (keyId: string) => Promise<unknown>;
}

/** API keys: create (the secret is returned once and never stored), list, revoke. */
export class ApiKeyService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly opts: ApiKeyServiceOptions = {},
  ) {}

  async create(opts: CreateApiKeyOptions): Promise<ApiKeySummary & { secret: string }> {
    const name = opts.name.trim();
    if (name.length === 0) throw new Error('an API key needs a non-empty name');
    const key = generateApiKey();
    const row = await this.prisma.apiKey.create({
      data: {
        id: `key_${randomBytes(12).toString('hex')}`,
        name,
        prefix: key.prefix,
        hash: key.hash,
        role: opts.role ?? 'user',
        rateLimitRpm: opts.rateLimitRpm ?? null,
        maxActiveVideos: opts.maxActiveVideos ?? null,
      },
      select: summarySelect,
    });
    return { ...row, secret: key.secret };
  }

  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeySummary[]> {
    return this.prisma.apiKey.findMany({
      where: opts.includeRevoked ? {} : { revokedAt: null },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      select: summarySelect,
    });
  }

  /**
   * Revokes by id (`key_...`) or displayed prefix (`rh_...`); throws unless exactly one key
   * matches. The revocation is committed before it is announced; a failed announcement throws
   * after the commit (the key is revoked in the database either way).
   */
  async revoke(idOrPrefix: string): Promise<ApiKeySummary> {
    const matches = await this.prisma.apiKey.findMany({
      where: idOrPrefix.startsWith('rh_') ? { prefix: idOrPrefix } : { id: idOrPrefix },
      select: summarySelect,
    });
    if (matches.length === 0) throw new Error(`no API key ${idOrPrefix}`);
    if (matches.length > 1) throw new Error(`${matches.length} keys have prefix ${idOrPrefix}; revoke by id (key_...)`);
    const key = matches[0]!;
    const revoked = key.revokedAt ? key : await this.prisma.apiKey.update({ where: { id: key.id }, data: { revokedAt: new Date() }, select: summarySelect });
    // Announced even when it was revoked already: a repeated revoke repairs a missed announcement.
    await this.opts.announceChange?.(key.id);
    return revoked;
  }
}
