import type { PgPool } from './client.js';

/** A new video row as `insertVideos` writes it: what `prisma.video.create` would be given. */
export interface NewVideoRow {
  id: string;
  ownerId: string;
  prompt: string;
  model: string;
  seconds: number;
  size: string;
  width: number;
  height: number;
  seed: bigint;
  steps: number;
  guidance: number;
  shift: number | null;
  sourceVideoId: string | null;
  sourceKind: 'remix' | 'extension' | null;
  chunksTotal: number;
  /** Also written as `updated_at` (what Prisma's `@updatedAt` does on create). */
  createdAt: Date;
  webhookUrl: string | null;
}

/**
 * One statement for any number of rows: every column is passed as one array parameter and
 * `unnest` turns them back into rows, so the text never changes and runs as a named prepared
 * statement (parsed and planned once per connection). Columns left out take their defaults
 * (`status` queued, `progress`/`chunks_done`/`gpu_ms` 0, the rest null), exactly as the schema
 * declares them. Bump the name whenever the text changes.
 */
const INSERT_VIDEOS = {
  name: 'rehyat_insert_videos_v1',
  text:
    'INSERT INTO "videos" ("id", "owner_id", "status", "prompt", "model", "seconds", "size", "width", "height", "seed", "steps", ' +
    '"guidance", "shift", "source_video_id", "source_kind", "chunks_total", "created_at", "updated_at", "webhook_url") ' +
    "SELECT t.id, t.owner_id, 'queued', t.prompt, t.model, t.seconds, t.size, t.width, t.height, t.seed, t.steps, " +
    't.guidance, t.shift, t.source_video_id, t.source_kind, t.chunks_total, t.created_at, t.created_at, t.webhook_url ' +
    'FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::text[], $7::int4[], $8::int4[], $9::int8[], ' +
    '$10::int4[], $11::float8[], $12::float8[], $13::text[], $14::"video_source_kind"[], $15::int4[], $16::timestamptz[], $17::text[]) ' +
    'AS t(id, owner_id, prompt, model, seconds, size, width, height, seed, steps, guidance, shift, source_video_id, source_kind, ' +
    'chunks_total, created_at, webhook_url)',
} as const;

/**
 * Inserts `rows` in one statement (one round trip, one transaction: all rows or none) and reads
 * nothing back. For the API's creation hot path, where Prisma's per-call query compilation and
 * result mapping cost more than the insert itself. Throws pg's error unchanged.
 */
export async function insertVideos(pool: PgPool, rows: readonly NewVideoRow[]): Promise<void> {
  if (rows.length === 0) return;
  const cols: unknown[][] = Array.from({ length: 17 }, () => new Array<unknown>(rows.length));
  rows.forEach((r, i) => {
    cols[0]![i] = r.id;
    cols[1]![i] = r.ownerId;
    cols[2]![i] = r.prompt;
    cols[3]![i] = r.model;
    cols[4]![i] = r.seconds;
    cols[5]![i] = r.size;
    cols[6]![i] = r.width;
    cols[7]![i] = r.height;
    cols[8]![i] = r.seed.toString();
    cols[9]![i] = r.steps;
    cols[10]![i] = r.guidance;
    cols[11]![i] = r.shift;
    cols[12]![i] = r.sourceVideoId;
    cols[13]![i] = r.sourceKind;
    cols[14]![i] = r.chunksTotal;
    cols[15]![i] = r.createdAt.toISOString();
    cols[16]![i] = r.webhookUrl;
  });
  await pool.query({ name: INSERT_VIDEOS.name, text: INSERT_VIDEOS.text, values: cols });
}
